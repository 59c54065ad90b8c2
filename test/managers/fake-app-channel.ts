/**
 * An app socket for manager unit tests: the AppChannel the app side uses
 * (sessions/app-connection.ts), in memory. It records what was sent and how it
 * ended; `receive` and `drop` play the app. Like SocketChannel, it holds frames
 * until an owner binds and delivers nothing once unbound; unlike it, the close
 * event of a server close follows at once (ws waits for the handshake).
 */
import type { CloseCodeValue } from '../../protocol/close-codes.js'
import type { AppChannel, AppChannelSink } from '../../sessions/app-connection.js'
import type { SentMessage } from './fake-session.js'

export class FakeAppChannel implements AppChannel {
  packageName: string | null = null
  appSessionId: string | null = null
  /** Every JSON message sent to the app, as it would read it. */
  readonly sent: SentMessage[] = []
  /** Every binary frame (audio) sent to the app. */
  readonly binary: Buffer[] = []
  /** The close frame we sent, once we did. */
  closedWith: { code: number, reason: string | undefined } | null = null
  terminated = false
  /** True makes sendDroppable drop, as for an app behind on its reading. */
  behind = false
  private sink: AppChannelSink | null = null
  /** Frames before the first bind; null once bound or unbound. */
  private early: string[] | null = []
  /** Set when the socket closed (either side), with the code the owner is told. */
  private closeCode: number | null = null
  private badFrames = 0

  /** `maxBadFrames`: how many bad frames are tolerated (MAX_BAD_FRAMES a minute on a real socket). */
  constructor (private readonly maxBadFrames = 20) {}

  get isOpen (): boolean { return this.closeCode === null && !this.terminated }

  /** True while an owner listens. */
  get bound (): boolean { return this.sink !== null }

  bind (sink: AppChannelSink): void {
    this.sink = sink
    const early = this.early ?? []
    this.early = null
    for (const text of early) if (this.sink === sink) sink.onText(this, text, Buffer.byteLength(text))
    if (this.closeCode !== null && this.sink === sink) sink.onClose(this, this.closeCode)
  }

  unbind (): void {
    this.sink = null
    this.early = null
  }

  send<M extends { type: string }> (message: M): number {
    if (!this.isOpen) return 0
    const text = JSON.stringify(message)
    this.sent.push(JSON.parse(text) as SentMessage)
    return Buffer.byteLength(text)
  }

  sendDroppable (data: Buffer): boolean {
    if (!this.isOpen || this.behind) return false
    this.binary.push(data)
    return true
  }

  close (code: CloseCodeValue, reason?: string): void {
    if (this.closeCode !== null) return
    this.closedWith = { code, reason }
    this.ended(code)
  }

  terminate (): void {
    this.terminated = true
    this.ended(1006)
  }

  recordBadFrame (): boolean {
    this.badFrames += 1
    return this.badFrames > this.maxBadFrames
  }

  // ---- the app's side ----

  /** The app sends a text frame (an object is sent as its JSON). */
  receive (frame: string | object): void {
    const text = typeof frame === 'string' ? frame : JSON.stringify(frame)
    if (this.early !== null) this.early.push(text)
    else this.sink?.onText(this, text, Buffer.byteLength(text))
  }

  /** The app sends a binary frame. */
  receiveBinary (data: Buffer): void { this.sink?.onBinary(this, data) }

  /** The app's socket goes away (a drop: 1006 unless said). */
  drop (code = 1006): void { this.ended(code) }

  /** What the app received of one type. */
  of (type: string): SentMessage[] { return this.sent.filter(m => m.type === type) }

  private ended (code: number): void {
    if (this.closeCode !== null) return
    this.closeCode = code
    this.sink?.onClose(this, code)
  }
}
