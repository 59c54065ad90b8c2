/**
 * What the phone's microphone produces (PHONE.md section 3): whole 10 ms frames,
 * taken in a loop from a recorded vector. A message is N whole frames and
 * nothing else; LC3 frames are 20, 40 or 60 bytes, a PCM16 frame (16 kHz mono)
 * is 320 bytes.
 */

export const FRAME_MS = 10
export const SAMPLE_RATE = 16000
/** Bytes of 10 ms of 16 kHz mono PCM16. */
export const PCM_FRAME_BYTES = 320

export type Lc3FrameSize = 20 | 40 | 60
export const LC3_FRAME_SIZES: readonly Lc3FrameSize[] = [20, 40, 60]

export function isLc3FrameSize (n: number): n is Lc3FrameSize {
  return (LC3_FRAME_SIZES as readonly number[]).includes(n)
}

/** Frames of a fixed size from a buffer, round and round; a trailing partial frame is never sent. */
export class FrameLoop {
  readonly frameCount: number
  private position = 0

  constructor (private readonly data: Buffer, readonly frameBytes: number) {
    if (!Number.isInteger(frameBytes) || frameBytes <= 0) throw new Error(`bad frame size ${frameBytes}`)
    this.frameCount = Math.floor(data.length / frameBytes)
    if (this.frameCount === 0) throw new Error(`no whole ${frameBytes}-byte frame in ${data.length} bytes`)
  }

  /** The next `frames` frames as one message, wrapping to the start of the vector. */
  next (frames: number): Buffer {
    const out = Buffer.allocUnsafe(frames * this.frameBytes)
    for (let i = 0; i < frames; i++) {
      const start = this.position * this.frameBytes
      this.data.copy(out, i * this.frameBytes, start, start + this.frameBytes)
      this.position = (this.position + 1) % this.frameCount
    }
    return out
  }
}

/** One second of a quiet 440 Hz tone as 16 kHz mono PCM16: the PCM source when none is given. */
export function pcmTone (hz = 440, amplitude = 0.2): Buffer {
  const out = Buffer.alloc(SAMPLE_RATE * 2)
  for (let i = 0; i < SAMPLE_RATE; i++) {
    out.writeInt16LE(Math.round(Math.sin(2 * Math.PI * hz * i / SAMPLE_RATE) * amplitude * 32767), i * 2)
  }
  return out
}
