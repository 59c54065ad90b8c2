/**
 * The committed LC3 test vectors (test/vectors/lc3/README.md) and the
 * comparison the decoding tests make: PCM against the reference decode as an
 * SNR in dB, aligned for the reference decoder's delay.
 */
import { readFileSync } from 'node:fs'

export type VectorFrameSize = 20 | 40 | 60

/** A file of test/vectors/lc3. */
export const vector = (name: string): Buffer => readFileSync(new URL(`./vectors/lc3/${name}`, import.meta.url))

/** Raw concatenated LC3 frames of the vector at this frame size. */
export const lc3Frames = (size: VectorFrameSize): Buffer => vector(`frames-${size}.lc3`)

/** The reference decoder's PCM (s16le) for the same frames. */
export const referencePcm = (size: VectorFrameSize): Buffer => vector(`reference-${size}.pcm`)

/**
 * The reference decoder (dlc3) drops the codec's delay: its sample i is sample i + 40 of a plain
 * frame-by-frame decode (2.5 ms at 16 kHz).
 */
export const REFERENCE_DELAY_SAMPLES = 40

/** PCM16 LE as samples. */
export function samples (pcm: Buffer): Int16Array {
  const out = new Int16Array(Math.floor(pcm.length / 2))
  for (let i = 0; i < out.length; i += 1) out[i] = pcm.readInt16LE(i * 2)
  return out
}

/** SNR in dB of `decoded` against `reference`, with reference[i] compared to decoded[i + shift]. */
export function snr (reference: Int16Array, decoded: Int16Array, shift: number): number {
  let signal = 0
  let noise = 0
  for (let i = 0; i < reference.length; i += 1) {
    const j = i + shift
    const want = reference[i] as number
    const got = j >= 0 && j < decoded.length ? decoded[j] as number : 0
    signal += want * want
    noise += (want - got) * (want - got)
  }
  return noise === 0 ? Number.POSITIVE_INFINITY : 10 * Math.log10(signal / noise)
}

/** SNR of a frame-by-frame decode from the vector's first frame against the reference, delay aligned. */
export const snrAgainstReference = (decoded: Int16Array, reference: Int16Array): number =>
  snr(reference, decoded, REFERENCE_DELAY_SAMPLES)
