/**
 * The app side of the phone fleet: one handler in the bench process serving
 * every session, each over its own real `/app-ws` socket (as an SDK app opens
 * one per session). It subscribes to `button_press` (and `audio_chunk` for the
 * sessions whose phone streams), answers every button press with a display,
 * shows a display when asked (the fleet's once-a-second tick), and times each
 * audio message (PCM from Tether, the LC3 as sent from the baseline) against
 * the LC3 message its phone sent.
 *
 * Against Tether the socket is opened as the `session_request` webhook says
 * (bench/bench-app.ts); the baseline has no webhooks, so there the app
 * connects straight to `/app-ws` with the user as its session id.
 */
import { performance } from 'node:perf_hooks'
import WebSocket from 'ws'
import type { SessionRequest } from './bench-app.js'
import { tally } from './stats.js'

export interface FleetAppsOptions {
  packageName: string
  apiKey: string
  /** True for the sessions whose phone streams audio: their app subscribes to `audio_chunk`. */
  wantsAudio: (userId: string) => boolean
}

interface AppSession {
  readonly userId: string
  readonly sessionId: string
  readonly ws: WebSocket
  ready: boolean
}

/** An LC3 message still on its way to the app. */
const AUDIO_GIVE_UP_MS = 5000

export class FleetApps {
  /** LC3 message sent by the phone -> PCM message at the app (ms), since the last take. */
  audioMs: number[] = []
  /** Binary (audio) messages received by the apps, all told. */
  audioMessages = 0
  /** LC3 messages that never reached the app (matched in order, given up after 5 s). */
  audioLost = 0
  readonly counts: Record<string, number> = {}
  private readonly sessions = new Map<string, AppSession>()
  /** Per user: send times of the LC3 messages not yet seen as PCM, oldest first. */
  private readonly audioInFlight = new Map<string, number[]>()

  constructor (private readonly options: FleetAppsOptions) {}

  get ready (): number {
    let n = 0
    for (const session of this.sessions.values()) if (session.ready) n += 1
    return n
  }

  isReady (userId: string): boolean { return this.sessions.get(userId)?.ready === true }

  /** Tether: the webhook named the socket to open. */
  attach (request: SessionRequest): void {
    this.open(request.userId, request.sessionId, request.mentraOSWebsocketUrl)
  }

  /** The baseline: no webhook, the user is the session id. */
  connectDirect (userId: string, appWsUrl: string): void {
    if (this.sessions.has(userId)) return
    this.open(userId, userId, appWsUrl)
  }

  /** The phone of `userId` sent an LC3 message now. */
  audioSent (userId: string, at: number): void {
    let queue = this.audioInFlight.get(userId)
    if (queue === undefined) this.audioInFlight.set(userId, queue = [])
    queue.push(at)
  }

  /** Show `text` on the user's glasses; false when the app's socket is not ready. */
  display (userId: string, text: string): boolean {
    const session = this.sessions.get(userId)
    if (session?.ready !== true || session.ws.readyState !== WebSocket.OPEN) return false
    session.ws.send(JSON.stringify({
      type: 'display_event',
      packageName: this.options.packageName,
      sessionId: session.sessionId,
      view: 'main',
      layout: { layoutType: 'text_wall', text },
      timestamp: new Date().toISOString()
    }))
    tally(this.counts, 'display_sent')
    return true
  }

  takeAudioSamples (): number[] {
    const samples = this.audioMs
    this.audioMs = []
    return samples
  }

  close (): void {
    for (const session of this.sessions.values()) session.ws.terminate()
    this.sessions.clear()
  }

  private open (userId: string, sessionId: string, url: string): void {
    this.sessions.get(userId)?.ws.terminate()
    const ws = new WebSocket(url, { perMessageDeflate: false })
    const session: AppSession = { userId, sessionId, ws, ready: false }
    this.sessions.set(userId, session)
    ws.on('open', () => {
      ws.send(JSON.stringify({ type: 'tpa_connection_init', sessionId, packageName: this.options.packageName, apiKey: this.options.apiKey }))
    })
    ws.on('error', () => { tally(this.counts, 'socket_error') })
    ws.on('close', () => {
      if (this.sessions.get(userId) === session) this.sessions.delete(userId)
      tally(this.counts, 'closed')
    })
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      if (isBinary) this.onPcm(userId)
      else this.onJson(session, data)
    })
  }

  private onJson (session: AppSession, data: Buffer): void {
    let message: { type?: unknown, streamType?: unknown, data?: { timestamp?: unknown } }
    try {
      message = JSON.parse(data.toString('utf8')) as typeof message
    } catch {
      return
    }
    if (message.type === 'tpa_connection_ack') {
      const subscriptions = this.options.wantsAudio(session.userId) ? ['button_press', 'audio_chunk'] : ['button_press']
      session.ws.send(JSON.stringify({ type: 'subscription_update', packageName: this.options.packageName, sessionId: session.sessionId, subscriptions }))
      session.ready = true
      tally(this.counts, 'acked')
    } else if (message.type === 'data_stream' && message.streamType === 'button_press') {
      // The answer carries the press's own timestamp: the phone matches it to the press it sent.
      this.display(session.userId, `button ${String(message.data?.timestamp)}`)
      tally(this.counts, 'button_received')
    }
  }

  private onPcm (userId: string): void {
    this.audioMessages += 1
    const queue = this.audioInFlight.get(userId)
    if (queue === undefined) return
    const now = performance.now()
    // Messages the server dropped would shift every later match: give up on the ones far too old.
    while (queue.length > 1 && now - (queue[0] as number) > AUDIO_GIVE_UP_MS) {
      queue.shift()
      this.audioLost += 1
    }
    const sentAt = queue.shift()
    if (sentAt !== undefined) this.audioMs.push(now - sentAt)
  }
}
