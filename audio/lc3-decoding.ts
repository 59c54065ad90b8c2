/**
 * The node's LC3 decoding, shared by every session (plugins/apps.ts makes one;
 * managers/audio-manager.ts opens a stream per session that streams LC3).
 *
 * Decoding runs on one worker thread by default, chosen by measurement
 * (bench/lc3-decode.ts; `node dist/bench/lc3-decode.js --rounds 3` on 2 cores).
 * lc3codec costs 22-32 us of CPU per 10 ms frame, 2.2-3.2 ms per second of
 * audio per phone, so 200 streaming phones want 60-75% of a core. Decoded on
 * the main thread, that time comes in slices of about 0.3 ms (one 10-frame
 * message) between every other session's messages and timers: the event-loop
 * delay went from 1.1 / 1.3 / 4-5 ms (p50 / p99 / max, no decoding) to
 * 2.5-5 / 6-9 / 8-13 ms, with the main thread 58-78% busy. Decoded in the
 * worker it stayed at 1.1 / 2-3 / 5-12 ms with the main thread 6-9% busy. The
 * price: 15-30% more CPU in all (the hand-over, and two threads running at
 * once), and a message's PCM comes about 2 ms after it (p50), later when the
 * machine is short of CPU. `thread: 'main'` decodes in `push` instead.
 *
 * Contract, the same in both modes: `onPcm` is called once per pushed message,
 * in push order, with N x 320 bytes of PCM16 LE for the message's N whole
 * frames (asynchronously with the worker); after `dispose()` a stream gets no
 * more callbacks. Two exceptions, both counted: when the worker's backlog
 * passes `maxPendingFrames`, a push is dropped rather than queued without
 * bound; if the worker dies, decoding carries on in this thread with fresh
 * decoders (a glitch, but every message is still answered, in order). A throw
 * from `onPcm` goes to `onError`, never to the caller of `push`.
 */
import { Worker } from 'node:worker_threads'
import { Lc3Decoder, isLc3FrameSize, type Lc3FrameSize } from './lc3-decoder.js'
import { LC3_WORKER_DATA, Lc3Op, type DecodeBatch, type DecodedBatch } from './lc3-worker.js'

export type { Lc3FrameSize } from './lc3-decoder.js'

export interface StreamDecoder {
  push (data: Buffer): void
  dispose (): void
}

export type Lc3DecodingThread = 'worker' | 'main'

export interface Lc3DecodingStats {
  /** Streams opened and not disposed. */
  streams: number
  /** Whole frames turned into PCM, failed ones included. */
  framesDecoded: number
  /** Frames that failed to decode and became silence. */
  framesFailed: number
  /** Pushes dropped because the worker's backlog was full. */
  messagesDropped: number
  /** Where decoding happens now ('main' after a worker failure). */
  thread: Lc3DecodingThread
}

export interface Lc3Decoding {
  open (frameSizeBytes: Lc3FrameSize, onPcm: (pcm: Buffer) => void): StreamDecoder
  /** Ends the worker, if any; streams get no more callbacks. Idempotent. */
  close (): Promise<void>
  stats (): Lc3DecodingStats
}

export interface Lc3DecodingOptions {
  /** 'worker' (the default): one worker thread decodes for every stream; 'main': decode in `push`. */
  thread?: Lc3DecodingThread
  /** Frames handed to the worker and not back yet, past which a push is dropped. Default 20,000: about 0.7 s of one core. */
  maxPendingFrames?: number
  /** Told when the worker fails or an `onPcm` throws. Default: a process warning. */
  onError?: (error: Error) => void
  /** The worker's entry module; tests point it elsewhere. Default: audio/lc3-worker next to this file. */
  workerUrl?: URL
}

const DEFAULT_MAX_PENDING_FRAMES = 20_000

/** Under tap this module is the TypeScript source; built, it is JavaScript in dist/: the worker is its sibling either way. */
const WORKER_URL = new URL(import.meta.url.endsWith('.ts') ? './lc3-worker.ts' : './lc3-worker.js', import.meta.url)

const INERT: StreamDecoder = { push () {}, dispose () {} }

function defaultOnError (error: Error): void {
  process.emitWarning(error)
}

function checkFrameSize (frameSizeBytes: number): void {
  if (!isLc3FrameSize(frameSizeBytes)) throw new RangeError(`LC3 frame size must be 20, 40 or 60 bytes, not ${String(frameSizeBytes)}`)
}

export function createLc3Decoding (options: Lc3DecodingOptions = {}): Lc3Decoding {
  const onError = options.onError ?? defaultOnError
  if (options.thread === 'main') return new InlineDecoding(onError)
  return new WorkerDecoding(onError, options.maxPendingFrames ?? DEFAULT_MAX_PENDING_FRAMES, options.workerUrl ?? WORKER_URL)
}

/** Decoding in the calling thread: `push` decodes and calls back before it returns. */
class InlineDecoding implements Lc3Decoding {
  private streams = 0
  private decoded = 0
  private failed = 0
  private closed = false

  constructor (private readonly onError: (error: Error) => void) {}

  open (frameSizeBytes: Lc3FrameSize, onPcm: (pcm: Buffer) => void): StreamDecoder {
    checkFrameSize(frameSizeBytes)
    if (this.closed) return INERT
    const decoder = new Lc3Decoder(frameSizeBytes)
    let open = true
    this.streams += 1
    return {
      push: data => {
        if (!open || this.closed) return
        const frames = decoder.frames
        const failed = decoder.failedFrames
        const pcm = decoder.decode(data)
        this.decoded += decoder.frames - frames
        this.failed += decoder.failedFrames - failed
        deliver(onPcm, pcm, this.onError)
      },
      dispose: () => {
        if (!open) return
        open = false
        if (!this.closed) this.streams -= 1
      }
    }
  }

  async close (): Promise<void> {
    this.closed = true
    this.streams = 0
  }

  stats (): Lc3DecodingStats {
    return { streams: this.streams, framesDecoded: this.decoded, framesFailed: this.failed, messagesDropped: 0, thread: 'main' }
  }
}

function deliver (onPcm: (pcm: Buffer) => void, pcm: Buffer, onError: (error: Error) => void): void {
  try {
    onPcm(pcm)
  } catch (error) {
    onError(error instanceof Error ? error : new Error(String(error)))
  }
}

interface WorkerStream {
  readonly id: number
  readonly frameSizeBytes: Lc3FrameSize
  readonly onPcm: (pcm: Buffer) => void
  /** This thread's decoder once the worker has failed. */
  inline: StreamDecoder | null
}

type Queued =
  | { op: 'open' | 'close', stream: WorkerStream }
  | { op: 'push', stream: WorkerStream, data: Buffer }

/**
 * One worker, started on the first stream's first batch. What streams do within
 * one turn of the event loop goes to the worker as one batch (at setImmediate);
 * the reply carries every push's PCM back in the same order.
 */
class WorkerDecoding implements Lc3Decoding {
  private readonly streams = new Map<number, WorkerStream>()
  private nextId = 0
  private worker: Worker | null = null
  /** Set when the worker has failed: every stream decodes here from then on. */
  private inline: InlineDecoding | null = null
  private queue: Queued[] = []
  private queuedBytes = 0
  private queuedFrames = 0
  private flushScheduled = false
  /** What each batch in the worker held, oldest first: replayed here if the worker dies before answering. */
  private sent: Queued[][] = []
  private pendingFrames = 0
  private decoded = 0
  private failed = 0
  private dropped = 0
  private closing: Promise<void> | null = null

  constructor (
    private readonly onError: (error: Error) => void,
    private readonly maxPendingFrames: number,
    private readonly workerUrl: URL
  ) {}

  open (frameSizeBytes: Lc3FrameSize, onPcm: (pcm: Buffer) => void): StreamDecoder {
    checkFrameSize(frameSizeBytes)
    if (this.closing !== null) return INERT
    const stream: WorkerStream = { id: this.nextId, frameSizeBytes, onPcm, inline: null }
    this.nextId = (this.nextId + 1) >>> 0
    this.streams.set(stream.id, stream)
    if (this.inline !== null) stream.inline = this.inline.open(frameSizeBytes, onPcm)
    else this.enqueue({ op: 'open', stream })
    return {
      push: data => this.push(stream, data),
      dispose: () => this.dispose(stream)
    }
  }

  async close (): Promise<void> {
    if (this.closing !== null) return await this.closing
    this.streams.clear()
    this.queue = []
    const worker = this.worker
    this.worker = null
    this.closing = (async () => {
      await this.inline?.close()
      if (worker !== null) await worker.terminate()
    })()
    await this.closing
  }

  stats (): Lc3DecodingStats {
    const inline = this.inline?.stats()
    return {
      streams: this.streams.size,
      framesDecoded: this.decoded + (inline?.framesDecoded ?? 0),
      framesFailed: this.failed + (inline?.framesFailed ?? 0),
      messagesDropped: this.dropped,
      thread: inline === undefined ? 'worker' : 'main'
    }
  }

  private push (stream: WorkerStream, data: Buffer): void {
    if (this.streams.get(stream.id) !== stream) return
    if (stream.inline !== null) {
      stream.inline.push(data)
      return
    }
    const frames = Math.floor(data.length / stream.frameSizeBytes)
    if (this.pendingFrames + this.queuedFrames + frames > this.maxPendingFrames) {
      this.dropped += 1
      return
    }
    this.queuedFrames += frames
    this.queuedBytes += data.length
    this.enqueue({ op: 'push', stream, data })
  }

  private dispose (stream: WorkerStream): void {
    if (this.streams.get(stream.id) !== stream) return
    this.streams.delete(stream.id)
    if (stream.inline !== null) stream.inline.dispose()
    else this.enqueue({ op: 'close', stream })
  }

  private enqueue (item: Queued): void {
    this.queue.push(item)
    if (this.flushScheduled) return
    this.flushScheduled = true
    setImmediate(() => this.flush())
  }

  private flush (): void {
    this.flushScheduled = false
    const queue = this.queue
    if (queue.length === 0 || this.closing !== null) return
    const frames = this.queuedFrames
    const batch: DecodeBatch = { ops: new Uint32Array(queue.length * 3), data: new Uint8Array(this.queuedBytes), frames }
    this.queue = []
    this.queuedBytes = 0
    this.queuedFrames = 0
    let offset = 0
    queue.forEach((item, index) => {
      const at = index * 3
      batch.ops[at + 1] = item.stream.id
      if (item.op === 'push') {
        batch.ops[at] = Lc3Op.push
        batch.ops[at + 2] = item.data.length
        batch.data.set(item.data, offset)
        offset += item.data.length
      } else if (item.op === 'open') {
        batch.ops[at] = Lc3Op.open
        batch.ops[at + 2] = item.stream.frameSizeBytes
      } else {
        batch.ops[at] = Lc3Op.close
      }
    })
    const worker = this.worker ?? this.startWorker()
    if (worker === null) {
      this.replay(queue)
      return
    }
    worker.postMessage(batch, [batch.ops.buffer, batch.data.buffer])
    this.pendingFrames += frames
    if (this.sent.length === 0) worker.ref()
    this.sent.push(queue)
  }

  private startWorker (): Worker | null {
    let worker: Worker
    try {
      worker = new Worker(this.workerUrl, { workerData: LC3_WORKER_DATA })
    } catch (error) {
      this.failOver(null, error instanceof Error ? error : new Error(String(error)))
      return null
    }
    // Idle, the worker does not keep the process alive; a batch in flight does (see flush and onReply).
    worker.unref()
    worker.on('message', (reply: DecodedBatch) => this.onReply(worker, reply))
    worker.on('error', error => this.failOver(worker, error))
    worker.on('exit', code => this.failOver(worker, new Error(`the LC3 worker exited with code ${code}`)))
    this.worker = worker
    return worker
  }

  private onReply (worker: Worker, reply: DecodedBatch): void {
    if (worker !== this.worker) return
    this.sent.shift()
    if (this.sent.length === 0) worker.unref()
    this.pendingFrames -= reply.frames
    this.decoded += reply.decoded
    this.failed += reply.failed
    const { chunks, pcm } = reply
    let offset = 0
    for (let i = 0; i + 1 < chunks.length; i += 2) {
      const length = chunks[i + 1] as number
      const stream = this.streams.get(chunks[i] as number)
      // A copy: one chunk held by a slow app must not pin the whole batch's PCM.
      if (stream !== undefined) deliver(stream.onPcm, Buffer.from(pcm.subarray(offset, offset + length)), this.onError)
      offset += length
    }
  }

  /**
   * The worker is gone (or never started): every open stream gets a fresh
   * decoder in this thread, and every push the worker had not answered, then
   * every push still queued, is decoded here, in order, before anything pushed
   * later. A push is never answered twice: the worker answers whole batches.
   */
  private failOver (worker: Worker | null, error: Error): void {
    if (worker !== this.worker || this.closing !== null || this.inline !== null) return
    this.worker = null
    this.pendingFrames = 0
    const unanswered = this.sent
    this.sent = []
    const inline = new InlineDecoding(this.onError)
    this.inline = inline
    for (const stream of this.streams.values()) stream.inline = inline.open(stream.frameSizeBytes, stream.onPcm)
    this.onError(error)
    const queue = this.queue
    this.queue = []
    this.queuedBytes = 0
    this.queuedFrames = 0
    for (const batch of unanswered) this.replay(batch)
    this.replay(queue)
  }

  private replay (queue: readonly Queued[]): void {
    for (const item of queue) {
      if (item.op === 'push' && this.streams.get(item.stream.id) === item.stream) item.stream.inline?.push(item.data)
    }
  }
}
