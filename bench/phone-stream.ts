/**
 * What other sessions feel while many phones stream LC3: N phone emulators
 * (phone/emulator.ts) connect to a Tether server process, start the bench app
 * over REST, the app subscribes to `audio_chunk`, the server turns each phone's
 * microphone on, and each phone streams the 40-byte LC3 test vector at 100
 * frames a second, in messages of 10 frames, which Tether decodes for its app.
 * Meanwhile one more phone, streaming nothing, sends a JSON ping every 100 ms:
 * its ping->pong round trip is the delay another session sees. The server's own
 * event-loop delay is read from its /metrics (prom-client's histogram, reset at
 * every scrape, so the second scrape covers the measured window).
 *
 * Run once with LC3_DECODE_THREAD=worker and once with main, and once with no
 * phone streaming (the floor), in one process: `node dist/bench/phone-stream.js
 * [--phones 200] [--seconds 10]`, or as part of `npm run bench`.
 */
import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { performance } from 'node:perf_hooks'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { parseArgs } from 'node:util'
import WebSocket from 'ws'
import { PhoneEmulator } from '../phone/emulator.js'
import { startBenchApp, type BenchApp } from './bench-app.js'
import { freePort, startServerProcess, type ServerProcess } from './server-process.js'
import { summarize, type LatencySummary } from './stats.js'
import { createTokenSigner, simEmail } from './tokens.js'

export type StreamMode = 'floor' | 'worker' | 'main'

export interface StreamFigures {
  mode: StreamMode
  phones: number
  seconds: number
  /** Round trip of a JSON ping from a phone that streams nothing. */
  pingPong: LatencySummary
  /** The server's event-loop delay over the window, in ms. */
  loopDelay: { p50: number, p99: number, max: number }
  /** Server CPU over the window, in % of one core (the decoding worker included). */
  serverCpuPercent: number
  /** PCM that reached the apps, against what 100 frames a second from every phone would give. */
  pcmDelivered: number
}

const FRAME_BYTES = 40
const PCM_BYTES_PER_SECOND = 32_000
const PROBE_INTERVAL_MS = 100

function metric (text: string, name: string): number {
  const match = new RegExp(`^${name} ([0-9.e+-]+)`, 'm').exec(text)
  return match === null ? NaN : Number(match[1])
}

async function scrape (server: ServerProcess): Promise<string> {
  return await (await fetch(`${server.httpUrl}/metrics`)).text()
}

/** An app socket per phone: the bench app's webhook names where to connect; it subscribes to audio. */
async function openApp (app: BenchApp, userId: string, counter: { bytes: number }): Promise<WebSocket> {
  const request = await app.sessionRequest(userId, 20_000)
  const ws = new WebSocket(request.mentraOSWebsocketUrl, { perMessageDeflate: false })
  await new Promise<void>((resolve, reject) => { ws.once('open', () => resolve()); ws.once('error', reject) })
  ws.on('message', (data: Buffer, isBinary: boolean) => {
    if (isBinary) counter.bytes += data.length
  })
  ws.send(JSON.stringify({ type: 'tpa_connection_init', sessionId: request.sessionId, packageName: app.packageName, apiKey: app.apiKey }))
  ws.send(JSON.stringify({ type: 'subscription_update', packageName: app.packageName, sessionId: request.sessionId, subscriptions: ['audio_chunk'] }))
  return ws
}

async function measure (mode: StreamMode, phones: number, seconds: number, frames: Buffer): Promise<StreamFigures> {
  const secret = randomBytes(32).toString('hex')
  const sign = createTokenSigner(secret)
  const app = await startBenchApp()
  const port = await freePort()
  const server = await startServerProcess({
    name: `tether (${mode})`,
    script: fileURLToPath(new URL('../server.js', import.meta.url)),
    port,
    openFiles: 4 * phones + 1024,
    env: {
      PORT: String(port),
      HOST: '127.0.0.1',
      AUGMENTOS_AUTH_JWT_SECRET: secret,
      LOG_LEVEL: 'warn',
      APPS_FILE: app.catalogueFile,
      LC3_DECODE_THREAD: mode === 'main' ? 'main' : 'worker',
      UPGRADE_RATE_LIMIT: String(10 * phones + 100)
    }
  })
  const emulators: PhoneEmulator[] = []
  const apps: WebSocket[] = []
  const pcm = { bytes: 0 }
  let probe: WebSocket | null = null
  try {
    const streaming = mode === 'floor' ? 0 : phones
    for (let i = 0; i < streaming; i++) {
      const email = simEmail('stream', i)
      const phone = new PhoneEmulator({
        baseUrl: server.httpUrl, token: sign(email, `sub-${i}`), lc3: { frames, frameSizeBytes: FRAME_BYTES }, framesPerMessage: 10
      })
      emulators.push(phone)
      await phone.start()
      await phone.waitForAcks(1, 20_000)
      const appSocket = openApp(app, email, pcm)
      await phone.startApp(app.packageName)
      apps.push(await appSocket)
    }
    await Promise.all(emulators.map(async phone => await phone.waitFor(() => phone.isStreamingAudio, 20_000, 'streaming')))

    probe = new WebSocket(`${server.wsUrl}/glasses-ws`, { headers: { authorization: `Bearer ${sign('probe@bench.example', 'probe')}` } })
    await new Promise<void>((resolve, reject) => { probe?.once('open', () => resolve()); probe?.once('error', reject) })
    const rtts: number[] = []
    let sentAt = 0
    probe.on('message', (data: Buffer, isBinary: boolean) => {
      if (!isBinary && data.toString().includes('"pong"') && sentAt > 0) rtts.push(performance.now() - sentAt)
    })
    // Warm up one second, then the window: the first scrape resets the server's delay histogram.
    await new Promise(resolve => setTimeout(resolve, 1000))
    await scrape(server)
    const cpuBefore = server.cpuMs()
    const pcmBefore = pcm.bytes
    const started = performance.now()
    const pinger = setInterval(() => {
      sentAt = performance.now()
      probe?.send('{"type":"ping"}')
    }, PROBE_INTERVAL_MS)
    await new Promise(resolve => setTimeout(resolve, seconds * 1000))
    clearInterval(pinger)
    const elapsed = (performance.now() - started) / 1000
    const text = await scrape(server)
    const cpu = server.cpuMs() - cpuBefore
    return {
      mode,
      phones: streaming,
      seconds: elapsed,
      pingPong: summarize(rtts),
      loopDelay: {
        p50: metric(text, 'nodejs_eventloop_lag_p50_seconds') * 1000,
        p99: metric(text, 'nodejs_eventloop_lag_p99_seconds') * 1000,
        max: metric(text, 'nodejs_eventloop_lag_max_seconds') * 1000
      },
      serverCpuPercent: cpu / (elapsed * 1000) * 100,
      pcmDelivered: streaming === 0 ? 1 : (pcm.bytes - pcmBefore) / (streaming * PCM_BYTES_PER_SECOND * elapsed)
    }
  } finally {
    probe?.terminate()
    await Promise.all(emulators.map(async phone => await phone.stop()))
    for (const ws of apps) ws.terminate()
    server.terminate()
    await server.exited
    await app.close()
  }
}

/** The three runs, in one process: no streaming, decoding on the worker, decoding on the main thread. */
export async function phoneStreamBench (options: { phones: number, seconds: number }): Promise<StreamFigures[]> {
  const frames = readFileSync(fileURLToPath(new URL('../../test/vectors/lc3/frames-40.lc3', import.meta.url)))
  const results: StreamFigures[] = []
  for (const mode of ['floor', 'worker', 'main'] as const) {
    process.stderr.write(`[bench] phones streaming LC3: ${mode}, ${mode === 'floor' ? 0 : options.phones} phones\n`)
    results.push(await measure(mode, options.phones, options.seconds, frames))
  }
  return results
}

const f1 = (n: number): string => Number.isFinite(n) ? n.toFixed(1) : 'n/a'

export function formatPhoneStream (results: readonly StreamFigures[]): string {
  return [
    '| decoding | streaming phones | other session ping->pong p50 / p99 (ms) | server loop delay p50 / p99 / max (ms) | server CPU (% of a core) | PCM delivered |',
    '|---|---|---|---|---|---|',
    ...results.map(r => `| ${r.mode === 'floor' ? 'none (floor)' : r.mode === 'worker' ? 'worker thread' : 'main thread'} | ${r.phones} | ` +
      `${f1(r.pingPong.p50)} / ${f1(r.pingPong.p99)} | ${f1(r.loopDelay.p50)} / ${f1(r.loopDelay.p99)} / ${f1(r.loopDelay.max)} | ` +
      `${f1(r.serverCpuPercent)} | ${(r.pcmDelivered * 100).toFixed(0)}% |`)
  ].join('\n')
}

async function main (): Promise<void> {
  const { values } = parseArgs({ options: { phones: { type: 'string', default: '200' }, seconds: { type: 'string', default: '10' } } })
  const results = await phoneStreamBench({ phones: Number(values.phones), seconds: Number(values.seconds) })
  process.stdout.write(`${formatPhoneStream(results)}\n`)
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) await main()
