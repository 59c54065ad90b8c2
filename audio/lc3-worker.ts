/**
 * The worker thread of audio/lc3-decoding.ts: it holds one Lc3Decoder per
 * stream and decodes batches the main thread sends, so LC3 decoding (22-32 us
 * of CPU per 10 ms frame; bench/lc3-decode.ts) does not hold up every other
 * session's socket on the main thread.
 *
 * One message each way per batch, both carried in transferred typed arrays:
 * the main thread sends what every stream did since its last batch, in order,
 * and gets back every push's PCM, in the same order. A stream's pushes are
 * therefore decoded in push order, and batches never overtake one another.
 */
import { parentPort, workerData } from 'node:worker_threads'
import { Lc3Decoder, PCM_BYTES_PER_FRAME, isLc3FrameSize } from './lc3-decoder.js'

/** The worker's `workerData`: a thread started for anything else that imports this module does not serve batches. */
export const LC3_WORKER_DATA = 'tether-lc3-worker'

/** What a stream did; ops travel as (op, stream id, argument) triples. */
export const Lc3Op = {
  /** Argument: the stream's frame size in bytes. */
  open: 0,
  /** Argument: the byte length of the message, which follows the previous pushes' bytes in `data`. */
  push: 1,
  /** Argument unused: the stream is disposed. */
  close: 2
} as const

export type Lc3OpCode = typeof Lc3Op[keyof typeof Lc3Op]

/** Main thread to worker. */
export interface DecodeBatch {
  /** (op, stream id, argument) triples, in the order they happened. */
  ops: Uint32Array<ArrayBuffer>
  /** The pushed messages, concatenated in op order. */
  data: Uint8Array<ArrayBuffer>
  /** Whole frames this batch holds: echoed back so the main thread knows its backlog. */
  frames: number
}

/** Worker to main thread: one per batch. */
export interface DecodedBatch {
  /** (stream id, PCM byte length) pairs, one per push of the batch, in the same order. */
  chunks: Uint32Array<ArrayBuffer>
  /** The PCM of every push, concatenated in `chunks` order. */
  pcm: Uint8Array<ArrayBuffer>
  /** The batch's `frames`, echoed. */
  frames: number
  /** Frames decoded (failed ones included) and failed, in this batch. */
  decoded: number
  failed: number
}

/** A batch against a table of stream decoders (separate from the thread so it can be tested in-process). */
export function decodeBatch (decoders: Map<number, Lc3Decoder>, batch: DecodeBatch): DecodedBatch {
  const { ops, data } = batch
  const chunks: number[] = []
  const pieces: Buffer[] = []
  let offset = 0
  let total = 0
  let decoded = 0
  let failed = 0
  for (let i = 0; i + 2 < ops.length; i += 3) {
    const op = ops[i] as number
    const stream = ops[i + 1] as number
    const arg = ops[i + 2] as number
    if (op === Lc3Op.open) {
      if (isLc3FrameSize(arg)) decoders.set(stream, new Lc3Decoder(arg))
    } else if (op === Lc3Op.close) {
      decoders.delete(stream)
    } else if (op === Lc3Op.push) {
      const message = data.subarray(offset, offset + arg)
      offset += arg
      const decoder = decoders.get(stream)
      if (decoder === undefined) continue
      const before = decoder.failedFrames
      const pcm = decoder.decode(message)
      decoded += pcm.length / PCM_BYTES_PER_FRAME
      failed += decoder.failedFrames - before
      chunks.push(stream, pcm.length)
      pieces.push(pcm)
      total += pcm.length
    }
  }
  const pcm = new Uint8Array(total)
  let at = 0
  for (const piece of pieces) { pcm.set(piece, at); at += piece.length }
  return { chunks: Uint32Array.from(chunks), pcm, frames: batch.frames, decoded, failed }
}

const port = parentPort
if (port !== null && workerData === LC3_WORKER_DATA) {
  const decoders = new Map<number, Lc3Decoder>()
  port.on('message', (batch: DecodeBatch) => {
    const reply = decodeBatch(decoders, batch)
    port.postMessage(reply, [reply.chunks.buffer, reply.pcm.buffer])
  })
}
