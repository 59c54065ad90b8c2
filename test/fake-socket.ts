/**
 * An in-memory ChannelSocket (sessions/channel-socket.ts) for unit tests of the
 * channel, the connections and the session: no server, no port. The test plays
 * the peer (`peer*` methods) and reads what the server side wrote (`sent`,
 * `closeSent`, `pings`). Events come as `ws` emits them: frames at once, `close`
 * on a later turn, once the close handshake is over or the socket is destroyed,
 * with the code the peer's close frame carried (1006 when none came).
 */
import { EventEmitter, once } from 'node:events'
import type { ChannelSocket, SocketData } from '../sessions/channel-socket.js'

/** `readyState` values, as `ws` numbers them. */
export const SocketState = { OPEN: 1, CLOSING: 2, CLOSED: 3 } as const

/** No close frame arrived before the socket ended (RFC 6455 7.1.5). */
export const ABNORMAL_CLOSURE = 1006

export interface SentFrame { data: string | Buffer, binary: boolean }
export interface CloseFrame { code: number, reason: string }

export class FakeSocket extends EventEmitter implements ChannelSocket {
  readyState: number = SocketState.OPEN
  /** Every frame the server side wrote while open, oldest first, whether or not the peer read it yet. */
  readonly sent: SentFrame[] = []
  /** The close frame that went to the peer: the server's own, or `ws`'s answer to the peer's. */
  closeSent: CloseFrame | null = null
  /** The close frame the peer sent (its own, or its answer to ours). */
  closeReceived: CloseFrame | null = null
  /** Pings the server sent. */
  pings = 0
  /** The server side destroyed the socket (no close frame, or no wait for the answer). */
  terminated = false
  /** Calls of terminate(), including those on a socket already closed (which do nothing, as in ws). */
  terminateCalls = 0
  /** Whether the peer answers our close frame; false plays a peer that never does. */
  answersClose = true
  private reading = true
  private unread = 0
  /** ws stopped reading the peer after refusing one of its frames. */
  private stoppedReadingPeer = false
  /** The code of the `close` event, once emitted. */
  private closedWith: number | null = null

  constructor (options: { answersClose?: boolean } = {}) {
    super()
    this.answersClose = options.answersClose ?? true
  }

  /** Bytes written since the peer stopped reading. */
  get bufferedAmount (): number { return this.unread }

  // ---- ChannelSocket: what the server side calls ----

  send (data: string | Buffer): void {
    // ws drops data sent after the close began (its callback, if any, gets an error).
    if (this.readyState !== SocketState.OPEN) return
    this.sent.push({ data, binary: typeof data !== 'string' })
    if (!this.reading) this.unread += Buffer.byteLength(data)
  }

  ping (): void {
    if (this.readyState === SocketState.OPEN) this.pings += 1
  }

  close (code: number, reason: string): void {
    if (this.readyState === SocketState.CLOSED || this.closeSent !== null) return
    this.closeSent = { code, reason }
    this.readyState = SocketState.CLOSING
    // The peer closed first and this is the answer: the handshake is complete.
    if (this.closeReceived !== null) {
      this.endLater(this.closeReceived.code)
      return
    }
    if (this.answersClose) setImmediate(() => this.peerAnswersClose())
  }

  terminate (): void {
    this.terminateCalls += 1
    if (this.readyState === SocketState.CLOSED || this.terminated) return
    this.terminated = true
    this.readyState = SocketState.CLOSING
    this.endLater(this.closeReceived?.code ?? ABNORMAL_CLOSURE)
  }

  // ---- The peer: what the test does ----

  /** A text frame; objects are sent as their JSON. */
  peerSends (message: string | object): void {
    this.peerSendsRaw(Buffer.from(typeof message === 'string' ? message : JSON.stringify(message)), false)
  }

  peerSendsBinary (data: Buffer): void { this.peerSendsRaw(data, true) }

  /** A frame in any of the shapes `ws` may hand over (ArrayBuffer, fragments). */
  peerSendsRaw (data: SocketData, isBinary: boolean): void {
    // Frames still arrive after our close frame went out, until the peer's close frame.
    if (this.readyState === SocketState.CLOSED || this.closeReceived !== null || this.stoppedReadingPeer) throw new Error('the peer cannot send: the socket is closed')
    this.emit('message', data, isBinary)
  }

  peerPings (): void { this.emit('ping', Buffer.alloc(0)) }

  peerPongs (): void { this.emit('pong', Buffer.alloc(0)) }

  /** The peer starts the close handshake; `ws` answers with the same code and then ends the socket. */
  peerCloses (code: number, reason = ''): void {
    if (this.closeReceived !== null || this.readyState === SocketState.CLOSED) return
    this.closeReceived = { code, reason }
    this.readyState = SocketState.CLOSING
    if (this.closeSent === null) this.closeSent = { code, reason: '' }
    this.endLater(code)
  }

  /** The network went away: no close frame, `close` with 1006. */
  peerDrops (): void {
    if (this.readyState === SocketState.CLOSED) return
    this.readyState = SocketState.CLOSING
    this.endLater(ABNORMAL_CLOSURE)
  }

  /**
   * The WebSocket layer refused a frame of the peer (too big, invalid UTF-8): as `ws`
   * does, it sends a close frame with `status` itself, then emits the error. It reads
   * nothing more from the peer, not even the answer to that close frame, so `close`
   * comes with 1006 once the peer hangs up.
   */
  peerSendsRefusedFrame (errorCode: string, status: number): void {
    this.close(status, '')
    this.stoppedReadingPeer = true
    this.emit('error', Object.assign(new Error(`refused frame: ${errorCode}`), { code: errorCode }))
  }

  /** An error below the WebSocket layer (a reset): the socket itself stays as it is. */
  transportError (code = 'ECONNRESET'): void {
    this.emit('error', Object.assign(new Error(code), { code }))
  }

  /** The peer stops reading: from here on everything sent stays buffered. */
  peerStopsReading (): void { this.reading = false }

  /** The peer reads everything buffered and keeps reading. */
  peerReads (): void {
    this.reading = true
    this.unread = 0
  }

  // ---- Reading what the server side did ----

  /** The text frames sent, parsed as JSON. */
  messages (): Array<{ type: string, [key: string]: unknown }> {
    return this.sent.filter(frame => !frame.binary).map(frame => JSON.parse(String(frame.data)) as { type: string })
  }

  /** The types of the text frames sent, in order. */
  types (): string[] { return this.messages().map(message => message.type) }

  binaries (): Buffer[] { return this.sent.filter(frame => frame.binary).map(frame => frame.data as Buffer) }

  /**
   * Resolves with the code of the `close` event, at once if it was emitted already; rejects
   * when none comes within `ms`. Its timer also keeps the process up meanwhile: the
   * channel's own close-handshake timer is unref'd.
   */
  async closed (ms = 2000): Promise<number> {
    if (this.closedWith !== null) return this.closedWith
    const controller = new AbortController()
    const timer = setTimeout(() => controller.abort(new Error(`no close event within ${ms} ms`)), ms)
    try {
      const [code] = await once(this, 'close', { signal: controller.signal }) as [number]
      return code
    } finally {
      clearTimeout(timer)
    }
  }

  /** The socket ends on a later turn, as a real one does when its TCP connection closes. */
  private endLater (code: number): void {
    setImmediate(() => {
      if (this.closedWith !== null) return
      this.closedWith = code
      this.readyState = SocketState.CLOSED
      this.emit('close', code, Buffer.from(this.closeReceived?.reason ?? ''))
    })
  }

  private peerAnswersClose (): void {
    if (this.closeReceived !== null || this.readyState === SocketState.CLOSED || this.terminated) return
    if (this.stoppedReadingPeer) {
      this.endLater(ABNORMAL_CLOSURE)
      return
    }
    const code = this.closeSent?.code ?? ABNORMAL_CLOSURE
    this.closeReceived = { code, reason: this.closeSent?.reason ?? '' }
    this.endLater(code)
  }
}
