/**
 * One server-side WebSocket with the bookkeeping every Tether socket needs:
 * listeners attached synchronously when it arrives (STYLE habit 7), frames
 * buffered until an owner binds, bad-frame accounting, outbound backpressure,
 * and a record of who closed it and with which code. Glasses and app sockets
 * extend it. It knows the socket only as a ChannelSocket (`ws`'s own in
 * production, the in-memory fake in tests).
 */
import { randomUUID } from 'node:crypto'
import { CloseCode, CloseReason, type CloseCodeValue } from '../protocol/close-codes.js'
import { BadFrameCounter } from './bad-frames.js'
import { SOCKET_OPEN, type ChannelSocket, type SocketData } from './channel-socket.js'
import type { NodeEvents, SocketSide } from './node-events.js'

/** Where a bound channel delivers its frames: the session (or its app sockets) that owns it. */
export interface ChannelSink<C> {
  onText: (channel: C, text: string, bytes: number) => void
  onBinary: (channel: C, data: Buffer) => void
  onClose: (channel: C, code: number) => void
}

export interface ChannelLimits {
  maxBufferedBytes: number
  maxBadFrames: number
  /** How long a peer has to answer our close frame; CLOSE_HANDSHAKE_MS unless given (tests shorten it). */
  closeHandshakeMs?: number
}

/** Who ended the socket: the peer, our silence check, or the server on purpose. */
export type CloseCause = 'client' | 'silence' | 'server'

/** Frames a socket may send before its owner is ready; more is a client that does not wait for its ack. */
const MAX_EARLY_FRAMES = 256

/** Close codes `ws` sends itself when it refuses a frame. */
const WS_ERROR_CLOSE_CODES: Record<string, number> = {
  WS_ERR_UNSUPPORTED_MESSAGE_LENGTH: CloseCode.MESSAGE_TOO_BIG,
  WS_ERR_INVALID_UTF8: CloseCode.INVALID_PAYLOAD
}
const WS_PROTOCOL_ERROR = 1002
/**
 * How long a peer has to answer our close frame before its socket is destroyed.
 * ws waits 30 s; a peer that stopped reading (the slow consumer we close 4009)
 * would hold its buffers that long.
 */
const CLOSE_HANDSHAKE_MS = 2000

/** The channel a socket belongs to, for the listeners below, which are shared by every socket. */
const kChannel = Symbol('tether.channel')
type TaggedSocket = ChannelSocket & { [kChannel]: SocketChannel }
const channelOf = (socket: ChannelSocket): SocketChannel => (socket as TaggedSocket)[kChannel]

export abstract class SocketChannel {
  /** Which kind of client is on the other end (a getter of the subclass: nothing stored per socket). */
  abstract get side (): SocketSide
  readonly id = randomUUID()
  readonly openedAt = Date.now()
  lastInboundAt = Date.now()
  /** Why the socket ended, once it has. */
  cause: CloseCause | null = null
  closeCodeSent: number | null = null
  private sink: ChannelSink<this> | null = null
  /** Frames waiting for an owner; null once one is bound and everything is delivered live. */
  private pending: Array<{ data: Buffer, binary: boolean }> | null = []
  private flushing = false
  private closedWith: number | null = null
  /** Made at the first bad frame: most sockets never send one. */
  private badFrames: BadFrameCounter | null = null

  constructor (
    protected readonly socket: ChannelSocket,
    private readonly limits: ChannelLimits,
    /** Told of every close code this side sends (metrics); unit tests may leave it out. */
    private readonly events: NodeEvents | null = null
  ) {
    // One set of listener functions for every socket, not five closures per socket:
    // at ten thousand idle sockets the closures and their scopes cost megabytes.
    ;(socket as TaggedSocket)[kChannel] = this
    socket.on('message', SocketChannel.onMessage)
    socket.on('ping', SocketChannel.onHeard)
    socket.on('pong', SocketChannel.onHeard)
    socket.on('close', SocketChannel.onClose)
    socket.on('error', SocketChannel.onError)
  }

  // EventEmitter calls a listener with the socket as `this`.
  private static onMessage (this: ChannelSocket, data: SocketData, isBinary: boolean): void { channelOf(this).receive(data, isBinary) }
  private static onHeard (this: ChannelSocket): void { channelOf(this).lastInboundAt = Date.now() }
  private static onClose (this: ChannelSocket, code: number): void { channelOf(this).closed(code) }
  private static onError (this: ChannelSocket, error: Error & { code?: unknown }): void { channelOf(this).protocolError(error) }

  get isOpen (): boolean { return this.closedWith === null && this.socket.readyState === SOCKET_OPEN }

  /**
   * Start delivering to the owner, oldest buffered frame first (and the close, if
   * it came already). An owner may hand the channel on by binding again from inside
   * a delivery (the init frame of an app socket): the rest goes to the new owner.
   */
  bind (sink: ChannelSink<this>): void {
    this.sink = sink
    if (this.flushing) return
    this.flushing = true
    try {
      while (this.sink !== null && this.pending !== null && this.pending.length > 0) {
        const frame = this.pending.shift() as { data: Buffer, binary: boolean }
        this.deliver(frame.data, frame.binary)
      }
    } finally {
      this.flushing = false
    }
    if (this.sink === null) return
    this.pending = null
    if (this.closedWith !== null) this.sink.onClose(this, this.closedWith)
  }

  /** Stop delivering anything: a replaced or disposed owner's socket is deaf from here on. */
  unbind (): void {
    this.sink = null
    this.pending = null
  }

  /**
   * Serialise and send; returns the bytes sent, 0 when nothing was. Closes 4009
   * when the peer does not read fast enough.
   */
  send<M extends { type: string }> (message: M): number {
    if (!this.isOpen) return 0
    const text = JSON.stringify(message)
    this.socket.send(text)
    if (this.socket.bufferedAmount > this.limits.maxBufferedBytes) {
      this.close(CloseCode.SLOW_CONSUMER)
      return 0
    }
    return Buffer.byteLength(text)
  }

  /**
   * Send a binary frame unless the peer is already behind: such frames (audio) are
   * dropped rather than buffered without bound. False when dropped or closed.
   */
  sendDroppable (data: Buffer): boolean {
    if (!this.isOpen || this.socket.bufferedAmount > this.limits.maxBufferedBytes) return false
    this.socket.send(data)
    return true
  }

  ping (): void {
    if (this.isOpen) this.socket.ping()
  }

  close (code: CloseCodeValue, reason: string = CloseReason[code]): void {
    if (this.cause !== null) return
    this.cause = 'server'
    this.closeCodeSent = code
    this.events?.emit('socket.close_sent', this.side, code)
    this.socket.close(code, reason)
    const force = setTimeout(() => this.socket.terminate(), this.limits.closeHandshakeMs ?? CLOSE_HANDSHAKE_MS).unref()
    this.socket.once('close', () => clearTimeout(force))
  }

  /** Drop the socket without a close frame (the peer sees 1006): used for silent peers. */
  terminate (): void {
    if (this.cause === null) this.cause = 'silence'
    this.socket.terminate()
  }

  /** Count a bad frame; true when the socket passed MAX_BAD_FRAMES in the last minute. */
  recordBadFrame (now = Date.now()): boolean {
    this.badFrames ??= new BadFrameCounter(this.limits.maxBadFrames)
    return this.badFrames.record(now)
  }

  private receive (data: SocketData, binary: boolean): void {
    this.lastInboundAt = Date.now()
    // ws hands text and binary frames over as one Buffer unless binaryType says otherwise.
    const buffer = Buffer.isBuffer(data) ? data : Buffer.concat(Array.isArray(data) ? data : [Buffer.from(data)])
    if (this.pending !== null || this.flushing) {
      this.pending ??= []
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
  private protocolError (error: Error & { code?: unknown }): void {
    if (this.cause !== null) return
    if (typeof error.code !== 'string' || !error.code.startsWith('WS_ERR_')) {
      // A transport error (reset, broken pipe): the socket is done.
      this.socket.terminate()
      return
    }
    const code = WS_ERROR_CLOSE_CODES[error.code] ?? WS_PROTOCOL_ERROR
    this.cause = 'server'
    this.closeCodeSent = code
    this.events?.emit('socket.close_sent', this.side, code)
  }

  private closed (code: number): void {
    if (this.closedWith !== null) return
    this.closedWith = code
    if (this.cause === null) this.cause = 'client'
    if (this.sink !== null) this.sink.onClose(this, code)
  }
}
