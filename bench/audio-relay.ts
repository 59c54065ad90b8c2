/**
 * Audio relay, glasses -> one subscribed app: open a glasses socket and an app
 * socket subscribed to `audio_chunk` (through Tether's real app flow, or the
 * baseline's bare relay), then push binary frames with a bounded window in
 * flight and time each one from send to arrival at the app. Each frame carries
 * its sequence number in its first four bytes; the servers relay bytes as they
 * are, so the number comes back untouched.
 */
import { performance } from 'node:perf_hooks'
import WebSocket from 'ws'
import type { BenchApp } from './bench-app.js'
import { summarize, type LatencySummary } from './stats.js'

export interface RelayLink {
  glasses: WebSocket
  app: WebSocket
  close: () => void
}

export interface RelayOptions {
  durationMs: number
  /** Not recorded: lets both ends warm up first. */
  warmupMs: number
  /** At least 8 (a sequence number and some payload). */
  frameBytes: number
  /** Frames sent but not yet seen by the app. */
  window: number
}

export interface RelayResult {
  /** Frames that arrived during the whole run, warm-up included (for CPU per frame). */
  allFrames: number
  /** Frames that arrived in the measured part. */
  frames: number
  bytes: number
  seconds: number
  megabytesPerSecond: number
  framesPerSecond: number
  latency: LatencySummary
  /** Frames that never arrived (dropped by a server under backpressure). */
  lost: number
}

interface JsonMessage { type?: unknown, [key: string]: unknown }

/** A socket whose text messages are kept from the very first one: an ack can arrive in the same tick as `open`. */
interface Peer { ws: WebSocket, inbox: JsonMessage[] }

async function open (url: string, headers: Record<string, string> = {}): Promise<Peer> {
  const ws = new WebSocket(url, { headers, perMessageDeflate: false })
  const inbox: JsonMessage[] = []
  ws.on('message', (data: Buffer, isBinary: boolean) => {
    // Setup messages only: once relaying, the inbox stops growing past a handful.
    if (isBinary || inbox.length >= 100) return
    try {
      inbox.push(JSON.parse(data.toString()) as JsonMessage)
    } catch {
      // not JSON: not one of the setup messages
    }
  })
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve())
    ws.once('error', reject)
    ws.once('unexpected-response', (_request, response) => reject(new Error(`${url}: HTTP ${response.statusCode ?? '?'}`)))
  })
  return { ws, inbox }
}

async function nextMessage (peer: Peer, type: string, timeoutMs = 10_000): Promise<JsonMessage> {
  const deadline = performance.now() + timeoutMs
  for (;;) {
    const index = peer.inbox.findIndex(message => message.type === type)
    if (index >= 0) return peer.inbox.splice(index, 1)[0] as JsonMessage
    if (performance.now() > deadline) throw new Error(`no ${type} within ${timeoutMs} ms`)
    await new Promise(resolve => setTimeout(resolve, 10))
  }
}

/** Send small frames until the app sees one: the subscription is live end to end. */
async function untilRelayed (link: { glasses: WebSocket, app: WebSocket }, timeoutMs = 10_000): Promise<void> {
  const arrived = new Promise<void>(resolve => {
    const onMessage = (_data: Buffer, isBinary: boolean): void => {
      if (!isBinary) return
      link.app.off('message', onMessage)
      resolve()
    }
    link.app.on('message', onMessage)
  })
  const probe = setInterval(() => link.glasses.send(Buffer.alloc(8)), 50)
  const timeout = new Promise<never>((_resolve, reject) => setTimeout(() => reject(new Error('audio never reached the app')), timeoutMs).unref())
  try {
    await Promise.race([arrived, timeout])
  } finally {
    clearInterval(probe)
  }
  // Let probes still in flight arrive before the measurement starts counting.
  await new Promise(resolve => setTimeout(resolve, 200))
}

function link (glasses: WebSocket, app: WebSocket): RelayLink {
  return { glasses, app, close: () => { glasses.terminate(); app.terminate() } }
}

/** Tether: glasses start the bench app, the webhook says where to connect, the app subscribes to audio_chunk. */
export async function connectTetherRelay (wsUrl: string, token: string, userId: string, app: BenchApp): Promise<RelayLink> {
  const glasses = await open(`${wsUrl}/glasses-ws`, { authorization: `Bearer ${token}` })
  await nextMessage(glasses, 'connection_ack')
  const hook = app.sessionRequest(userId, 10_000)
  glasses.ws.send(JSON.stringify({ type: 'start_app', packageName: app.packageName }))
  const request = await hook
  const appPeer = await open(request.mentraOSWebsocketUrl)
  appPeer.ws.send(JSON.stringify({ type: 'tpa_connection_init', sessionId: request.sessionId, packageName: app.packageName, apiKey: app.apiKey }))
  await nextMessage(appPeer, 'tpa_connection_ack')
  appPeer.ws.send(JSON.stringify({
    type: 'subscription_update', packageName: app.packageName, sessionId: request.sessionId, subscriptions: ['audio_chunk']
  }))
  const result = link(glasses.ws, appPeer.ws)
  await untilRelayed(result)
  return result
}

/** Baseline: the app names the user as its session and subscribes; no webhook, no catalogue. */
export async function connectBaselineRelay (wsUrl: string, token: string, userId: string, app: BenchApp): Promise<RelayLink> {
  const glasses = await open(`${wsUrl}/glasses-ws`, { authorization: `Bearer ${token}` })
  await nextMessage(glasses, 'connection_ack')
  const appPeer = await open(`${wsUrl}/app-ws`)
  appPeer.ws.send(JSON.stringify({ type: 'tpa_connection_init', sessionId: userId, packageName: app.packageName, apiKey: app.apiKey }))
  await nextMessage(appPeer, 'tpa_connection_ack')
  appPeer.ws.send(JSON.stringify({ type: 'subscription_update', packageName: app.packageName, sessionId: userId, subscriptions: ['audio_chunk'] }))
  const result = link(glasses.ws, appPeer.ws)
  await untilRelayed(result)
  return result
}

const SLOTS = 1 << 16
const STALL_MS = 1000

/** Push frames for warmup + duration with at most `window` in flight; time the ones sent after the warm-up. */
export async function measureRelay ({ glasses, app }: RelayLink, options: RelayOptions): Promise<RelayResult> {
  const sentAt = new Float64Array(SLOTS)
  const samples: number[] = []
  let sequence = 0
  let inFlight = 0
  let lost = 0
  let frames = 0
  let allFrames = 0
  let bytes = 0
  let lastArrival = performance.now()
  let sending = true
  const started = performance.now()
  const measureFrom = started + options.warmupMs
  let measuredUntil = measureFrom

  const pump = (): void => {
    // `sending` is turned off by a timer between pumps, not inside this loop.
    // eslint-disable-next-line no-unmodified-loop-condition
    while (sending && inFlight < options.window && glasses.readyState === WebSocket.OPEN) {
      const frame = Buffer.allocUnsafe(options.frameBytes)
      frame.fill(0, 4)
      frame.writeUInt32LE(sequence, 0)
      sentAt[sequence % SLOTS] = performance.now()
      sequence = (sequence + 1) >>> 0
      inFlight += 1
      glasses.send(frame)
    }
  }
  const onMessage = (data: Buffer, isBinary: boolean): void => {
    // Only measured frames count: a late probe from untilRelayed is smaller.
    if (!isBinary || data.length !== options.frameBytes) return
    const now = performance.now()
    lastArrival = now
    allFrames += 1
    inFlight = Math.max(0, inFlight - 1)
    const sent = sentAt[data.readUInt32LE(0) % SLOTS] as number
    if (sent >= measureFrom && sending) {
      samples.push(now - sent)
      frames += 1
      bytes += data.length
      measuredUntil = now
    }
    pump()
  }
  app.on('message', onMessage)
  // A frame a server dropped never comes back: count the window as lost and go on.
  const watchdog = setInterval(() => {
    if (inFlight > 0 && performance.now() - lastArrival > STALL_MS) {
      lost += inFlight
      inFlight = 0
      lastArrival = performance.now()
      pump()
    }
  }, 250)
  pump()
  await new Promise(resolve => setTimeout(resolve, options.warmupMs + options.durationMs))
  sending = false
  clearInterval(watchdog)
  app.off('message', onMessage)
  const seconds = Math.max(0.001, (measuredUntil - measureFrom) / 1000)
  return {
    allFrames,
    frames,
    bytes,
    seconds,
    megabytesPerSecond: bytes / 1e6 / seconds,
    framesPerSecond: frames / seconds,
    latency: summarize(samples),
    lost
  }
}
