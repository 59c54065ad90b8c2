/**
 * Many phones in one process, each behaving towards the server as the MentraOS
 * phone does (PHONE.md sections 0, 1, 3 and 5) but with none of the emulator's
 * recording (phone/emulator.ts keeps every message; thousands of those would
 * weigh more than the server under test):
 *
 * - the socket `/glasses-ws?token=...&livekit=true&udpEncryption=true`; at every
 *   open `POST device/state` (the full state) and the first ping; at every ack
 *   `GET apps` and `POST audio/configure`;
 * - a JSON ping every 5 s; no pong by the next tick: reconnect at once
 *   ("missed pong");
 * - any close or refused upgrade: reconnect 5 s later, forever, same token;
 *   `503 NO_ACTIVE_SESSION` on a REST call: reconnect at once;
 * - `microphone_state_change` asking for `pcm`: stream LC3 (whole frames of a
 *   real vector, 10 frames every 100 ms) until told otherwise;
 * - `display_event`s are handed to the caller with their arrival time.
 *
 * Everything is counted (reconnects by reason, refusals by HTTP status, REST
 * answers by route and status); latencies are taken by the callers.
 */
import { Agent, request as httpRequest } from 'node:http'
import { performance } from 'node:perf_hooks'
import WebSocket from 'ws'
import { DEFAULT_DEVICE_STATE } from '../phone/emulator.js'
import { FrameLoop, FRAME_MS } from '../phone/lc3-stream.js'
import { tally } from './stats.js'

/** Why a phone opened a new socket (the emulator's reasons, PHONE.md section 5). */
export type ReconnectReason = 'close' | 'refused' | 'connect_error' | 'missed_pong' | 'no_active_session'

export interface PhoneFleetOptions {
  /** REST base, e.g. http://127.0.0.1:8002; the socket URL is derived from it. */
  baseUrl: string
  tokenFor: (index: number) => string
  pingIntervalMs: number
  reconnectDelayMs: number
  /** Make the REST calls a phone makes at open and at ack. */
  rest: boolean
  /** LC3 frames to stream when the microphone asks for pcm; null: this fleet never streams. */
  lc3: { frames: Buffer, frameBytes: number } | null
  framesPerMessage: number
  /** An upgrade with no answer after this long fails (then the 5 s reconnect). */
  handshakeTimeoutMs: number
  /** Told of every acked socket (first and later). */
  onAck?: (phone: FleetPhone) => void
  /** Told of every `display_event` the phone receives, with performance.now() at arrival. */
  onDisplay?: (phone: FleetPhone, message: DisplayMessage, at: number) => void
  /** Told of every LC3 message sent, with performance.now() just before the send. */
  onAudioSent?: (phone: FleetPhone, at: number) => void
}

export interface DisplayMessage { type: 'display_event', layout?: { text?: unknown }, view?: unknown }

export interface PhoneFleetStats {
  connects: number
  acks: number
  reconnects: Record<ReconnectReason, number>
  /** Refused upgrades by HTTP status. */
  refusals: Record<string, number>
  /** Connect failures without an HTTP answer, by error code. */
  connectErrors: Record<string, number>
  /** Close codes of acked sockets the phone did not close itself. */
  closeCodes: Record<string, number>
  /** `METHOD path status` of every REST answer (status 0: no answer). */
  rest: Record<string, number>
  pings: number
  pongs: number
  audioMessages: number
  buttons: number
  displays: number
}

export class FleetPhone {
  ws: WebSocket | null = null
  /** Acked and not closed. */
  acked = false
  awaitingPong = false
  pingSentAt = 0
  /** The microphone state asks for pcm. */
  micWantsPcm = false
  /** Connects opened since the counter was last reset (the storm counts cycles with it). */
  attempts = 0
  acks = 0
  /** performance.now() of the latest ack. */
  ackedAt = 0
  private pingTimer: NodeJS.Timeout | null = null
  private audioTimer: NodeJS.Timeout | null = null
  private reconnectTimer: NodeJS.Timeout | null = null
  /** This phone's own place in the vector: the server keeps one stateful decoder per session. */
  private audioSource: FrameLoop | null = null

  constructor (readonly index: number, readonly token: string, readonly fleet: PhoneFleet) {}

  get streaming (): boolean { return this.audioTimer !== null }

  /** Send one JSON message when the socket is open; false otherwise. */
  send (message: object): boolean {
    const ws = this.ws
    if (!this.acked || ws === null || ws.readyState !== WebSocket.OPEN) return false
    ws.send(JSON.stringify(message))
    return true
  }

  /** The emulator's sendButton. */
  pressButton (timestamp: string): boolean {
    const sent = this.send({ type: 'button_press', buttonId: 'main', pressType: 'short', timestamp })
    if (sent) this.fleet.stats.buttons += 1
    return sent
  }

  connect (): void {
    if (this.fleet.stopped) return
    this.clearTimers()
    this.retire()
    this.attempts += 1
    this.fleet.stats.connects += 1
    const ws = new WebSocket(this.fleet.socketUrl(this.token), {
      perMessageDeflate: false,
      handshakeTimeout: this.fleet.options.handshakeTimeoutMs
    })
    this.ws = ws
    let refused = false
    let opened = false
    ws.on('open', () => {
      if (this.ws !== ws) return
      opened = true
      this.fleet.restCall(this, 'POST', '/api/client/device/state', { ...DEFAULT_DEVICE_STATE })
      this.sendPing(ws)
      this.pingTimer = setInterval(() => this.pingTick(ws), this.fleet.options.pingIntervalMs)
      this.updateAudio()
    })
    ws.on('unexpected-response', (_request, response) => {
      refused = true
      tally(this.fleet.stats.refusals, response.statusCode ?? 0)
      response.resume()
      ws.terminate()
    })
    ws.on('error', (error: NodeJS.ErrnoException) => {
      if (!refused && !opened) tally(this.fleet.stats.connectErrors, error.code ?? (error.message.includes('timed out') ? 'timeout' : 'error'))
    })
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      if (this.ws !== ws || isBinary) return
      this.onMessage(data)
    })
    ws.on('close', (code: number) => {
      if (this.ws !== ws) return
      const wasAcked = this.acked
      this.acked = false
      this.ws = null
      this.clearTimers()
      if (wasAcked) this.fleet.onPhoneClosed()
      if (opened) tally(this.fleet.stats.closeCodes, code)
      this.reconnect(refused ? 'refused' : opened ? 'close' : 'connect_error')
    })
  }

  /** Reconnect as the phone does: at once for a missed pong or a 503, else after the fixed delay. */
  reconnect (reason: ReconnectReason): void {
    if (this.fleet.stopped) return
    this.fleet.stats.reconnects[reason] += 1
    if (reason === 'missed_pong' || reason === 'no_active_session') {
      this.connect()
      return
    }
    if (this.reconnectTimer !== null) clearTimeout(this.reconnectTimer)
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null
      this.connect()
    }, this.fleet.options.reconnectDelayMs)
  }

  /** No more reconnects; the socket is dropped without a close frame. */
  stop (): void {
    this.clearTimers()
    if (this.reconnectTimer !== null) clearTimeout(this.reconnectTimer)
    this.reconnectTimer = null
    this.retire()
  }

  /** The phone closes its old socket (1000) before it opens a new one. */
  private retire (): void {
    const old = this.ws
    if (old === null) return
    this.ws = null
    if (this.acked) this.fleet.onPhoneClosed()
    this.acked = false
    if (old.readyState === WebSocket.OPEN) old.close(1000)
    else old.terminate()
  }

  private clearTimers (): void {
    if (this.pingTimer !== null) clearInterval(this.pingTimer)
    this.pingTimer = null
    this.stopAudio()
  }

  private pingTick (ws: WebSocket): void {
    if (this.ws !== ws) return
    if (this.awaitingPong) {
      this.reconnect('missed_pong')
      return
    }
    this.sendPing(ws)
  }

  private sendPing (ws: WebSocket): void {
    if (ws.readyState !== WebSocket.OPEN) return
    ws.send('{"type":"ping"}')
    this.awaitingPong = true
    this.pingSentAt = performance.now()
    this.fleet.stats.pings += 1
  }

  private onMessage (data: Buffer): void {
    let message: { type?: unknown, requiredData?: unknown }
    try {
      message = JSON.parse(data.toString('utf8')) as typeof message
    } catch {
      return
    }
    switch (message.type) {
      case 'pong':
        if (this.awaitingPong) this.fleet.pongSample(performance.now() - this.pingSentAt)
        this.awaitingPong = false
        this.fleet.stats.pongs += 1
        break
      case 'connection_ack':
        this.acked = true
        this.acks += 1
        this.ackedAt = performance.now()
        this.fleet.onPhoneAcked()
        this.fleet.stats.acks += 1
        this.fleet.restCall(this, 'GET', '/api/client/apps')
        this.fleet.restCall(this, 'POST', '/api/client/audio/configure', {
          format: 'lc3', lc3Config: { sampleRate: 16000, frameDurationMs: FRAME_MS, frameSizeBytes: this.fleet.options.lc3?.frameBytes ?? 40 }
        })
        this.fleet.options.onAck?.(this)
        break
      case 'microphone_state_change': {
        const wanted = Array.isArray(message.requiredData) ? message.requiredData : []
        this.micWantsPcm = wanted.includes('pcm') || wanted.includes('pcm_or_transcription')
        this.updateAudio()
        break
      }
      case 'display_event':
        this.fleet.stats.displays += 1
        this.fleet.options.onDisplay?.(this, message as DisplayMessage, performance.now())
        break
    }
  }

  private updateAudio (): void {
    const lc3 = this.fleet.options.lc3
    const want = this.ws !== null && this.ws.readyState === WebSocket.OPEN && this.micWantsPcm && lc3 !== null
    if (want && this.audioTimer === null) {
      this.audioSource ??= new FrameLoop(lc3.frames, lc3.frameBytes)
      this.audioTimer = setInterval(() => this.sendAudio(), this.fleet.options.framesPerMessage * FRAME_MS)
    } else if (!want) {
      this.stopAudio()
    }
  }

  private stopAudio (): void {
    if (this.audioTimer !== null) clearInterval(this.audioTimer)
    this.audioTimer = null
  }

  private sendAudio (): void {
    const ws = this.ws
    const source = this.audioSource
    if (ws === null || source === null || ws.readyState !== WebSocket.OPEN) return
    const chunk = source.next(this.fleet.options.framesPerMessage)
    this.fleet.options.onAudioSent?.(this, performance.now())
    ws.send(chunk, { binary: true })
    this.fleet.stats.audioMessages += 1
  }
}

export class PhoneFleet {
  readonly phones: FleetPhone[] = []
  readonly stats: PhoneFleetStats = {
    connects: 0,
    acks: 0,
    reconnects: { close: 0, refused: 0, connect_error: 0, missed_pong: 0, no_active_session: 0 },
    refusals: {},
    connectErrors: {},
    closeCodes: {},
    rest: {},
    pings: 0,
    pongs: 0,
    audioMessages: 0,
    buttons: 0,
    displays: 0
  }

  /** Ping->pong round trips (ms) since the last takeSamples(). */
  pongMs: number[] = []
  stopped = false
  /** performance.now() when the last acked socket closed (0: never all closed). */
  allClosedAt = 0
  private openCount = 0
  private readonly agent = new Agent({ keepAlive: true, maxSockets: 256 })
  private readonly base: URL

  constructor (readonly options: PhoneFleetOptions) {
    this.base = new URL(options.baseUrl)
  }

  /** Acked sockets open now. */
  get open (): number { return this.openCount }

  socketUrl (token: string): string {
    return `ws://${this.base.host}/glasses-ws?token=${encodeURIComponent(token)}&livekit=true&udpEncryption=true`
  }

  /** Add phones up to `count` and connect the new ones, at most `concurrency` handshakes in flight. */
  async grow (count: number, concurrency: number, timeoutMs: number): Promise<void> {
    const from = this.phones.length
    for (let i = from; i < count; i += 1) this.phones.push(new FleetPhone(i, this.options.tokenFor(i), this))
    let next = from
    const deadline = performance.now() + timeoutMs
    const worker = async (): Promise<void> => {
      while (next < count && performance.now() < deadline && !this.stopped) {
        const phone = this.phones[next] as FleetPhone
        next += 1
        phone.connect()
        // The handshake slot is free once this phone is acked (or has failed and is waiting to retry).
        await waitUntil(() => phone.acked || phone.ws === null, Math.max(0, deadline - performance.now()))
      }
    }
    await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, count - from)) }, worker))
  }

  /** Resolves once `check` holds (polled), or false after `timeoutMs`. */
  async until (check: () => boolean, timeoutMs: number): Promise<boolean> {
    return await waitUntil(check, timeoutMs)
  }

  takePongSamples (): number[] {
    const samples = this.pongMs
    this.pongMs = []
    return samples
  }

  pongSample (ms: number): void { this.pongMs.push(ms) }
  onPhoneAcked (): void { this.openCount += 1 }
  onPhoneClosed (): void {
    this.openCount -= 1
    if (this.openCount === 0) this.allClosedAt = performance.now()
  }

  /** A REST call as the phone makes it; a 503 NO_ACTIVE_SESSION makes the phone reconnect at once. */
  restCall (phone: FleetPhone, method: 'GET' | 'POST', path: string, body?: unknown): void {
    if (!this.options.rest || this.stopped) return
    const text = body === undefined ? '' : JSON.stringify(body)
    const key = `${method} ${path}`
    const request = httpRequest({
      host: this.base.hostname,
      port: this.base.port,
      method,
      path,
      agent: this.agent,
      headers: {
        authorization: `Bearer ${phone.token}`,
        'content-type': 'application/json',
        'content-length': Buffer.byteLength(text)
      },
      timeout: 30_000
    }, response => {
      const chunks: Buffer[] = []
      response.on('data', (chunk: Buffer) => chunks.push(chunk))
      response.on('end', () => {
        const status = response.statusCode ?? 0
        tally(this.stats.rest, `${key} ${status}`)
        if (status === 503 && Buffer.concat(chunks).toString().includes('"NO_ACTIVE_SESSION"')) phone.reconnect('no_active_session')
      })
    })
    request.on('timeout', () => request.destroy(new Error('timeout')))
    request.on('error', () => { tally(this.stats.rest, `${key} 0`) })
    request.end(text)
  }

  /** Stop every phone: no reconnects, sockets dropped. */
  stop (): void {
    this.stopped = true
    for (const phone of this.phones) phone.stop()
    this.agent.destroy()
  }
}

async function waitUntil (check: () => boolean, timeoutMs: number, pollMs = 5): Promise<boolean> {
  const deadline = performance.now() + timeoutMs
  while (!check()) {
    if (performance.now() >= deadline) return false
    await new Promise(resolve => setTimeout(resolve, pollMs))
  }
  return true
}
