/**
 * The glasses fleet simulator: `npm run simulate -- --url ws://127.0.0.1:8002/glasses-ws --users 1000`.
 * Connects N virtual glasses (tokens signed from the secret, or one given token),
 * keeps them alive, sends traffic at the configured rates, drops and resumes a
 * fraction of them, shows one progress line on stderr and prints a summary.
 * It stops by itself after --duration-ms. `runSimulation` is the same thing as a
 * library call.
 */
import { performance } from 'node:perf_hooks'
import { pathToFileURL } from 'node:url'
import { parseArgs } from 'node:util'
import { Fleet, type ConnectReport, type FleetStats } from './fleet.js'
import { fmtMs, summarize, type LatencySummary } from './stats.js'
import { createTokenSigner, simEmail } from './tokens.js'
import { TrafficGenerator, type TrafficRates } from './traffic.js'

export interface SimulateOptions {
  url: string
  users: number
  /** Signs one token per virtual glasses; null when `token` is given. */
  secret: string | null
  /** One token for a single pair of glasses. */
  token: string | null
  /** Glasses i is `<prefix>-<i>@tether.sim`. */
  userPrefix: string
  concurrency: number
  durationMs: number
  handshakeTimeoutMs: number
  rates: TrafficRates
  /** Fraction (0..1) of the open glasses dropped once, then resumed. */
  dropFraction: number
  /** When to drop, from the start (never before every glasses has had its try). */
  dropAfterMs: number
  /** How long dropped glasses stay away before they reconnect. */
  resumeAfterMs: number
  progressMs: number
  /** Print the summary as JSON instead of text. */
  json: boolean
}

export interface SimulateSummary {
  url: string
  users: number
  elapsedMs: number
  connect: ConnectReport
  resume: ConnectReport | null
  openAtEnd: number
  stats: FleetStats
  timeToAck: LatencySummary
  resumeTime: LatencySummary
}

export class UsageError extends Error {
  override readonly name = 'UsageError'
  /** True when the user asked for the usage text: not an error. */
  constructor (message: string, readonly help = false) { super(message) }
}

const USAGE = `usage: npm run simulate -- [options]
  --url URL                  glasses endpoint (default ws://127.0.0.1:8002/glasses-ws)
  --users N                  virtual glasses (default 100)
  --secret S                 HS256 secret to sign tokens (default: env AUGMENTOS_AUTH_JWT_SECRET)
  --token JWT                one token instead of a secret (only with --users 1)
  --user-prefix P            identities are P-<i>@tether.sim (default sim)
  --concurrency N            handshakes in flight (default 100)
  --duration-ms MS           run time, then exit (default 30000)
  --handshake-timeout-ms MS  per connect (default 10000)
  --json-ping-ms MS          {"type":"ping"} per glasses every MS (default 0: off; ws pings are always answered)
  --button-ms MS             button_press per glasses every MS (default 0: off)
  --transcript-ms MS         local_transcription per glasses every MS (default 0: off)
  --audio-fps N              binary audio frames per glasses per second (default 0: off)
  --audio-frame-bytes N      bytes per audio frame (default 640 = 20 ms of PCM16 16 kHz mono)
  --drop-fraction F          fraction 0..1 of open glasses dropped without a close frame, then resumed (default 0)
  --drop-after-ms MS         when to drop (default: half the duration)
  --resume-after-ms MS       time away before reconnecting (default 1000)
  --progress-ms MS           progress line interval (default 500)
  --json                     print the summary as JSON`

function numberOption (value: string | undefined, name: string, fallback: number, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  if (value === undefined) return fallback
  const parsed = Number(value)
  if (!Number.isFinite(parsed) || parsed < min || parsed > max) throw new UsageError(`--${name} must be a number from ${min} to ${max}`)
  return parsed
}

export function parseSimulateArgs (argv: readonly string[], env: Record<string, string | undefined>): SimulateOptions {
  let values
  try {
    ({ values } = parseArgs({
      args: [...argv],
      strict: true,
      options: {
        url: { type: 'string' },
        users: { type: 'string' },
        secret: { type: 'string' },
        token: { type: 'string' },
        'user-prefix': { type: 'string' },
        concurrency: { type: 'string' },
        'duration-ms': { type: 'string' },
        'handshake-timeout-ms': { type: 'string' },
        'json-ping-ms': { type: 'string' },
        'button-ms': { type: 'string' },
        'transcript-ms': { type: 'string' },
        'audio-fps': { type: 'string' },
        'audio-frame-bytes': { type: 'string' },
        'drop-fraction': { type: 'string' },
        'drop-after-ms': { type: 'string' },
        'resume-after-ms': { type: 'string' },
        'progress-ms': { type: 'string' },
        json: { type: 'boolean' },
        help: { type: 'boolean' }
      }
    }))
  } catch (error) {
    throw new UsageError(`${(error as Error).message}\n${USAGE}`)
  }
  if (values.help === true) throw new UsageError(USAGE, true)
  const users = numberOption(values.users, 'users', 100, 1, 1_000_000)
  const token = values.token ?? null
  const secret = token === null ? (values.secret ?? env.AUGMENTOS_AUTH_JWT_SECRET ?? null) : null
  if (token === null && (secret === null || secret === '')) {
    throw new UsageError('a --secret (or AUGMENTOS_AUTH_JWT_SECRET) or a --token is required')
  }
  // One token is one user: more glasses with it would only replace each other (4001).
  if (token !== null && users !== 1) throw new UsageError('--token works with --users 1; use --secret for a fleet')
  const durationMs = numberOption(values['duration-ms'], 'duration-ms', 30_000, 100, 24 * 3600 * 1000)
  return {
    url: values.url ?? 'ws://127.0.0.1:8002/glasses-ws',
    users,
    secret,
    token,
    userPrefix: values['user-prefix'] ?? 'sim',
    concurrency: numberOption(values.concurrency, 'concurrency', 100, 1, 10_000),
    durationMs,
    handshakeTimeoutMs: numberOption(values['handshake-timeout-ms'], 'handshake-timeout-ms', 10_000, 1),
    rates: {
      jsonPingEveryMs: numberOption(values['json-ping-ms'], 'json-ping-ms', 0),
      buttonEveryMs: numberOption(values['button-ms'], 'button-ms', 0),
      transcriptEveryMs: numberOption(values['transcript-ms'], 'transcript-ms', 0),
      audioFramesPerSecond: numberOption(values['audio-fps'], 'audio-fps', 0, 0, 1000),
      audioFrameBytes: numberOption(values['audio-frame-bytes'], 'audio-frame-bytes', 640, 2, 1024 * 1024)
    },
    dropFraction: numberOption(values['drop-fraction'], 'drop-fraction', 0, 0, 1),
    dropAfterMs: numberOption(values['drop-after-ms'], 'drop-after-ms', Math.floor(durationMs / 2)),
    resumeAfterMs: numberOption(values['resume-after-ms'], 'resume-after-ms', 1000),
    progressMs: numberOption(values['progress-ms'], 'progress-ms', 500, 50),
    json: values.json === true
  }
}

const sleep = async (ms: number): Promise<void> => await new Promise(resolve => setTimeout(resolve, ms))

/** One progress line: what a person watching wants to see at a glance. */
export function progressLine (fleet: Fleet, users: number, elapsedMs: number): string {
  const s = fleet.stats
  const sent = Object.values(s.sent).reduce((a, b) => a + b, 0)
  const received = Object.values(s.received).reduce((a, b) => a + b, 0)
  const closes = Object.entries(s.closeCodes).map(([code, n]) => `${code}:${n}`).join(',') || '-'
  return `[simulate ${(elapsedMs / 1000).toFixed(1)}s] open ${fleet.open}/${users} acked ${s.acked} failed ${s.failed} ` +
    `resumed ${s.resumed}/${s.resumesAttempted} sent ${sent} recv ${received} closes ${closes}`
}

/** Run the fleet for `durationMs`, then end every socket; `progress` gets a line every `progressMs`. */
export async function runSimulation (options: SimulateOptions, progress?: (line: string) => void): Promise<SimulateSummary> {
  const signer = options.secret === null ? null : createTokenSigner(options.secret)
  const fixedToken = options.token
  const fleet = new Fleet({
    url: options.url,
    concurrency: options.concurrency,
    handshakeTimeoutMs: options.handshakeTimeoutMs,
    tokenFor: index => fixedToken ?? (signer as NonNullable<typeof signer>)(simEmail(options.userPrefix, index), `${options.userPrefix}-${index}`)
  })
  const traffic = new TrafficGenerator(fleet, options.rates)
  const started = performance.now()
  const elapsed = (): number => performance.now() - started
  const ticker = progress === undefined ? null : setInterval(() => progress(progressLine(fleet, options.users, elapsed())), options.progressMs)
  const deadline = setTimeout(() => fleet.halt(), options.durationMs)
  traffic.start()

  let resume: ConnectReport | null = null
  try {
    const connect = await fleet.connectRange(0, options.users)
    if (options.dropFraction > 0 && elapsed() < options.durationMs) {
      await sleep(Math.max(0, Math.min(options.dropAfterMs, options.durationMs) - elapsed()))
      const dropped = fleet.drop(Math.round(fleet.open * options.dropFraction))
      if (dropped.length > 0 && elapsed() + options.resumeAfterMs < options.durationMs) {
        await sleep(options.resumeAfterMs)
        resume = await fleet.resume(dropped)
      }
    }
    await sleep(Math.max(0, options.durationMs - elapsed()))
    return {
      url: options.url,
      users: options.users,
      elapsedMs: elapsed(),
      connect,
      resume,
      openAtEnd: fleet.open,
      stats: fleet.stats,
      timeToAck: summarize(fleet.ackMs),
      resumeTime: summarize(fleet.resumeMs)
    }
  } finally {
    clearTimeout(deadline)
    if (ticker !== null) clearInterval(ticker)
    traffic.stop()
    fleet.halt()
    fleet.terminateAll()
  }
}

function entries (counts: Record<string, number>): string {
  const list = Object.entries(counts).sort((a, b) => b[1] - a[1]).map(([key, n]) => `${key}=${n}`)
  return list.length === 0 ? 'none' : list.join(' ')
}

export function formatSummary (summary: SimulateSummary): string {
  const s = summary.stats
  const sum = (counts: Record<string, number>): number => Object.values(counts).reduce((a, b) => a + b, 0)
  return [
    `simulated ${summary.users} glasses against ${summary.url} for ${(summary.elapsedMs / 1000).toFixed(1)} s`,
    `connected   ${s.acked}/${s.attempts} acked, ${s.failed} failed (${entries(s.failures)}); ${summary.openAtEnd} open at the end`,
    `connect     ${summary.connect.ratePerSecond.toFixed(0)} acks/s; time to ack p50 ${fmtMs(summary.timeToAck.p50)} ms, p99 ${fmtMs(summary.timeToAck.p99)} ms`,
    `resumes     ${s.resumed}/${s.resumesAttempted} resumed the same session (${s.resumeMismatches} got a new one) after ${s.dropped} drops; ` +
      `p50 ${fmtMs(summary.resumeTime.p50)} ms, p99 ${fmtMs(summary.resumeTime.p99)} ms`,
    `sent        ${sum(s.sent)} frames, ${(s.bytesSent / 1e6).toFixed(2)} MB (${entries(s.sent)})`,
    `received    ${sum(s.received)} frames, ${(s.bytesReceived / 1e6).toFixed(2)} MB (${entries(s.received)})`,
    `closes      ${entries(s.closeCodes)} (by the server or network; ${s.unexpectedCloses} of acked sockets)`
  ].join('\n') + '\n'
}

async function main (): Promise<void> {
  let options: SimulateOptions
  try {
    options = parseSimulateArgs(process.argv.slice(2), process.env)
  } catch (error) {
    if (!(error instanceof UsageError)) throw error
    if (error.help) {
      process.stdout.write(`${error.message}\n`)
      return
    }
    process.stderr.write(`${error.message}\n`)
    process.exit(2)
  }
  const overwrite = process.stderr.isTTY
  let lastPrinted = 0
  const summary = await runSimulation(options, line => {
    // On a terminal the line is redrawn in place; in a log file, one line every 5 s is enough.
    if (overwrite) process.stderr.write(`\r${line}\x1b[K`)
    else if (performance.now() - lastPrinted >= 5000) {
      lastPrinted = performance.now()
      process.stderr.write(`${line}\n`)
    }
  })
  if (overwrite) process.stderr.write('\n')
  process.stdout.write(options.json ? `${JSON.stringify(summary)}\n` : formatSummary(summary))
  process.exitCode = summary.stats.failed > 0 ? 1 : 0
  // Sockets were terminated; nothing should keep the loop alive, but never hang a CI job on one.
  setTimeout(() => process.exit(), 2000).unref()
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) await main()
