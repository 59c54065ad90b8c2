import t, { type Test } from 'tap'
import { Lc3Decoder, PCM_BYTES_PER_FRAME } from '../../audio/lc3-decoder.js'
import { createLc3Decoding, type Lc3Decoding, type Lc3DecodingOptions, type Lc3DecodingThread, type Lc3FrameSize } from '../../audio/lc3-decoding.js'
import { Lc3Op, decodeBatch } from '../../audio/lc3-worker.js'
import { delay, eventually } from '../helper.js'
import { vector } from '../lc3-vectors.js'

/** The vector cut into messages of 1 to 9 frames (varying), each a copy as a socket would give it. */
function messages (size: Lc3FrameSize, counts = [3, 1, 7, 10, 2, 9, 5]): Buffer[] {
  const frames = vector(`frames-${size}.lc3`)
  const out: Buffer[] = []
  let offset = 0
  for (let i = 0; offset < frames.length; i += 1) {
    const n = counts[i % counts.length] as number
    out.push(Buffer.from(frames.subarray(offset, offset + n * size)))
    offset += n * size
  }
  return out
}

interface Collected { chunks: Buffer[], done: Promise<void> }

/** Collects a stream's PCM; `done` settles when `expected` chunks have come. */
function collector (expected: number): Collected & { onPcm: (pcm: Buffer) => void } {
  const chunks: Buffer[] = []
  let resolve: () => void = () => {}
  const done = new Promise<void>(_resolve => { resolve = _resolve })
  if (expected === 0) resolve()
  return {
    chunks,
    done,
    onPcm: pcm => {
      chunks.push(pcm)
      if (chunks.length === expected) resolve()
    }
  }
}

function use (t: Test, thread: Lc3DecodingThread, options: Lc3DecodingOptions = {}): Lc3Decoding {
  const decoding = createLc3Decoding({ thread, onError: error => t.fail(`unexpected error: ${error.message}`), ...options })
  t.teardown(async () => { await decoding.close() })
  return decoding
}

/** Frames and failures a decoding counted while `run` ran (decodings are shared: a worker takes seconds to start under tap). */
async function counted (decoding: Lc3Decoding, run: () => Promise<void>): Promise<{ framesDecoded: number, framesFailed: number }> {
  const before = decoding.stats()
  await run()
  const after = decoding.stats()
  return { framesDecoded: after.framesDecoded - before.framesDecoded, framesFailed: after.framesFailed - before.framesFailed }
}

for (const thread of ['worker', 'main'] as const) {
  const errors: Error[] = []
  const shared = createLc3Decoding({ thread, onError: error => { errors.push(error) } })
  t.teardown(async () => { await shared.close() })
  t.afterEach(async () => { errors.length = 0 })

  t.test(`${thread}: every message's PCM comes back once, in order, equal to a one-shot decode`, async t => {
    const decoding = shared
    const sizes: Lc3FrameSize[] = [20, 40, 60]
    const streams = sizes.map(size => {
      const msgs = messages(size)
      const c = collector(msgs.length)
      return { size, msgs, c, stream: decoding.open(size, c.onPcm) }
    })
    t.equal(decoding.stats().streams, 3)
    const count = await counted(decoding, async () => {
      // Interleaved, some in the same turn of the event loop and some across turns.
      const longest = Math.max(...streams.map(s => s.msgs.length))
      for (let i = 0; i < longest; i += 1) {
        for (const s of streams) {
          const msg = s.msgs[i]
          if (msg !== undefined) s.stream.push(msg)
        }
        if (i % 4 === 0) await delay(0)
      }
      await Promise.all(streams.map(s => s.c.done))
    })
    for (const s of streams) {
      t.same(s.c.chunks.map(c => c.length), s.msgs.map(m => m.length / s.size * PCM_BYTES_PER_FRAME), `${s.size}: one chunk per message, N x 320 bytes`)
      const whole = new Lc3Decoder(s.size).decode(vector(`frames-${s.size}.lc3`))
      t.ok(Buffer.concat(s.c.chunks).equals(whole), `${s.size}: in order, and the same PCM as one message`)
    }
    const frames = sizes.reduce((sum, size) => sum + vector(`frames-${size}.lc3`).length / size, 0)
    t.same(count, { framesDecoded: frames, framesFailed: 0 })
    t.same(decoding.stats(), { ...decoding.stats(), streams: 3, messagesDropped: 0, thread })
    for (const s of streams) s.stream.dispose()
    t.equal(decoding.stats().streams, 0)
    t.same(errors, [])
  })

  t.test(`${thread}: partial trailing bytes are dropped, a bad frame is silence and counted`, async t => {
    const decoding = shared
    const frames = vector('frames-40.lc3')
    const bad = Buffer.from(frames.subarray(0, 4 * 40))
    bad.fill(0xff, 2 * 40, 3 * 40)
    const c = collector(3)
    const stream = decoding.open(40, c.onPcm)
    const count = await counted(decoding, async () => {
      stream.push(Buffer.concat([frames.subarray(0, 2 * 40), Buffer.alloc(13, 1)]))
      stream.push(Buffer.alloc(0))
      stream.push(bad)
      await c.done
    })
    stream.dispose()
    t.same(c.chunks.map(chunk => chunk.length), [2 * PCM_BYTES_PER_FRAME, 0, 4 * PCM_BYTES_PER_FRAME])
    t.ok(c.chunks[2]?.subarray(2 * PCM_BYTES_PER_FRAME, 3 * PCM_BYTES_PER_FRAME).equals(Buffer.alloc(PCM_BYTES_PER_FRAME)), 'the bad frame is silence')
    t.ok(c.chunks[2]?.subarray(3 * PCM_BYTES_PER_FRAME).some(byte => byte !== 0), 'the frame after it is not')
    t.same(count, { framesDecoded: 6, framesFailed: 1 })
  })

  t.test(`${thread}: after dispose a stream gets no more callbacks; the others go on`, async t => {
    const decoding = shared
    const msgs = messages(20, [5])
    const gone: Buffer[] = []
    const stream = decoding.open(20, pcm => { gone.push(pcm) })
    for (const msg of msgs.slice(0, 6)) stream.push(msg)
    const seenBeforeDispose = gone.length
    t.equal(seenBeforeDispose, thread === 'main' ? 6 : 0, thread === 'main' ? 'the main thread calls back in push' : 'the worker calls back later')
    stream.dispose()
    stream.dispose()
    stream.push(msgs[6] as Buffer)
    const other = collector(1)
    const otherStream = decoding.open(20, other.onPcm)
    otherStream.push(msgs[0] as Buffer)
    t.equal(decoding.stats().streams, 1)
    // Batches come back in order: once the other stream's PCM is here, anything for the disposed one would be too.
    await other.done
    await delay(20)
    t.equal(gone.length, seenBeforeDispose, 'nothing after dispose')
    otherStream.dispose()
  })

  t.test(`${thread}: a throwing onPcm is reported, not thrown, and decoding goes on`, async t => {
    const decoding = shared
    let calls = 0
    const c = collector(2)
    const stream = decoding.open(60, pcm => {
      calls += 1
      if (calls === 1) throw new Error('app gone')
      c.onPcm(pcm)
    })
    const msgs = messages(60, [4])
    for (const msg of msgs.slice(0, 3)) stream.push(msg)
    await c.done
    stream.dispose()
    t.equal(calls, 3)
    t.same(errors.map(e => e.message), ['app gone'])
  })

  t.test(`${thread}: close ends it; later streams are inert and close is idempotent`, async t => {
    const decoding = createLc3Decoding({ thread })
    const c = collector(1)
    const stream = decoding.open(40, c.onPcm)
    stream.push(vector('frames-40.lc3').subarray(0, 400))
    await c.done
    await decoding.close()
    stream.push(vector('frames-40.lc3').subarray(0, 400))
    const late: Buffer[] = []
    decoding.open(40, pcm => { late.push(pcm) }).push(vector('frames-40.lc3').subarray(0, 400))
    await delay(20)
    t.equal(c.chunks.length, 1)
    t.equal(late.length, 0)
    t.equal(decoding.stats().streams, 0)
    await decoding.close()
  })

  t.test(`${thread}: frame sizes other than 20, 40 and 60 are refused`, async t => {
    t.throws(() => shared.open(30 as Lc3FrameSize, () => {}), RangeError)
    t.equal(shared.stats().streams, 0)
  })
}

t.test('worker: pushes past the backlog bound are dropped and counted', async t => {
  const decoding = use(t, 'worker', { maxPendingFrames: 25 })
  const msgs = messages(20, [10])
  const c = collector(2)
  const stream = decoding.open(20, c.onPcm)
  // In one turn: 10 + 10 frames fit, the third message would make 30.
  for (const msg of msgs.slice(0, 4)) stream.push(msg)
  await c.done
  t.equal(decoding.stats().messagesDropped, 2)
  // Once the worker has answered, the backlog is free again.
  const more = collector(1)
  decoding.open(20, more.onPcm).push(msgs[0] as Buffer)
  await more.done
  await delay(20)
  t.equal(c.chunks.length, 2)
  t.equal(decoding.stats().messagesDropped, 2)
})

t.test('worker: a worker that cannot run is reported and decoding goes on in this thread', async t => {
  const errors: Error[] = []
  const decoding = use(t, 'worker', { workerUrl: new URL('./no-such-worker.js', import.meta.url), onError: error => { errors.push(error) } })
  const msgs = messages(40)
  const c = collector(msgs.length)
  const stream = decoding.open(40, c.onPcm)
  for (const msg of msgs) stream.push(msg)
  await c.done
  t.equal(errors.length, 1, 'reported once')
  t.ok(Buffer.concat(c.chunks).equals(new Lc3Decoder(40).decode(vector('frames-40.lc3'))), 'every message, in order')
  t.equal(decoding.stats().thread, 'main')
  // Streams opened later decode here too, from the start.
  const later = collector(1)
  decoding.open(20, later.onPcm).push(vector('frames-20.lc3').subarray(0, 200))
  t.equal(later.chunks.length, 1, 'synchronously')
  t.equal(decoding.stats().streams, 2)
  stream.dispose()
  t.equal(decoding.stats().streams, 1)
  t.equal(decoding.stats().framesDecoded, vector('frames-40.lc3').length / 40 + 10)
  await eventually(() => errors.length === 1, 'no second report')
})

t.test('a worker batch: ops in order, unknown and closed streams skipped, PCM per push', async t => {
  const frames = vector('frames-20.lc3')
  const decoders = new Map<number, Lc3Decoder>()
  const ops = Uint32Array.from([
    Lc3Op.open, 7, 20,
    Lc3Op.open, 8, 30, // not a frame size: never opened
    Lc3Op.push, 7, 40,
    Lc3Op.push, 8, 20,
    Lc3Op.push, 7, 25, // one frame and 5 trailing bytes
    Lc3Op.close, 7, 0,
    Lc3Op.push, 7, 20
  ])
  const data = new Uint8Array(Buffer.concat([frames.subarray(0, 40), frames.subarray(0, 20), frames.subarray(40, 65), frames.subarray(0, 20)]))
  const reply = decodeBatch(decoders, { ops, data, frames: 5 })
  t.same([...reply.chunks], [7, 2 * PCM_BYTES_PER_FRAME, 7, PCM_BYTES_PER_FRAME], 'one chunk per push of an open stream')
  t.same({ frames: reply.frames, decoded: reply.decoded, failed: reply.failed }, { frames: 5, decoded: 3, failed: 0 })
  const expected = new Lc3Decoder(20).decode(frames.subarray(0, 60))
  t.ok(Buffer.from(reply.pcm).equals(expected), 'the stream decoded in order across its pushes')
  t.equal(decoders.size, 0, 'the closed stream is gone')
})
