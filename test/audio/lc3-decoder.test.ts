import t from 'tap'
import { LC3_FRAME_SIZES, Lc3Decoder, PCM_BYTES_PER_FRAME, type Lc3FrameSize } from '../../audio/lc3-decoder.js'
import { REFERENCE_DELAY_SAMPLES as DLC3_DELAY_SAMPLES, samples, snr, vector } from '../lc3-vectors.js'

function frameOf (pcm: Buffer, index: number): Buffer {
  return pcm.subarray(index * PCM_BYTES_PER_FRAME, (index + 1) * PCM_BYTES_PER_FRAME)
}

for (const size of LC3_FRAME_SIZES) {
  t.test(`${size}-byte frames decode like liblc3's dlc3 (SNR > 60 dB once the 40-sample delay is aligned)`, async t => {
    const frames = vector(`frames-${size}.lc3`)
    const reference = samples(vector(`reference-${size}.pcm`))
    const input = samples(vector('input.pcm'))
    t.equal(frames.length % size, 0, 'the vector is whole frames')
    const decoder = new Lc3Decoder(size)
    const pcm = decoder.decode(frames)
    const count = frames.length / size
    t.equal(pcm.length, count * PCM_BYTES_PER_FRAME, 'N frames give N x 320 bytes')
    t.equal(decoder.frames, count)
    t.equal(decoder.failedFrames, 0)
    t.equal(reference.length, input.length, 'dlc3 gives back as many samples as went in')
    t.ok(pcm.length / 2 >= reference.length + DLC3_DELAY_SAMPLES, 'the raw decode covers the reference after the delay')
    const decoded = samples(pcm)
    const aligned = snr(reference, decoded, DLC3_DELAY_SAMPLES)
    t.comment(`${size} bytes: SNR ${aligned.toFixed(1)} dB against dlc3`)
    t.ok(aligned > 60, `SNR ${aligned.toFixed(1)} dB > 60 dB`)
    // The direction matters: unaligned, or shifted the other way, the same data does not match at all.
    t.ok(snr(reference, decoded, 0) < 10, 'without the shift it does not match')
    t.ok(snr(reference, decoded, -DLC3_DELAY_SAMPLES) < 10, 'shifted the other way it does not match')
    // And the codec did its job: the decoded audio resembles the input (same alignment).
    t.ok(snr(input, decoded, DLC3_DELAY_SAMPLES) > 3, 'the decoded audio resembles the input')
  })
}

t.test('trailing bytes that do not make a whole frame are dropped', async t => {
  const frames = vector('frames-40.lc3')
  const whole = frames.subarray(0, 3 * 40)
  const expected = new Lc3Decoder(40).decode(whole)
  const decoder = new Lc3Decoder(40)
  const pcm = decoder.decode(frames.subarray(0, 3 * 40 + 27))
  t.equal(pcm.length, 3 * PCM_BYTES_PER_FRAME)
  t.ok(pcm.equals(expected), 'the same PCM as the whole frames alone')
  t.equal(decoder.frames, 3)
  t.equal(decoder.decode(frames.subarray(0, 39)).length, 0, 'less than one frame gives nothing')
  t.equal(decoder.decode(Buffer.alloc(0)).length, 0, 'an empty message gives nothing')
  t.equal(decoder.frames, 3)
})

t.test('a frame that fails to decode becomes silence and the stream goes on', async t => {
  const size: Lc3FrameSize = 20
  const frames = vector(`frames-${size}.lc3`)
  const count = frames.length / size
  const clean = new Lc3Decoder(size).decode(frames)
  const bad = 60
  const corrupted = Buffer.from(frames)
  corrupted.fill(0xff, bad * size, (bad + 1) * size)
  const decoder = new Lc3Decoder(size)
  const pcm = decoder.decode(corrupted)
  t.equal(pcm.length, clean.length, 'every frame still gives 320 bytes')
  t.equal(decoder.frames, count)
  t.equal(decoder.failedFrames, 1, 'the failure is counted')
  t.ok(frameOf(pcm, bad).equals(Buffer.alloc(PCM_BYTES_PER_FRAME)), 'the bad frame is silence')
  t.ok(frameOf(clean, bad).some(byte => byte !== 0), 'where the clean decode has sound')
  t.ok(pcm.subarray(0, bad * PCM_BYTES_PER_FRAME).equals(clean.subarray(0, bad * PCM_BYTES_PER_FRAME)), 'frames before it are untouched')
  t.ok(frameOf(pcm, bad + 1).some(byte => byte !== 0), 'the next frame has sound again')
  // Concealment disturbs a few frames after the loss; well after it the decode is the clean one again.
  const after = samples(pcm.subarray((bad + 20) * PCM_BYTES_PER_FRAME))
  const cleanAfter = samples(clean.subarray((bad + 20) * PCM_BYTES_PER_FRAME))
  t.ok(snr(cleanAfter, after, 0) > 40, 'the stream recovers')
})

t.test('splitting a stream into messages of any number of frames gives the same PCM', async t => {
  for (const size of LC3_FRAME_SIZES) {
    const frames = vector(`frames-${size}.lc3`)
    const whole = new Lc3Decoder(size).decode(frames)
    const decoder = new Lc3Decoder(size)
    const parts: Buffer[] = []
    const counts = [1, 5, 10, 2, 7, 3, 9, 1, 6, 8]
    let offset = 0
    for (let i = 0; offset < frames.length; i += 1) {
      const n = counts[i % counts.length] as number
      const part = decoder.decode(frames.subarray(offset, offset + n * size))
      t.equal(part.length, Math.min(n, (frames.length - offset) / size) * PCM_BYTES_PER_FRAME)
      parts.push(part)
      offset += n * size
    }
    t.ok(Buffer.concat(parts).equals(whole), `${size} bytes: split and whole agree`)
  }
})

t.test('a decoder is one stream: two streams do not share state', async t => {
  const a = vector('frames-40.lc3')
  const b = vector('frames-60.lc3')
  const alone = new Lc3Decoder(40).decode(a)
  const one = new Lc3Decoder(40)
  const other = new Lc3Decoder(60)
  const parts: Buffer[] = []
  for (let i = 0; i * 40 < a.length; i += 10) {
    parts.push(one.decode(a.subarray(i * 40, (i + 10) * 40)))
    other.decode(b.subarray(i * 60, (i + 10) * 60))
  }
  t.ok(Buffer.concat(parts).equals(alone))
})

t.test('only 20, 40 and 60-byte frames are accepted', async t => {
  t.throws(() => new Lc3Decoder(30 as Lc3FrameSize), RangeError)
  t.throws(() => new Lc3Decoder(0 as Lc3FrameSize), RangeError)
  t.equal(new Lc3Decoder(60).frameSizeBytes, 60)
})
