/**
 * One phone's LC3 stream decoded to PCM16 LE: 16 kHz mono, 10 ms frames of 160
 * samples, every frame `frameSizeBytes` long (20, 40 or 60). LC3 is stateful
 * (each frame depends on the ones before), so a session keeps one of these for
 * as long as its stream lasts (managers/audio-manager.ts opens it through
 * audio/lc3-decoding.ts).
 *
 * The decoder is the `lc3codec` package, pure JavaScript, so `npm ci && npm start`
 * needs nothing from the system. Google's liblc3 is faster but is a system
 * library; bench/lc3-decode.ts measures both, and test/audio/lc3-decoder.test.ts
 * holds this decoder to liblc3's output (the vectors in test/vectors/lc3/).
 *
 * A message is N whole frames: trailing bytes that do not make a whole frame are
 * dropped, and a frame the decoder rejects (its bit-error check fires, or it
 * throws) becomes 10 ms of silence, so the output always has N x 320 bytes.
 */
import { createRequire } from 'node:module'
import { endianness } from 'node:os'

/** Bytes per 10 ms LC3 frame the phone may send (bitrate = bytes x 800 bit/s). */
export type Lc3FrameSize = 20 | 40 | 60

export const LC3_FRAME_SIZES: readonly Lc3FrameSize[] = [20, 40, 60]

/** Samples in one 10 ms frame at 16 kHz. */
export const LC3_SAMPLES_PER_FRAME = 160

/** PCM16 bytes of one decoded frame. */
export const PCM_BYTES_PER_FRAME = LC3_SAMPLES_PER_FRAME * 2

export function isLc3FrameSize (value: number): value is Lc3FrameSize {
  return value === 20 || value === 40 || value === 60
}

/** The part of lc3codec's API used here (the package ships no types). */
interface Lc3BitErrorCondition {
  isMarked (): boolean
  clear (): void
}
interface Lc3CodecDecoder {
  getFrameSize (): number
  decode (bytes: Uint8Array, bec: Lc3BitErrorCondition, out: Int16Array): Int16Array
}
interface Lc3CodecApi {
  Core: {
    LC3SampleRate: { FS_16000: unknown }
    LC3FrameDuration: { NMS_10000US: unknown }
  }
  Decoder: {
    LC3Decoder: new (duration: unknown, rate: unknown) => Lc3CodecDecoder
    LC3BEC: new (initial?: boolean) => Lc3BitErrorCondition
  }
}

let lc3codec: Lc3CodecApi | null = null

/**
 * lc3codec, loaded with the first decoder: it is CommonJS without type declarations (hence require and the
 * shape above), and about 2 MiB of heap that a process which never decodes (the main thread, by default) skips.
 */
function codec (): Lc3CodecApi {
  lc3codec ??= createRequire(import.meta.url)('lc3codec') as Lc3CodecApi
  return lc3codec
}

/** The output is written through an Int16Array; on a big-endian host it is byte-swapped to stay LE. */
const BIG_ENDIAN = endianness() === 'BE'

export class Lc3Decoder {
  /** Whole frames turned into PCM, those that failed included. */
  frames = 0
  /** Frames that failed to decode and became silence. */
  failedFrames = 0
  readonly frameSizeBytes: Lc3FrameSize
  private readonly decoder: Lc3CodecDecoder
  private readonly bec: Lc3BitErrorCondition

  constructor (frameSizeBytes: Lc3FrameSize) {
    if (!isLc3FrameSize(frameSizeBytes)) throw new RangeError(`LC3 frame size must be 20, 40 or 60 bytes, not ${String(frameSizeBytes)}`)
    this.frameSizeBytes = frameSizeBytes
    const { Core, Decoder } = codec()
    this.decoder = new Decoder.LC3Decoder(Core.LC3FrameDuration.NMS_10000US, Core.LC3SampleRate.FS_16000)
    this.bec = new Decoder.LC3BEC(false)
  }

  /** Whole frames in `byteLength` bytes of this stream. */
  framesIn (byteLength: number): number {
    return Math.floor(byteLength / this.frameSizeBytes)
  }

  /** N whole frames (and possibly a partial one, dropped) to N x 320 bytes of PCM16 LE. */
  decode (data: Uint8Array): Buffer {
    const size = this.frameSizeBytes
    const count = this.framesIn(data.length)
    const samples = new Int16Array(count * LC3_SAMPLES_PER_FRAME)
    for (let i = 0; i < count; i += 1) {
      const out = samples.subarray(i * LC3_SAMPLES_PER_FRAME, (i + 1) * LC3_SAMPLES_PER_FRAME)
      if (!this.decodeFrame(data.subarray(i * size, (i + 1) * size), out)) {
        out.fill(0)
        this.failedFrames += 1
      }
      this.frames += 1
    }
    const pcm = Buffer.from(samples.buffer, samples.byteOffset, samples.byteLength)
    return BIG_ENDIAN ? pcm.swap16() : pcm
  }

  /** False when the frame is rejected; the decoder's state then moves on by concealment. */
  private decodeFrame (frame: Uint8Array, out: Int16Array): boolean {
    this.bec.clear()
    try {
      this.decoder.decode(frame, this.bec, out)
    } catch {
      return false
    }
    return !this.bec.isMarked()
  }
}
