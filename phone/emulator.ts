/**
 * A phone emulator that behaves towards the server as the MentraOS phone app
 * does (PHONE.md sections 0 to 5), for end-to-end tests and for `bin/phone.ts`:
 *
 * - start-up: `GET min-version` (no token), `GET` then `POST user/settings`
 *   (time zone), then the socket `<socketPath>?token=...&livekit=true&udpEncryption=true`;
 * - at every socket open, before any ack: `POST device/state` (the full state)
 *   and the first ping; at every `connection_ack`: `GET apps` and
 *   `POST audio/configure`; after the first ack the calendar, then hourly;
 * - a ping every tick; no pong by the next tick means reconnect at once;
 * - any close (whatever the code) or refused upgrade: reconnect after a fixed
 *   delay, forever, same token; the old socket is closed (1000) first;
 * - `503 {"error":"NO_ACTIVE_SESSION"}` on a REST call: reconnect at once,
 *   wait for the new ack, retry that call once;
 * - `microphone_state_change`: only `requiredData` and `bypassVad` are read;
 *   the state survives reconnects; while it asks for `pcm` and the socket is
 *   open, whole frames of the audio vector are streamed as binary messages;
 * - `app_state_change` is a cue to refetch the app list (at most once a second).
 *
 * It never sends `connection_init` and reads nothing from the ack. Everything it
 * sees and does is recorded on the instance for tests to assert on; `stop()`
 * releases every timer and socket.
 */
import { EventEmitter } from 'node:events'
import type { IncomingMessage } from 'node:http'
import WebSocket from 'ws'
import { Resources } from '../sessions/resources.js'
import { FRAME_MS, FrameLoop, PCM_FRAME_BYTES, SAMPLE_RATE, isLc3FrameSize, pcmTone, type Lc3FrameSize } from './lc3-stream.js'
import { RestClient, isNoActiveSession, type RestCall, type RestCallOptions, type RestMethod, type RestResult } from './rest-client.js'

export type { RestCall, RestResult } from './rest-client.js'

export type Platform = 'ios' | 'android'
export type AudioFormat = 'lc3' | 'pcm'

/** A JSON message from the server. */
export interface ServerMessage { type: string, [key: string]: unknown }

/** What the server last asked of the microphone (`requiredData` values: `pcm`, `transcription`, `pcm_or_transcription`). */
export interface MicState { requiredData: string[], bypassVad: boolean }

export interface CloseRecord {
  code: number
  reason: string
  at: number
  /** True when the phone closed it (a reconnect or stop), false when the server did or the connection dropped. */
  byPhone: boolean
}

export interface RefusalRecord { status: number, body: unknown, at: number }

/** Why the phone opens a new socket. */
export type ReconnectReason = 'close' | 'refused' | 'connect_error' | 'missed_pong' | 'no_active_session'

/** Policy as data (PHONE.md section 5): which reasons wait the reconnect delay and which reconnect at once. */
export const RECONNECT_TIMING: Readonly<Record<ReconnectReason, 'delay' | 'now'>> = {
  close: 'delay',
  refused: 'delay',
  connect_error: 'delay',
  missed_pong: 'now',
  no_active_session: 'now'
}

export interface ReconnectRecord { reason: ReconnectReason, delayMs: number, at: number }

export interface CalendarEvent {
  id: string
  title: string
  startDate: string
  endDate: string
  timeZone: string
  allDay: boolean
}

export interface LocationFix { lat: number, lng: number, accuracy?: number, altitude?: number | null }

export interface PhoneNotification {
  notificationId: string
  app: string
  title: string
  content: string
  priority: string
  timestamp: number
  packageName: string
}

export interface NotificationDismissal { notificationId: string, notificationKey: string, packageName: string }

export type PhotoResponse =
  | { requestId: string, success: true, photoUrl: string }
  | { requestId: string, success: false, errorCode?: string, errorMessage: string }

export interface PhoneOptions {
  /** `http(s)://host:port`: the REST base; the socket URL is derived from it. */
  baseUrl: string
  /** The core token: `Authorization: Bearer` on REST, `?token=` on the socket. */
  token: string
  socketPath?: string
  /** The transcript shape `sendTranscript` uses (default ios). */
  platform?: Platform
  pingIntervalMs?: number
  reconnectDelayMs?: number
  /** Merged over DEFAULT_DEVICE_STATE; the full state is posted at every socket open. */
  deviceState?: Record<string, unknown>
  /** Raw concatenated LC3 frames, streamed while the microphone state asks for `pcm`. */
  lc3?: { frames: Buffer, frameSizeBytes: Lc3FrameSize }
  /** With audioFormat 'pcm': 16 kHz mono PCM16 to stream (default: a quiet 440 Hz tone). */
  pcm?: Buffer
  framesPerMessage?: number
  /** What `audio/configure` announces and what is streamed (default lc3). */
  audioFormat?: AudioFormat
  /** LC3 frame size announced when no `lc3` vector is given (default 20). */
  frameSizeBytes?: Lc3FrameSize
  /** Events posted after the first ack and every calendarIntervalMs (default: one meeting in the next hour). */
  calendarEvents?: CalendarEvent[]
  calendarIntervalMs?: number
  /** The fix that answers `request_single_location` (updated by postLocation). */
  location?: LocationFix
  /** Answer `audio_play_request`, `rgb_led_control` and `request_single_location` as a phone does (default true). */
  answerRequests?: boolean
  /** How long the 503 NO_ACTIVE_SESSION retry waits for the new ack (default 8000). */
  sessionWaitMs?: number
  restTimeoutMs?: number
  /** The time zone posted in the settings and the calendar (default: this machine's). */
  timeZone?: string
  log?: (line: string) => void
}

export interface PhoneEvents {
  open: []
  ack: [message: ServerMessage]
  message: [message: ServerMessage]
  close: [close: CloseRecord]
  refused: [refusal: RefusalRecord]
  reconnect: [reconnect: ReconnectRecord]
  rest: [call: RestCall]
  mic: [state: MicState]
  /** Streaming started (true) or stopped (false). */
  audio: [streaming: boolean]
}

export const DEFAULT_DEVICE_STATE: Readonly<Record<string, unknown>> = {
  batteryLevel: 85,
  charging: false,
  caseBatteryLevel: 70,
  caseCharging: false,
  connected: true,
  wifiConnected: true,
  wifiSsid: 'emulator-wifi',
  deviceModel: 'Even Realities G1',
  modelName: 'Even Realities G1'
}

const DEFAULTS = {
  socketPath: '/glasses-ws',
  pingIntervalMs: 5000,
  reconnectDelayMs: 5000,
  framesPerMessage: 10,
  calendarIntervalMs: 60 * 60 * 1000,
  sessionWaitMs: 8000,
  restTimeoutMs: 30_000
}

/** The phone gives up on an upgrade with no answer after this long (then reconnects after the delay). */
const HANDSHAKE_TIMEOUT_MS = 10_000
/** `app_state_change` refetches the app list at most this often. */
const APPS_REFRESH_MS = 1000
/** After a start: the app list every second for 6 s; after a stop: once, 2 s later. */
const START_POLL_MS = 1000
const START_POLLS = 6
const STOP_REFRESH_MS = 2000
/** stop() waits this long for the close handshake before it terminates. */
const STOP_CLOSE_MS = 1000
const LOG_BODY_CHARS = 400

/** One socket attempt and what it owns: its ping and audio timers die with it. */
interface Connection {
  ws: WebSocket
  opened: boolean
  refused: boolean
  retired: boolean
  byPhone: boolean
  awaitingPong: boolean
  audio: (() => void) | null
  res: Resources
}

export class PhoneEmulator extends EventEmitter<PhoneEvents> {
  /** Every JSON message from the server, in order. */
  readonly received: ServerMessage[] = []
  readonly closes: CloseRecord[] = []
  readonly refusals: RefusalRecord[] = []
  readonly reconnects: ReconnectRecord[] = []
  /** Every REST call and its answer, in order of completion. */
  readonly restCalls: RestCall[] = []
  /** The full glasses state, as posted at every socket open. */
  readonly deviceState: Record<string, unknown>

  private readonly socketUrl: string
  private readonly rest: RestClient
  private readonly res = new Resources()
  private readonly connections = new Set<Connection>()
  private readonly audioSource: FrameLoop | null
  private readonly framesPerMessage: number
  private readonly timeZone: string
  private readonly waiters = new Set<() => void>()
  private current: Connection | null = null
  private mic: MicState = { requiredData: [], bypassVad: false }
  private lastApps: unknown[] = []
  private location: LocationFix
  private counts = { connects: 0, acks: 0, pings: 0, pongs: 0, audioMessages: 0, audioBytes: 0, binaryReceived: 0 }
  private started = false
  private socketStarted = false
  private stopped = false
  private stopping: Promise<void> | null = null
  private reconnectTimer: (() => void) | null = null
  private recovering: Promise<boolean> | null = null
  private appsRefreshedAt = 0
  private appsRefreshPending = false
  private utteranceStart: number | null = null
  private notificationCount = 0

  constructor (private readonly options: PhoneOptions) {
    super()
    const url = new URL(options.baseUrl)
    url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:'
    url.pathname = options.socketPath ?? DEFAULTS.socketPath
    url.search = ''
    url.searchParams.set('token', options.token)
    url.searchParams.set('livekit', 'true')
    url.searchParams.set('udpEncryption', 'true')
    this.socketUrl = url.toString()
    this.framesPerMessage = options.framesPerMessage ?? DEFAULTS.framesPerMessage
    if (!Number.isInteger(this.framesPerMessage) || this.framesPerMessage < 1) throw new Error('framesPerMessage must be a positive integer')
    if (options.lc3 !== undefined && !isLc3FrameSize(options.lc3.frameSizeBytes)) throw new Error('lc3.frameSizeBytes must be 20, 40 or 60')
    this.audioSource = options.audioFormat === 'pcm'
      ? new FrameLoop(options.pcm ?? pcmTone(), PCM_FRAME_BYTES)
      : options.lc3 === undefined ? null : new FrameLoop(options.lc3.frames, options.lc3.frameSizeBytes)
    this.deviceState = { ...DEFAULT_DEVICE_STATE, ...options.deviceState }
    this.timeZone = options.timeZone ?? Intl.DateTimeFormat().resolvedOptions().timeZone
    this.location = options.location ?? { lat: 52.5163, lng: 13.3777, accuracy: 10 }
    this.rest = new RestClient({
      baseUrl: options.baseUrl,
      token: options.token,
      timeoutMs: options.restTimeoutMs ?? DEFAULTS.restTimeoutMs,
      onCall: call => this.onRestCall(call)
    })
  }

  // ---- state for tests ----

  get isOpen (): boolean { return this.current?.opened === true }
  get micState (): MicState { return { requiredData: [...this.mic.requiredData], bypassVad: this.mic.bypassVad } }
  get connects (): number { return this.counts.connects }
  get acks (): number { return this.counts.acks }
  get pings (): number { return this.counts.pings }
  get pongs (): number { return this.counts.pongs }
  get audioMessagesSent (): number { return this.counts.audioMessages }
  get audioBytesSent (): number { return this.counts.audioBytes }
  get binaryReceived (): number { return this.counts.binaryReceived }
  get isStreamingAudio (): boolean { return (this.current?.audio ?? null) !== null }
  /** The `data` of the last successful `GET /api/client/apps`. */
  get apps (): unknown[] { return this.lastApps }
  /** The socket URL, token included. */
  get url (): string { return this.socketUrl }

  /** Messages received of one type. */
  messages (type: string): ServerMessage[] { return this.received.filter(m => m.type === type) }

  // ---- life cycle ----

  /** The start-up REST calls, then the socket (this does not wait for it to open: see waitForAcks). */
  async start (): Promise<void> {
    if (this.started) throw new Error('the phone emulator was already started')
    this.started = true
    await this.request('GET', '/api/client/min-version', undefined, { auth: false })
    await this.request('GET', '/api/client/user/settings')
    await this.request('POST', '/api/client/user/settings', { settings: { time_zone: this.timeZone, timezone: this.timeZone } })
    if (this.stopped) return
    this.socketStarted = true
    this.connect()
  }

  /** Close the socket (1000), abort REST calls in flight, stop every timer; no reconnect. Idempotent. */
  async stop (): Promise<void> {
    this.stopping ??= this.shutdown()
    await this.stopping
  }

  private async shutdown (): Promise<void> {
    this.stopped = true
    this.rest.close()
    this.res.dispose()
    this.reconnectTimer = null
    const current = this.current
    for (const conn of this.connections) {
      conn.res.dispose()
      if (conn === current && conn.ws.readyState === WebSocket.OPEN) {
        conn.byPhone = true
        conn.ws.close(1000)
      } else {
        conn.ws.terminate()
      }
    }
    this.current = null
    await this.settle(() => this.connections.size === 0, STOP_CLOSE_MS)
    for (const conn of this.connections) conn.ws.terminate()
    await this.settle(() => this.connections.size === 0, STOP_CLOSE_MS)
    this.wake()
  }

  // ---- actions ----

  /** `POST /apps/:pkg/start` (no body), then the app list every second for 6 s. Answers with the POST's answer. */
  async startApp (packageName: string): Promise<RestResult> {
    const answer = await this.request('POST', `/apps/${encodeURIComponent(packageName)}/start`)
    for (let i = 1; i <= START_POLLS; i++) this.res.timeout(() => { void this.listApps() }, i * START_POLL_MS)
    return answer
  }

  /** `POST /apps/:pkg/stop` (no body), then the app list 2 s later. */
  async stopApp (packageName: string): Promise<RestResult> {
    const answer = await this.request('POST', `/apps/${encodeURIComponent(packageName)}/stop`)
    this.res.timeout(() => { void this.listApps() }, STOP_REFRESH_MS)
    return answer
  }

  async listApps (): Promise<RestResult> {
    const answer = await this.request('GET', '/api/client/apps')
    const data = isRecord(answer.body) ? answer.body.data : undefined
    if (answer.status >= 200 && answer.status < 300 && Array.isArray(data)) this.lastApps = data
    return answer
  }

  /** Send any JSON message; false (and nothing sent) when the socket is not open. */
  send (message: object): boolean {
    const conn = this.current
    if (conn?.opened !== true || conn.ws.readyState !== WebSocket.OPEN) {
      this.log(`not sent (socket not open): ${clip(JSON.stringify(message))}`)
      return false
    }
    const text = JSON.stringify(message)
    conn.ws.send(text)
    this.log(`-> ${clip(text)}`)
    return true
  }

  sendButton (buttonId = 'main', pressType: 'short' | 'long' = 'short'): boolean {
    return this.send({ type: 'button_press', buttonId, pressType, timestamp: new Date().toISOString() })
  }

  sendHeadPosition (position: 'up' | 'down'): boolean {
    return this.send({ type: 'head_position', position, timestamp: new Date().toISOString() })
  }

  sendTouch (gesture: string): boolean {
    return this.send({ type: 'touch_event', device_model: this.deviceState.modelName, gesture_name: gesture, timestamp: Date.now() })
  }

  sendVad (status: boolean | 'true' | 'false'): boolean {
    return this.send({ type: 'VAD', status })
  }

  /** A phone-made transcript, in the shape of the configured platform (PHONE.md section 4). */
  sendTranscript (text: string, isFinal = true, language = 'en-US'): boolean {
    if (this.options.platform === 'android') {
      return this.send({ type: 'local_transcription', text, isFinal, language })
    }
    const now = Date.now()
    const startTime = this.utteranceStart ?? now - 500
    this.utteranceStart = isFinal ? null : startTime
    return this.send({
      type: 'local_transcription', text, isFinal, startTime, endTime: now, speakerId: 0, transcribeLanguage: language, provider: 'local'
    })
  }

  /** Post a partial device state (merged into the full state posted at the next socket open). */
  async postDeviceState (partial: Record<string, unknown>): Promise<RestResult> {
    Object.assign(this.deviceState, partial)
    return await this.request('POST', '/api/client/device/state', partial)
  }

  /** A background GPS fix, as the phone posts it (`{coords, timestamp, mocked}`, or wrapped in `{location}`). */
  async postLocation (fix: LocationFix = this.location, options: { wrapped?: boolean } = {}): Promise<RestResult> {
    this.location = fix
    const location = {
      coords: {
        latitude: fix.lat,
        longitude: fix.lng,
        altitude: fix.altitude ?? null,
        accuracy: fix.accuracy ?? 10,
        altitudeAccuracy: null,
        heading: null,
        speed: null
      },
      timestamp: Date.now(),
      mocked: false
    }
    return await this.request('POST', '/api/client/location', options.wrapped === true ? { location } : location)
  }

  async postCalendar (events: CalendarEvent[] = this.options.calendarEvents ?? defaultCalendar(this.timeZone), calendars: unknown[] = []): Promise<RestResult> {
    return await this.request('POST', '/api/client/calendar', { events, calendars })
  }

  async postNotification (notification: Partial<PhoneNotification> = {}): Promise<RestResult> {
    this.notificationCount += 1
    const body: PhoneNotification = {
      notificationId: `emulator-${this.notificationCount}`,
      app: 'Messages',
      title: 'Hello',
      content: 'A message from the phone emulator',
      priority: 'normal',
      timestamp: Date.now(),
      packageName: 'com.google.android.apps.messaging',
      ...notification
    }
    return await this.request('POST', '/api/client/notifications', body)
  }

  async postNotificationDismissed (dismissal: Partial<NotificationDismissal> & { notificationId: string }): Promise<RestResult> {
    const body: NotificationDismissal = {
      notificationKey: `key-${dismissal.notificationId}`,
      packageName: 'com.google.android.apps.messaging',
      ...dismissal
    }
    return await this.request('POST', '/api/client/notifications/dismissed', body)
  }

  async postPhotoResponse (response: PhotoResponse): Promise<RestResult> {
    return await this.request('POST', '/api/client/photo/response', { type: 'photo_response', ...response, timestamp: Date.now() })
  }

  /**
   * Any REST call, recorded, with the phone's one rule: on `503 NO_ACTIVE_SESSION`
   * (once the socket phase has begun) reconnect at once, wait for the new ack
   * (sessionWaitMs) and retry the call once. Never throws; status 0 = no answer.
   */
  async request (method: RestMethod, path: string, body?: unknown, options: RestCallOptions = {}): Promise<RestResult> {
    const first = await this.rest.call(method, path, body, options)
    if (!isNoActiveSession(first) || !this.socketStarted || this.stopped) return answerOf(first)
    this.log(`${method} ${path}: no active session; reconnecting, then retrying once`)
    await this.recoverSession()
    if (this.stopped) return answerOf(first)
    return answerOf(await this.rest.call(method, path, body, { ...options, retry: true }))
  }

  // ---- waiting helpers ----

  /** Resolve with the first truthy value of `check`, re-checked on every change; reject after `ms`. */
  async waitFor<T> (check: () => T | undefined | null | false, ms = 5000, what = 'a condition'): Promise<T> {
    const deadline = Date.now() + ms
    for (;;) {
      const value = check()
      if (value !== undefined && value !== null && value !== false) return value
      const left = deadline - Date.now()
      if (this.stopped) throw new Error(`the phone stopped while waiting for ${what}`)
      if (left <= 0) throw new Error(`timed out after ${ms} ms waiting for ${what}`)
      await new Promise<void>(resolve => {
        const done = (): void => { clearTimeout(timer); this.waiters.delete(done); resolve() }
        const timer = setTimeout(done, left)
        this.waiters.add(done)
      })
    }
  }

  /** The first message of `type` at or after index `from` of `received`. */
  async waitForMessage (type: string, ms = 5000, from = 0): Promise<ServerMessage> {
    return await this.waitFor(() => this.received.slice(from).find(m => m.type === type), ms, `a ${type} message`)
  }

  async waitForAcks (count: number, ms = 5000): Promise<number> {
    return await this.waitFor(() => this.counts.acks >= count && this.counts.acks, ms, `${count} connection_ack(s)`)
  }

  async waitForOpen (ms = 5000): Promise<void> {
    await this.waitFor(() => this.isOpen, ms, 'an open socket')
  }

  /** The first recorded REST call to `method path` at or after index `from` of `restCalls`. */
  async waitForRest (method: RestMethod, path: string, ms = 5000, from = 0): Promise<RestCall> {
    return await this.waitFor(() => this.restCalls.slice(from).find(c => c.method === method && c.path === path), ms, `${method} ${path}`)
  }

  // ---- the socket ----

  private connect (): void {
    if (this.stopped) return
    this.cancelReconnect()
    if (this.current !== null) this.retire(this.current)
    const ws = new WebSocket(this.socketUrl, { handshakeTimeout: HANDSHAKE_TIMEOUT_MS })
    const conn: Connection = {
      ws, opened: false, refused: false, retired: false, byPhone: false, awaitingPong: false, audio: null, res: new Resources()
    }
    this.current = conn
    this.connections.add(conn)
    this.log(`connecting to ${this.socketUrl.replace(/token=[^&]*/, 'token=...')}`)
    ws.on('open', () => { this.onOpen(conn) })
    ws.on('message', (data: WebSocket.RawData, isBinary: boolean) => { this.onMessage(conn, data, isBinary) })
    ws.on('unexpected-response', (_request, response) => { this.onRefused(conn, response) })
    ws.on('error', error => { if (!conn.retired && !conn.refused) this.log(`socket error: ${error.message}`) })
    ws.on('close', (code: number, reason: Buffer) => { this.onClose(conn, code, reason.toString()) })
  }

  /** The phone closes its old socket (1000) before it opens a new one. */
  private retire (conn: Connection): void {
    conn.retired = true
    this.stopAudio(conn)
    conn.res.dispose()
    if (this.current === conn) this.current = null
    if (conn.ws.readyState === WebSocket.OPEN) {
      conn.byPhone = true
      conn.ws.close(1000)
    } else if (conn.ws.readyState === WebSocket.CONNECTING) {
      conn.ws.terminate()
    }
  }

  private onOpen (conn: Connection): void {
    if (conn !== this.current) return
    conn.opened = true
    this.counts.connects += 1
    this.log('socket open')
    this.emit('open')
    void this.request('POST', '/api/client/device/state', { ...this.deviceState })
    this.sendPing(conn)
    conn.res.interval(() => { this.pingTick(conn) }, this.options.pingIntervalMs ?? DEFAULTS.pingIntervalMs)
    this.updateAudio()
    this.wake()
  }

  private pingTick (conn: Connection): void {
    if (conn !== this.current) return
    if (conn.awaitingPong) {
      this.log('no pong since the last ping')
      this.reconnect('missed_pong')
      return
    }
    this.sendPing(conn)
  }

  private sendPing (conn: Connection): void {
    if (conn.ws.readyState !== WebSocket.OPEN) return
    conn.ws.send('{"type":"ping"}')
    conn.awaitingPong = true
    this.counts.pings += 1
    this.log('-> {"type":"ping"}')
  }

  private onMessage (conn: Connection, data: WebSocket.RawData, isBinary: boolean): void {
    if (conn !== this.current) return
    if (isBinary) {
      this.counts.binaryReceived += 1
      this.log(`<- <binary ${byteLength(data)} bytes>`)
      this.wake()
      return
    }
    const text = toBuffer(data).toString()
    let parsed: unknown
    try { parsed = JSON.parse(text) } catch { parsed = undefined }
    if (!isRecord(parsed) || typeof parsed.type !== 'string') {
      this.log(`<- (not a JSON message with a type) ${clip(text)}`)
      return
    }
    const message = parsed as ServerMessage
    this.received.push(message)
    this.log(`<- ${clip(text)}`)
    this.emit('message', message)
    this.handle(conn, message)
    this.wake()
  }

  private handle (conn: Connection, message: ServerMessage): void {
    switch (message.type) {
      case 'pong':
        conn.awaitingPong = false
        this.counts.pongs += 1
        break
      case 'connection_ack':
        this.onAck(message)
        break
      case 'app_state_change':
        this.refreshAppsThrottled()
        break
      case 'microphone_state_change':
        this.onMicrophoneState(message)
        break
      case 'audio_play_request':
        if (this.answers) this.send({ type: 'audio_play_response', requestId: message.requestId, success: true, error: null, duration: null })
        break
      case 'rgb_led_control':
        if (this.answers) this.send({ type: 'rgb_led_control_response', requestId: message.requestId, success: true })
        break
      case 'request_single_location':
        if (this.answers) {
          this.send({
            type: 'location_update',
            lat: this.location.lat,
            lng: this.location.lng,
            accuracy: this.location.accuracy ?? 10,
            correlationId: message.correlationId,
            timestamp: Date.now()
          })
        }
        break
    }
  }

  private get answers (): boolean { return this.options.answerRequests !== false }

  /** The phone reads nothing from the ack; it refetches the apps and configures its audio. */
  private onAck (message: ServerMessage): void {
    this.counts.acks += 1
    this.emit('ack', message)
    void this.listApps()
    void this.request('POST', '/api/client/audio/configure', this.audioConfig())
    if (this.counts.acks === 1) {
      void this.postCalendar()
      this.res.interval(() => { void this.postCalendar() }, this.options.calendarIntervalMs ?? DEFAULTS.calendarIntervalMs)
    }
  }

  private audioConfig (): object {
    if (this.options.audioFormat === 'pcm') return { format: 'pcm' }
    const frameSizeBytes = this.options.lc3?.frameSizeBytes ?? this.options.frameSizeBytes ?? 20
    return { format: 'lc3', lc3Config: { sampleRate: SAMPLE_RATE, frameDurationMs: FRAME_MS, frameSizeBytes } }
  }

  private refreshAppsThrottled (): void {
    if (this.appsRefreshPending) return
    const wait = this.appsRefreshedAt + APPS_REFRESH_MS - Date.now()
    const refresh = (): void => {
      this.appsRefreshPending = false
      this.appsRefreshedAt = Date.now()
      void this.listApps()
    }
    if (wait <= 0) { refresh(); return }
    this.appsRefreshPending = true
    this.res.timeout(refresh, wait)
  }

  private onMicrophoneState (message: ServerMessage): void {
    const requiredData = Array.isArray(message.requiredData)
      ? message.requiredData.filter((v): v is string => typeof v === 'string')
      : []
    this.mic = { requiredData, bypassVad: message.bypassVad === true }
    this.emit('mic', this.micState)
    if (wantsPcm(this.mic) && this.audioSource === null) this.log('the microphone is asked for pcm, but no audio vector was given: not streaming')
    this.updateAudio()
  }

  // ---- audio ----

  private updateAudio (): void {
    const conn = this.current
    if (conn === null) return
    const want = conn.opened && wantsPcm(this.mic) && this.audioSource !== null
    if (want && conn.audio === null) {
      const periodMs = this.framesPerMessage * FRAME_MS
      conn.audio = conn.res.interval(() => { this.sendAudio(conn) }, periodMs)
      this.log(`streaming ${this.options.audioFormat === 'pcm' ? 'PCM' : 'LC3'}: ${this.framesPerMessage} frames every ${periodMs} ms`)
      this.emit('audio', true)
      this.sendAudio(conn)
    } else if (!want) {
      this.stopAudio(conn)
    }
  }

  private stopAudio (conn: Connection): void {
    if (conn.audio === null) return
    conn.audio()
    conn.audio = null
    this.log(`audio stopped (${this.counts.audioMessages} messages, ${this.counts.audioBytes} bytes sent in all)`)
    this.emit('audio', false)
  }

  private sendAudio (conn: Connection): void {
    if (this.audioSource === null || conn.ws.readyState !== WebSocket.OPEN) return
    const chunk = this.audioSource.next(this.framesPerMessage)
    conn.ws.send(chunk, { binary: true })
    this.counts.audioMessages += 1
    this.counts.audioBytes += chunk.length
    this.wake()
  }

  // ---- refusals, closes, reconnects ----

  private onRefused (conn: Connection, response: IncomingMessage): void {
    conn.refused = true
    const chunks: Buffer[] = []
    let done = false
    const finish = (): void => {
      if (done) return
      done = true
      const text = Buffer.concat(chunks).toString()
      let body: unknown = text
      try { body = JSON.parse(text) } catch { /* kept as text */ }
      const refusal: RefusalRecord = { status: response.statusCode ?? 0, body, at: Date.now() }
      this.refusals.push(refusal)
      this.log(`upgrade refused: HTTP ${refusal.status} ${clip(text)}`)
      this.emit('refused', refusal)
      conn.ws.terminate()
      this.wake()
    }
    response.on('data', (chunk: Buffer) => { chunks.push(chunk) })
    response.on('end', finish)
    response.on('close', finish)
    response.on('error', finish)
  }

  private onClose (conn: Connection, code: number, reason: string): void {
    this.connections.delete(conn)
    this.stopAudio(conn)
    conn.res.dispose()
    if (conn.opened) {
      const close: CloseRecord = { code, reason, at: Date.now(), byPhone: conn.byPhone }
      this.closes.push(close)
      this.log(`socket closed ${code}${reason === '' ? '' : ` ${reason}`}${conn.byPhone ? ' (by the phone)' : ''}`)
      this.emit('close', close)
    } else if (!conn.refused && !conn.retired) {
      this.log('could not connect')
    }
    if (conn === this.current) {
      this.current = null
      this.reconnect(conn.refused ? 'refused' : conn.opened ? 'close' : 'connect_error')
    }
    this.wake()
  }

  private reconnect (reason: ReconnectReason): void {
    if (this.stopped) return
    const delayMs = RECONNECT_TIMING[reason] === 'now' ? 0 : this.options.reconnectDelayMs ?? DEFAULTS.reconnectDelayMs
    const record: ReconnectRecord = { reason, delayMs, at: Date.now() }
    this.reconnects.push(record)
    this.emit('reconnect', record)
    if (delayMs === 0) {
      this.log(`reconnecting now (${reason})`)
      this.connect()
      return
    }
    this.log(`reconnecting in ${delayMs} ms (${reason})`)
    this.cancelReconnect()
    const release = this.res.timeout(() => {
      if (this.reconnectTimer === release) this.reconnectTimer = null
      this.connect()
    }, delayMs)
    this.reconnectTimer = release
  }

  private cancelReconnect (): void {
    this.reconnectTimer?.()
    this.reconnectTimer = null
  }

  /** One recovery for all the calls that got a 503 at the same time: reconnect, wait for the next ack. */
  private async recoverSession (): Promise<boolean> {
    if (this.recovering !== null) return await this.recovering
    const acks = this.counts.acks
    this.reconnect('no_active_session')
    const waitMs = this.options.sessionWaitMs ?? DEFAULTS.sessionWaitMs
    this.recovering = this.waitFor(() => this.counts.acks > acks, waitMs, 'the new connection').then(() => true, () => false)
    try {
      return await this.recovering
    } finally {
      this.recovering = null
    }
  }

  // ---- plumbing ----

  private onRestCall (call: RestCall): void {
    this.restCalls.push(call)
    const sent = call.request === undefined ? '' : ` ${clip(JSON.stringify(call.request))}`
    const answer = call.error !== undefined ? `failed: ${call.error}` : `${call.status} ${clip(JSON.stringify(call.body))}`
    this.log(`REST ${call.method} ${call.path}${call.retry ? ' (retry)' : ''}${sent} -> ${answer} (${call.ms} ms)`)
    this.emit('rest', call)
    this.wake()
  }

  /** Wait (without the tracker, which may be disposed) until `done` or `ms` pass. */
  private async settle (done: () => boolean, ms: number): Promise<void> {
    const deadline = Date.now() + ms
    while (!done() && Date.now() < deadline) {
      await new Promise<void>(resolve => {
        const wake = (): void => { clearTimeout(timer); this.waiters.delete(wake); resolve() }
        const timer = setTimeout(wake, Math.min(50, Math.max(1, deadline - Date.now())))
        this.waiters.add(wake)
      })
    }
  }

  private wake (): void {
    for (const waiter of [...this.waiters]) waiter()
  }

  private log (line: string): void {
    this.options.log?.(line)
  }
}

function wantsPcm (mic: MicState): boolean {
  return mic.requiredData.includes('pcm') || mic.requiredData.includes('pcm_or_transcription')
}

/** True when the microphone state asks the phone for its own transcripts. */
export function wantsTranscripts (mic: MicState): boolean {
  return mic.requiredData.includes('transcription') || mic.requiredData.includes('pcm_or_transcription')
}

function answerOf (call: RestCall): RestResult { return { status: call.status, body: call.body } }

function isRecord (value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

function toBuffer (data: WebSocket.RawData): Buffer {
  if (Buffer.isBuffer(data)) return data
  if (Array.isArray(data)) return Buffer.concat(data)
  return Buffer.from(data)
}

function byteLength (data: WebSocket.RawData): number {
  if (Array.isArray(data)) return data.reduce((n, b) => n + b.length, 0)
  return Buffer.isBuffer(data) ? data.length : data.byteLength
}

function clip (text: string): string {
  return text.length <= LOG_BODY_CHARS ? text : `${text.slice(0, LOG_BODY_CHARS)}... (${text.length} chars)`
}

/** One meeting at the next full hour, 30 minutes long. */
function defaultCalendar (timeZone: string): CalendarEvent[] {
  const start = new Date()
  start.setMinutes(0, 0, 0)
  start.setHours(start.getHours() + 1)
  const end = new Date(start.getTime() + 30 * 60 * 1000)
  return [{ id: 'emulator-standup', title: 'Stand-up', startDate: start.toISOString(), endDate: end.toISOString(), timeZone, allDay: false }]
}
