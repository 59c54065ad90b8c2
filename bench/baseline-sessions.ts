/**
 * The raw baseline's sessions: what Tether does for a glasses socket, written
 * the way a minimal `ws` server would. One session per user with a grace
 * period and resume, the same `connection_ack`, a heartbeat (one shared sweep
 * that pings every socket and terminates silent ones, as in the `ws` README),
 * counters for the admin summary, and the work the phone fleet asks of a
 * session: one app per session (`/app-ws`), audio relayed to it when it
 * subscribes to `audio_chunk` (with the microphone turned on at the phone, as
 * Tether does), `button_press` relayed to it as `data_stream`, its displays
 * relayed to the phone, and `device_state_update` on a device state post.
 */
import { randomUUID } from 'node:crypto'
import type { RawData, WebSocket } from 'ws'

export interface BaselineConfig {
  nodeId: string
  gracePeriodMs: number
  pingIntervalMs: number
  silenceTimeoutMs: number
  maxBufferedBytes: number
  /** Slack after a token's `exp` before its socket is closed. */
  clockToleranceMs: number
}

export interface Identity {
  userId: string
  subject: string
  /** The token's `exp` in ms, or null: like Tether, an expired token closes its socket 1008. */
  expiresAt: number | null
}

type State = 'active' | 'grace'

/** Message types Tether accepts from glasses (docs/PROTOCOL.md 1.4); anything else is UNKNOWN_TYPE. */
const KNOWN_TYPES = new Set([
  'connection_init', 'ping', 'pong', 'start_app', 'stop_app', 'button_press', 'head_position', 'touch_event', 'VAD',
  'local_transcription', 'glasses_battery_update', 'phone_battery_update', 'glasses_connection_state', 'location_update',
  'calendar_event', 'phone_notification', 'phone_notification_dismissed', 'core_status_update', 'photo_response',
  'photo_taken', 'rtmp_stream_status', 'keep_alive_ack', 'vps_coordinates', 'dashboard_state', 'open_dashboard',
  'request_settings', 'settings_update_request'
])

const OPEN = 1
const GOING_AWAY = 1001
const POLICY_VIOLATION = 1008
const REPLACED = 4001
/** Delay after a reconnection before the microphone state is re-sent (Tether's AFTER_ATTACH_MS). */
const MIC_AFTER_ATTACH_MS = 100

/** One glasses socket. */
class Connection {
  readonly id = randomUUID()
  lastInboundAt = Date.now()
  constructor (readonly ws: WebSocket, readonly session: BaselineSession, readonly expiresAt: number | null) {}
}

export class BaselineSession {
  readonly sessionInstanceId = randomUUID()
  readonly startedAt = Date.now()
  state: State = 'active'
  connection: Connection | null = null
  connectedAt: number | null = null
  disconnectedAt: number | null = null
  graceExpiresAt: number | null = null
  graceTimer: NodeJS.Timeout | null = null
  reconnections = 0
  connectedMsBefore = 0
  audioBytes = 0
  audioChunks = 0
  transcripts = 0
  messagesIn = 0
  messagesOut = 0
  /** The session's app socket (one app is all the benchmark runs). */
  app: WebSocket | null = null
  audioSubscriber: WebSocket | null = null
  buttonSubscriber: WebSocket | null = null
  constructor (readonly userId: string, readonly sequence: number) {}
}

export interface SessionCounts { active: number, grace: number, total: number }

const iso = (ms: number | null): string | null => ms === null ? null : new Date(ms).toISOString()

export class BaselineRegistry {
  readonly sessions = new Map<string, BaselineSession>()
  private readonly connections = new Set<Connection>()
  private readonly sweep: NodeJS.Timeout
  private created = 0

  constructor (private readonly config: BaselineConfig) {
    this.sweep = setInterval(() => this.heartbeat(), config.pingIntervalMs)
  }

  /** A verified socket: create, resume or replace its user's session, then ack. */
  attach (ws: WebSocket, identity: Identity): void {
    const now = Date.now()
    let session = this.sessions.get(identity.userId)
    let reconnection = true
    if (session === undefined) {
      session = new BaselineSession(identity.userId, ++this.created)
      this.sessions.set(identity.userId, session)
      reconnection = false
    } else if (session.state === 'grace') {
      if (session.graceTimer !== null) clearTimeout(session.graceTimer)
      session.graceTimer = null
      session.disconnectedAt = null
      session.graceExpiresAt = null
    } else if (session.connection !== null) {
      const previous = session.connection
      session.connection = null
      this.detachListeners(previous)
      previous.ws.close(REPLACED, 'replaced')
    }
    if (reconnection) session.reconnections += 1
    const connection = new Connection(ws, session, identity.expiresAt)
    session.connection = connection
    session.state = 'active'
    session.connectedAt = now
    this.connections.add(connection)
    this.send(session, this.ack(session, connection, reconnection))
    // A phone that comes back is told again what its microphone should do, also when off, shortly
    // after its attach (../shared/PHONE.md section 2), as Tether's microphone manager does.
    if (reconnection) {
      setTimeout(() => { if (session.connection === connection) this.sendMicrophone(session) }, MIC_AFTER_ATTACH_MS)
    }
    ws.on('message', (data, isBinary) => this.receive(connection, data, isBinary))
    ws.on('ping', () => { connection.lastInboundAt = Date.now() })
    ws.on('pong', () => { connection.lastInboundAt = Date.now() })
    ws.on('close', () => this.closed(connection))
    ws.on('error', () => ws.terminate())
  }

  /** An app socket was initialised for the user's session. */
  attachApp (userId: string, ws: WebSocket): boolean {
    const session = this.sessions.get(userId)
    if (session === undefined) return false
    session.app = ws
    ws.once('close', () => {
      if (session.app === ws) session.app = null
      if (session.audioSubscriber === ws) session.audioSubscriber = null
      if (session.buttonSubscriber === ws) session.buttonSubscriber = null
    })
    return true
  }

  /** The app's subscription list: audio (the phone is told to stream) and button presses. */
  subscribe (userId: string, ws: WebSocket, subscriptions: readonly unknown[]): boolean {
    const session = this.sessions.get(userId)
    if (session === undefined) return false
    const audio = subscriptions.includes('audio_chunk')
    const hadAudio = session.audioSubscriber !== null
    session.audioSubscriber = audio ? ws : session.audioSubscriber === ws ? null : session.audioSubscriber
    session.buttonSubscriber = subscriptions.includes('button_press') ? ws : session.buttonSubscriber === ws ? null : session.buttonSubscriber
    if (audio !== hadAudio) this.sendMicrophone(session)
    return true
  }

  /** An app's display, relayed to the phone (no throttle, no layers: the raw minimum). */
  display (userId: string, packageName: string, message: { view?: unknown, layout?: unknown }): void {
    const session = this.sessions.get(userId)
    if (session === undefined) return
    this.send(session, { type: 'display_event', packageName, view: message.view ?? 'main', layout: message.layout, timestamp: new Date().toISOString() })
  }

  /** `POST /api/client/device/state`: the session's app hears of it. False when the user has no session. */
  deviceState (userId: string, state: Record<string, unknown>): boolean {
    const session = this.sessions.get(userId)
    if (session === undefined) return false
    const app = session.app
    if (app !== null && app.readyState === OPEN) {
      app.send(JSON.stringify({ type: 'device_state_update', state, fullSnapshot: false, timestamp: new Date().toISOString() }))
    }
    return true
  }

  counts (): SessionCounts {
    let active = 0
    let grace = 0
    for (const session of this.sessions.values()) {
      if (session.state === 'active') active += 1
      else grace += 1
    }
    return { active, grace, total: active + grace }
  }

  /** One page in creation order (the Map keeps insertion order, which is creation order). */
  page (after: number, limit: number, state: State | undefined): { sessions: BaselineSession[], more: boolean } {
    const page: BaselineSession[] = []
    for (const session of this.sessions.values()) {
      if (session.sequence <= after || (state !== undefined && session.state !== state)) continue
      if (page.length === limit) return { sessions: page, more: true }
      page.push(session)
    }
    return { sessions: page, more: false }
  }

  /** docs/PROTOCOL.md 3 `Summary`, the same fields Tether returns. */
  summary (session: BaselineSession, now: number): Record<string, unknown> {
    return {
      userId: session.userId,
      sessionInstanceId: session.sessionInstanceId,
      state: session.state,
      nodeId: this.config.nodeId,
      startedAt: new Date(session.startedAt).toISOString(),
      connectedAt: iso(session.connectedAt),
      disconnectedAt: iso(session.disconnectedAt),
      graceExpiresAt: iso(session.graceExpiresAt),
      reconnections: session.reconnections,
      connectedMs: session.connectedMsBefore + (session.connectedAt === null ? 0 : now - session.connectedAt),
      activeApps: [],
      data: {
        audioBytes: session.audioBytes,
        audioChunks: session.audioChunks,
        transcripts: session.transcripts,
        messagesIn: session.messagesIn,
        messagesOut: session.messagesOut
      }
    }
  }

  /** Shutdown: every glasses socket closed 1001, every timer cleared; resolves once all sockets are gone. */
  async drain (): Promise<void> {
    clearInterval(this.sweep)
    const closing: Array<Promise<void>> = []
    for (const session of this.sessions.values()) {
      if (session.graceTimer !== null) clearTimeout(session.graceTimer)
      const connection = session.connection
      session.connection = null
      if (connection !== null && connection.ws.readyState !== 3) {
        closing.push(new Promise(resolve => connection.ws.once('close', () => resolve())))
        connection.ws.close(GOING_AWAY, 'server shutting down')
      }
      session.audioSubscriber?.close(GOING_AWAY, 'server shutting down')
      session.app?.close(GOING_AWAY, 'server shutting down')
    }
    this.sessions.clear()
    await Promise.all(closing)
  }

  private ack (session: BaselineSession, connection: Connection, reconnection: boolean): Record<string, unknown> {
    return {
      type: 'connection_ack',
      sessionId: session.userId,
      sessionInstanceId: session.sessionInstanceId,
      connectionId: connection.id,
      reconnection,
      heartbeat: { pingIntervalMs: this.config.pingIntervalMs, silenceTimeoutMs: this.config.silenceTimeoutMs },
      userSession: {
        userId: session.userId,
        startTime: new Date(session.startedAt).toISOString(),
        activeAppSessions: [],
        loadingApps: [],
        appSubscriptions: {}
      },
      timestamp: new Date().toISOString()
    }
  }

  private send (session: BaselineSession, message: Record<string, unknown>): void {
    const ws = session.connection?.ws
    if (ws === undefined || ws.readyState !== OPEN) return
    ws.send(JSON.stringify(message))
    session.messagesOut += 1
  }

  private receive (connection: Connection, data: RawData, isBinary: boolean): void {
    connection.lastInboundAt = Date.now()
    const session = connection.session
    if (session.connection !== connection) return
    const buffer = data as Buffer
    if (isBinary) {
      session.audioBytes += buffer.length
      session.audioChunks += 1
      const subscriber = session.audioSubscriber
      // Like Tether: a subscriber that is behind loses chunks instead of buffering them without bound.
      if (subscriber !== null && subscriber.readyState === OPEN && subscriber.bufferedAmount <= this.config.maxBufferedBytes) {
        subscriber.send(buffer)
      }
      return
    }
    let message: { type?: unknown }
    try {
      message = JSON.parse(buffer.toString('utf8')) as { type?: unknown }
    } catch {
      this.error(session, 'MALFORMED_MESSAGE', 'not JSON')
      return
    }
    if (message === null || typeof message !== 'object' || typeof message.type !== 'string') {
      this.error(session, 'MALFORMED_MESSAGE', 'not a message')
      return
    }
    if (!KNOWN_TYPES.has(message.type)) {
      this.error(session, 'UNKNOWN_TYPE', 'unknown type')
      return
    }
    session.messagesIn += 1
    if (message.type === 'connection_init') this.send(session, this.ack(session, connection, session.reconnections > 0))
    else if (message.type === 'ping') this.send(session, { type: 'pong', timestamp: new Date().toISOString() })
    else if (message.type === 'local_transcription') session.transcripts += 1
    else if (message.type === 'button_press') this.relayButton(session, message)
  }

  private relayButton (session: BaselineSession, message: object): void {
    const app = session.buttonSubscriber
    if (app === null || app.readyState !== OPEN) return
    app.send(JSON.stringify({ type: 'data_stream', sessionId: session.userId, streamType: 'button_press', data: message, timestamp: new Date().toISOString() }))
  }

  private sendMicrophone (session: BaselineSession): void {
    const on = session.audioSubscriber !== null
    this.send(session, {
      type: 'microphone_state_change',
      sessionId: session.userId,
      isMicrophoneEnabled: on,
      requiredData: on ? ['pcm'] : [],
      bypassVad: on,
      timestamp: new Date().toISOString()
    })
  }

  private error (session: BaselineSession, code: string, message: string): void {
    this.send(session, { type: 'error', code, message, timestamp: new Date().toISOString() })
  }

  private closed (connection: Connection): void {
    this.connections.delete(connection)
    const session = connection.session
    if (session.connection !== connection) return
    const now = Date.now()
    session.connection = null
    session.connectedMsBefore += now - (session.connectedAt ?? now)
    session.connectedAt = null
    session.state = 'grace'
    session.disconnectedAt = now
    session.graceExpiresAt = now + this.config.gracePeriodMs
    session.graceTimer = setTimeout(() => {
      if (this.sessions.get(session.userId) === session && session.state === 'grace') {
        this.sessions.delete(session.userId)
        session.audioSubscriber?.close(1000, 'User session ended')
        session.app?.close(1000, 'User session ended')
      }
    }, this.config.gracePeriodMs)
  }

  private detachListeners (connection: Connection): void {
    connection.ws.removeAllListeners('message')
    this.connections.delete(connection)
  }

  /**
   * One sweep per interval: ping everyone, terminate whoever has been silent too
   * long, close whoever's token has expired (to the interval's precision).
   */
  private heartbeat (): void {
    const now = Date.now()
    for (const connection of this.connections) {
      if (connection.ws.readyState !== OPEN) continue
      if (now - connection.lastInboundAt >= this.config.silenceTimeoutMs) connection.ws.terminate()
      else if (connection.expiresAt !== null && now > connection.expiresAt + this.config.clockToleranceMs) {
        connection.ws.close(POLICY_VIOLATION, 'token expired')
      } else connection.ws.ping()
    }
  }
}
