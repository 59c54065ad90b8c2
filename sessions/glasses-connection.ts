/**
 * One glasses socket. Listeners are attached synchronously when the socket
 * arrives (STYLE habit 7); frames that come before the session is ready are
 * buffered and handed over, in order, when the session binds.
 */
import { randomUUID } from 'node:crypto'
import type { RawData, WebSocket } from 'ws'
import { CloseCode, CloseReason, type CloseCodeValue } from '../protocol/close-codes.js'
import type { ServerMessage } from '../protocol/server-messages.js'

/** Who the token said this socket belongs to. */
export interface GlassesIdentity {
  /** Trimmed, lower-cased `email` claim. */
  userId: string
  /** The `sub` claim, recorded for audit. */
  subject: string
}

/** Where a bound connection delivers its events: the session that owns it. */
export interface ConnectionSink {
  onText: (connection: GlassesConnection, text: string, bytes: number) => void
  onBinary: (connection: GlassesConnection, data: Buffer) => void
  onClose: (connection: GlassesConnection, code: number) => void
}

/** Observers outside the session (metrics). */
export interface ConnectionObserver {
  onCloseSent?: (code: number) => void
}

export type CloseCause = 'client' | 'silence' | 'server'

const BAD_FRAME_WINDOW_MS = 60_000
/** Frames a socket may send before its session is ready; more is a client that does not wait for its ack. */
const MAX_EARLY_FRAMES = 256

const WS_ERROR_CLOSE_CODES: Record<string, number> = {
  WS_ERR_UNSUPPORTED_MESSAGE_LENGTH: CloseCode.MESSAGE_TOO_BIG,
  WS_ERR_INVALID_UTF8: CloseCode.INVALID_PAYLOAD
}
const OPEN = 1

export class GlassesConnection {
  readonly id = randomUUID()
  readonly openedAt = Date.now()
  lastInboundAt = Date.now()
  /** Set by the session when it acks, so a `connection_init` re-ack says the same thing. */
  ackedAsReconnection = false
  /** Why the socket ended, once it has: the close code we sent, or silence, or the client. */
  cause: CloseCause | null = null
  closeCodeSent: number | null = null
  private sink: ConnectionSink | null = null
  private pending: Array<{ data: Buffer, binary: boolean }> | null = []
  private closedWith: number | null = null
  private badFrames = 0
  private badFramesSince = 0

  constructor (
    private readonly socket: WebSocket,
    readonly identity: GlassesIdentity,
    private readonly limits: { maxBufferedBytes: number, maxBadFrames: number },
    private readonly observer: ConnectionObserver = {}
  ) {
    socket.on('message', (data, isBinary) => this.receive(data, isBinary))
    socket.on('ping', () => { this.lastInboundAt = Date.now() })
    socket.on('pong', () => { this.lastInboundAt = Date.now() })
    socket.on('close', (code: number) => this.closed(code))
    socket.on('error', (error: NodeJS.ErrnoException) => this.protocolError(error))
  }

  get isOpen (): boolean { return this.closedWith === null && this.socket.readyState === OPEN }

  /** Start delivering to the session, oldest buffered frame first. */
  bind (sink: ConnectionSink): void {
    this.sink = sink
    const buffered = this.pending ?? []
    this.pending = null
    for (const frame of buffered) {
      if (this.sink !== sink) return
      this.deliver(frame.data, frame.binary)
    }
    if (this.closedWith !== null && this.sink === sink) sink.onClose(this, this.closedWith)
  }

  /** Stop delivering anything: a replaced or disposed session's socket is deaf from here on. */
  unbind (): void {
    this.sink = null
    this.pending = null
  }

  /**
   * Serialise and send; returns the bytes sent, 0 when nothing was. Closes 4009
   * when the peer does not read fast enough.
   */
  send (message: ServerMessage): number {
    if (!this.isOpen) return 0
    const text = JSON.stringify(message)
    this.socket.send(text)
    if (this.socket.bufferedAmount > this.limits.maxBufferedBytes) {
      this.close(CloseCode.SLOW_CONSUMER)
      return 0
    }
    return Buffer.byteLength(text)
  }

  ping (): void {
    if (this.isOpen) this.socket.ping()
  }

  close (code: CloseCodeValue, reason: string = CloseReason[code]): void {
    if (this.cause !== null) return
    this.cause = 'server'
    this.closeCodeSent = code
    this.observer.onCloseSent?.(code)
    this.socket.close(code, reason)
  }

  /** Drop the socket without a close frame (the client sees 1006): used for silent peers. */
  terminate (): void {
    if (this.cause === null) this.cause = 'silence'
    this.socket.terminate()
  }

  /** Count a bad frame; true when the socket passed MAX_BAD_FRAMES in the last minute. */
  recordBadFrame (now = Date.now()): boolean {
    if (now - this.badFramesSince > BAD_FRAME_WINDOW_MS) {
      this.badFramesSince = now
      this.badFrames = 0
    }
    this.badFrames += 1
    return this.badFrames > this.limits.maxBadFrames
  }

  private receive (data: RawData, binary: boolean): void {
    this.lastInboundAt = Date.now()
    // ws hands text and binary frames over as one Buffer unless binaryType says otherwise.
    const buffer = Buffer.isBuffer(data) ? data : Buffer.concat(Array.isArray(data) ? data : [Buffer.from(data)])
    if (this.pending !== null) {
      if (this.pending.length >= MAX_EARLY_FRAMES) {
        this.pending = []
        this.close(CloseCode.POLICY_VIOLATION, 'too many frames before the ack')
        return
      }
      this.pending.push({ data: buffer, binary })
      return
    }
    this.deliver(buffer, binary)
  }

  private deliver (data: Buffer, binary: boolean): void {
    if (this.sink === null) return
    if (binary) this.sink.onBinary(this, data)
    else this.sink.onText(this, data.toString('utf8'), data.length)
  }

  /**
   * The WebSocket layer refused a frame and is closing the socket itself (1009 for
   * an oversized frame, 1007 for invalid UTF-8, 1002 otherwise): record it as ours.
   */
  private protocolError (error: NodeJS.ErrnoException): void {
    if (this.cause !== null || typeof error.code !== 'string' || !error.code.startsWith('WS_ERR_')) return
    const code = WS_ERROR_CLOSE_CODES[error.code] ?? 1002
    this.cause = 'server'
    this.closeCodeSent = code
    this.observer.onCloseSent?.(code)
  }

  private closed (code: number): void {
    if (this.closedWith !== null) return
    this.closedWith = code
    if (this.cause === null) this.cause = 'client'
    // Buffered frames of an unbound socket are kept so bind() can still deliver them, then the close.
    if (this.sink !== null) this.sink.onClose(this, code)
  }
}
