/**
 * `npm run bench`: Tether against the raw `ws` baseline on this machine, in one
 * run, printed as one table and appended to bench/RESULTS.md. The servers run
 * as child processes, one at a time; the fleet runs here.
 *
 * Order: Tether main suite, baseline main suite, Tether capacity, baseline
 * capacity, the cluster row, the phone fleet ladder (Tether, then the
 * baseline), the restart storm, then the LC3 figures. Flags scale every phase
 * down (see --help).
 */
import { execFileSync, spawn } from 'node:child_process'
import { existsSync, statSync } from 'node:fs'
import { randomBytes } from 'node:crypto'
import { loadavg } from 'node:os'
import { join, resolve } from 'node:path'
import { performance } from 'node:perf_hooks'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { pinForFleet } from './affinity.js'
import { startBenchApp } from './bench-app.js'
import { machineInfo } from './machine.js'
import { appendResults, buildRows, formatLc3Section, formatNotes, formatTable, type BenchResults } from './report.js'
import { raiseLimitScript } from './server-process.js'
import { clusterSuite } from './cluster-suite.js'
import { lc3DecodeBench } from './lc3-decode.js'
import { formatPhoneStream, phoneStreamBench } from './phone-stream.js'
import { fleetLadder } from './fleet-ladder.js'
import { formatFleetLadder, formatStorm } from './fleet-report.js'
import { restartStorm, type StormLimit } from './restart-storm.js'
import { formatRoutingPrice, routingPrice } from './routing-price.js'
import { capacitySuite, mainSuite, type BenchContext, type BenchOptions, type TargetName } from './suites.js'
import { createTokenSigner } from './tokens.js'

/** Where --cpu-prof and --alloc-prof write their profiles. */
const PROFILE_DIR = fileURLToPath(new URL('../../bench/profiles/', import.meta.url))

const USAGE = `usage: npm run bench -- [options]
  --sessions N        idle sessions for memory, GET /sessions and drain (default 10000)
  --rounds N          main-suite rounds per server, alternating; the table shows medians; 0 skips (default 5)
  --capacity N        sessions held with heartbeats on; 0 skips the phase (default 15000)
  --routing-rounds N  rounds of connect and resume against the raw baseline, the baseline with its upgrades
                      routed through Fastify, and Tether: the price of Fastify on the upgrade path; 0 skips
                      (default 3; both servers must be run)
  --concurrency N     handshakes in flight (default 100)
  --resume N          sessions dropped and resumed, in each of two bursts (default sessions/10, at most 1000)
  --ping-ms MS        PING_INTERVAL_MS for both servers; silence is 3x (default 5000)
  --hold-ms MS        capacity hold, longer than the silence timeout (default 4x ping)
  --relay-ms MS       audio relay measurement (default 5000, after 1 s of warm-up)
  --relay-window N    audio frames in flight (default 64)
  --relay-frame N     bytes per audio frame (default 640 = 20 ms of PCM16 16 kHz mono)
  --list-requests N   requests per GET /sessions figure (default 30)
  --node-flags=LIST   node flags, space-separated, for every server the bench starts, written with '='
                      (--node-flags=--no-opt runs them without V8's optimizing compiler); the report's run
                      line names them (default: none)
  --only NAME         run only tether or only baseline
  --cpu-prof          CPU-profile each phase of each server (over the inspector) into bench/profiles/
                      (summarise one with: node dist/bench/profile-summary.js <file>)
  --alloc-prof        instead, sample each phase's allocations (collected ones included) into bench/profiles/
                      (summarise one with: node dist/bench/alloc-summary.js <file> [count])
  --cluster           also measure two Tether nodes sharing Redis (needs REDIS_URL support)
  --redis-url URL     Redis for --cluster (default: start redis-server on a free port)
  --streaming-phones N  phones streaming LC3 while another session's ping is timed; 0 skips (default 200)
  --fleet-ladder LIST realistic phone fleet, one step per count, e.g. 250,500,1000; 0 skips
                      (default 250,500,1000,2000,4000,8000). Each phone pings every 5 s, calls the REST API
                      at connect, presses a button every 5 s (its app answers with a display), gets a display
                      a second; 10% stream LC3 to their app. Server pinned to core 0 with taskset where it
                      can be. Reports CPU, RSS and p99s per step, and the capacity of one core: the largest
                      step with every p99 under 100 ms and no missed-pong reconnect. The first step that
                      breaks is tried twice, then one step half-way back; then at most one more step up.
  --fleet-window MS   measured time per fleet step (default 20000)
  --fleet-warmup MS   unmeasured time before each fleet window (default 3000)
  --fleet-nice=N      run the fleet's and the storm's server and load generator at nice N, written with '='
                      for a negative N (--fleet-nice=-10; needs root). On a machine busy with other work this
                      keeps its scheduling stalls out of the p99s; the report says when it was used
                      (default 0: as started)
  --storm N           restart storm: N phones on Tether, SIGTERM, a new process on the same port, all
                      phones back 5 s after their close; 0 skips (default 10000)
  --storm-limits LIST UPGRADE_RATE_LIMIT of the restarted process, one storm each: default (Tether's own),
                      off, or a number (default: default,off)
  --storm-timeout MS  how long a storm may take to get every phone back (default 120000)
  --no-write          print the table only; do not append to bench/RESULTS.md
  --compare-build PATH  another Tether build (a checkout with dist/ built, or its dist/server.js) in the raw
                      baseline's place, with Tether's settings: old against new in one run, rounds alternating.
                      Runs the main suite only and writes nothing to bench/RESULTS.md; the table's "baseline"
                      column is that build
  --no-pin            run the main suite, the routing section and capacity unpinned; by default their server is
                      pinned to core 0 and the load generator to core 1 (taskset), as in the fleet ladder

Quick smoke run of the fleet and the storm only (about 2 minutes; --rounds 0 skips the main suites):
  npm run bench -- --rounds 0 --capacity 0 --streaming-phones 0 --fleet-ladder 50 --fleet-window 6000
    --fleet-warmup 1000 --storm 500 --storm-limits default,off --storm-timeout 20000 --no-write`

class UsageError extends Error {
  /** True when the user asked for the usage text: not an error. */
  constructor (message: string, readonly help = false) { super(message) }
}

interface RunOptions extends BenchOptions {
  only: TargetName[]
  write: boolean
  /** The single-server phases run their server on core 0 and the load generator on core 1. */
  pin: boolean
  rounds: number
  routingRounds: number
  streamingPhones: number
  /** Empty: no fleet. */
  fleetLadder: number[]
  fleetWindowMs: number
  fleetWarmupMs: number
  fleetNice: number
  storm: number
  stormLimits: StormLimit[]
  stormTimeoutMs: number
  /** `--compare-build`: the other Tether build's server script, run in the baseline's place. */
  compareBuild: string | null
}

/** `250,500,1000` -> ascending counts; `0` -> none. */
function ladderOf (value: string | undefined): number[] {
  if (value === undefined) return [250, 500, 1000, 2000, 4000, 8000]
  if (value.trim() === '0') return []
  const steps = value.split(',').map(part => Number(part.trim()))
  if (steps.some(n => !Number.isInteger(n) || n < 1)) throw new UsageError('--fleet-ladder is a comma-separated list of positive integers, or 0')
  return [...new Set(steps)].sort((a, b) => a - b)
}

function stormLimitsOf (value: string | undefined): StormLimit[] {
  if (value === undefined) return ['default', 'off']
  return value.split(',').map(part => {
    const text = part.trim()
    if (text === 'default' || text === 'off') return text
    const n = Number(text)
    if (!Number.isInteger(n) || n < 1) throw new UsageError('--storm-limits lists default, off or positive integers')
    return n
  })
}

function int (value: string | undefined, name: string, fallback: number, min: number): number {
  if (value === undefined) return fallback
  const parsed = Number(value)
  if (!Number.isInteger(parsed) || parsed < min) throw new UsageError(`--${name} must be an integer >= ${min}`)
  return parsed
}

function parseOptions (argv: string[]): RunOptions {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      sessions: { type: 'string' },
      rounds: { type: 'string' },
      'routing-rounds': { type: 'string' },
      capacity: { type: 'string' },
      concurrency: { type: 'string' },
      resume: { type: 'string' },
      'ping-ms': { type: 'string' },
      'hold-ms': { type: 'string' },
      'relay-ms': { type: 'string' },
      'relay-window': { type: 'string' },
      'relay-frame': { type: 'string' },
      'list-requests': { type: 'string' },
      'node-flags': { type: 'string' },
      only: { type: 'string' },
      'cpu-prof': { type: 'boolean' },
      'alloc-prof': { type: 'boolean' },
      cluster: { type: 'boolean' },
      'redis-url': { type: 'string' },
      'no-write': { type: 'boolean' },
      'compare-build': { type: 'string' },
      'no-pin': { type: 'boolean' },
      'streaming-phones': { type: 'string' },
      'fleet-ladder': { type: 'string' },
      'fleet-window': { type: 'string' },
      'fleet-warmup': { type: 'string' },
      'fleet-nice': { type: 'string' },
      storm: { type: 'string' },
      'storm-limits': { type: 'string' },
      'storm-timeout': { type: 'string' },
      help: { type: 'boolean' }
    }
  })
  if (values.help === true) throw new UsageError(USAGE, true)
  const sessions = int(values.sessions, 'sessions', 10_000, 1)
  const pingMs = int(values['ping-ms'], 'ping-ms', 5000, 100)
  const only = values.only
  if (only !== undefined && only !== 'tether' && only !== 'baseline') throw new UsageError('--only is tether or baseline')
  const compareBuild = compareBuildOf(values['compare-build'])
  if (compareBuild !== null && only !== undefined) throw new UsageError('--compare-build runs both builds: leave out --only')
  // Old against new: the main suite alone (the other phases teach the raw baseline work of its own), not written down.
  const compared = compareBuild === null ? {} : { routingRounds: 0, capacity: 0, streamingPhones: 0, fleetLadder: [], storm: 0, cluster: false, write: false }
  return {
    sessions,
    capacity: int(values.capacity, 'capacity', 15_000, 0),
    concurrency: int(values.concurrency, 'concurrency', 100, 1),
    resumeCount: int(values.resume, 'resume', Math.min(1000, Math.max(1, Math.floor(sessions / 10))), 1),
    pingMs,
    holdMs: int(values['hold-ms'], 'hold-ms', 4 * pingMs, 0),
    relayMs: int(values['relay-ms'], 'relay-ms', 5000, 100),
    relayWindow: int(values['relay-window'], 'relay-window', 64, 1),
    relayFrameBytes: int(values['relay-frame'], 'relay-frame', 640, 8),
    listRequests: int(values['list-requests'], 'list-requests', 30, 1),
    serverNodeFlags: nodeFlagsOf(values['node-flags']),
    profileDir: values['cpu-prof'] === true ? PROFILE_DIR : null,
    allocProfileDir: values['alloc-prof'] === true && values['cpu-prof'] !== true ? PROFILE_DIR : null,
    cluster: values.cluster === true,
    redisUrl: values['redis-url'] ?? null,
    only: only === undefined ? ['tether', 'baseline'] : [only],
    write: values['no-write'] !== true,
    pin: values['no-pin'] !== true,
    rounds: int(values.rounds, 'rounds', 5, 0),
    routingRounds: int(values['routing-rounds'], 'routing-rounds', 3, 0),
    streamingPhones: int(values['streaming-phones'], 'streaming-phones', 200, 0),
    fleetLadder: ladderOf(values['fleet-ladder']),
    fleetWindowMs: int(values['fleet-window'], 'fleet-window', 20_000, 1000),
    fleetWarmupMs: int(values['fleet-warmup'], 'fleet-warmup', 3000, 0),
    fleetNice: int(values['fleet-nice'], 'fleet-nice', 0, -20),
    storm: int(values.storm, 'storm', 10_000, 0),
    stormLimits: stormLimitsOf(values['storm-limits']),
    stormTimeoutMs: int(values['storm-timeout'], 'storm-timeout', 120_000, 1000),
    compareBuild,
    ...compared
  }
}

/** `--node-flags`: space-separated, each one a flag (a value that is not one would be read as a script). */
function nodeFlagsOf (value: string | undefined): string[] {
  const flags = (value ?? '').split(' ').filter(flag => flag !== '')
  if (flags.some(flag => !flag.startsWith('--'))) throw new UsageError('--node-flags takes node flags only, each starting with --')
  return flags
}

/** The server script of `--compare-build`: the path itself when it is a file, else `<path>/dist/server.js`. */
function compareBuildOf (value: string | undefined): string | null {
  if (value === undefined) return null
  const path = resolve(value)
  const script = existsSync(path) && statSync(path).isFile() ? path : join(path, 'dist', 'server.js')
  if (!existsSync(script)) throw new UsageError(`--compare-build: no ${script} (run npm run build there first)`)
  return script
}

/** The soft open-files limit this process runs with (bash inherits it). */
function softFileLimit (): number {
  try {
    const text = execFileSync('bash', ['-c', 'ulimit -Sn'], { encoding: 'utf8' }).trim()
    return text === 'unlimited' ? Number.POSITIVE_INFINITY : Number(text)
  } catch {
    return Number.NaN
  }
}

const RAISED_MARK = 'TETHER_BENCH_LIMIT_RAISED'

/**
 * The fleet holds one socket per session in this process: when the soft limit is
 * too low, run again through bash with it raised (once). Resolves true when this
 * process should go on itself.
 */
async function ensureFileLimit (needed: number): Promise<boolean> {
  const limit = softFileLimit()
  if (!(limit < needed)) return true
  if (process.env[RAISED_MARK] === '1') {
    process.stderr.write(`[bench] warning: open files limit is ${limit}, the run needs about ${needed}; expect failed connects\n`)
    return true
  }
  const child = spawn('bash', ['-c', raiseLimitScript(needed), 'bash', process.execPath, ...process.execArgv, ...process.argv.slice(1)], {
    stdio: 'inherit',
    env: { ...process.env, [RAISED_MARK]: '1' }
  })
  process.exitCode = await new Promise<number>(resolve => child.once('exit', code => resolve(code ?? 1)))
  return false
}

function progressWriter (): (line: string, ticker?: boolean) => void {
  const tty = process.stderr.isTTY
  return (line, ticker = false) => {
    if (tty) process.stderr.write(`\r[bench] ${line}\x1b[K`)
    // In a log, one line per phase is enough.
    else if (!ticker) process.stderr.write(`[bench] ${line}\n`)
  }
}

async function main (): Promise<void> {
  let options: RunOptions
  try {
    options = parseOptions(process.argv.slice(2))
  } catch (error) {
    if (error instanceof UsageError && error.help) {
      process.stdout.write(`${error.message}\n`)
      return
    }
    process.stderr.write(`${(error as Error).message}\n${error instanceof UsageError ? '' : USAGE + '\n'}`)
    process.exitCode = 2
    return
  }
  // The fleet holds a phone and an app socket per phone here; the storm one socket per phone.
  const fleetFiles = 2 * (options.fleetLadder.at(-1) ?? 0) + 512
  if (!await ensureFileLimit(Math.max(options.sessions, options.capacity, fleetFiles, options.storm + 512) + 1024)) return

  const started = performance.now()
  const startedAt = new Date()
  const secret = randomBytes(32).toString('hex')
  const app = await startBenchApp()
  const progress = progressWriter()
  const ctx: BenchContext = {
    options,
    secret,
    sign: createTokenSigner(secret),
    adminEmail: 'bench-admin@tether.sim',
    app,
    scripts: {
      tether: fileURLToPath(new URL('../server.js', import.meta.url)),
      baseline: options.compareBuild ?? fileURLToPath(new URL('./baseline.js', import.meta.url))
    },
    baselineIsTether: options.compareBuild !== null,
    progress,
    serverPin: {}
  }
  const results: BenchResults = {
    options,
    machine: machineInfo(),
    startedAt,
    elapsedMs: 0,
    load: { start: loadavg()[0] ?? Number.NaN, end: Number.NaN },
    rounds: options.rounds,
    main: { tether: [], baseline: [] },
    capacity: { tether: null, baseline: null },
    routing: null,
    cluster: { note: 'n/a (not run)' },
    lc3: null,
    phoneStream: null,
    fleet: null,
    storm: [],
    pinning: 'not run'
  }
  try {
    // One core for the server, the other for the load generator, as the fleet ladder has them: unpinned, the
    // load generator and the server's own helper threads (GC) take turns on two cores, and the 10 ms slices the
    // server's event loop then loses now and again decide its tails.
    const pinning = options.pin ? pinForFleet() : null
    ctx.serverPin = pinning?.server ?? {}
    results.pinning = pinning?.note ?? 'not pinned (--no-pin): server and load generator share the machine'
    try {
      // Rounds alternate the servers, so a burst of other work on the machine hits both alike.
      for (let round = 0; round < options.rounds; round += 1) {
        for (const name of options.only) results.main[name].push(await mainSuite(ctx, name))
      }
      if (options.routingRounds > 0 && options.only.length === 2) {
        results.routing = await routingPrice(ctx, { rounds: options.routingRounds, sessions: options.sessions, resumeCount: options.resumeCount })
      }
      if (options.capacity > 0) {
        for (const name of options.only) results.capacity[name] = await capacitySuite(ctx, name)
      }
    } finally {
      pinning?.release()
      ctx.serverPin = {}
    }
    results.cluster = options.only.includes('tether') ? await clusterSuite(ctx) : { note: 'n/a (Tether not run)' }
    if (options.fleetLadder.length > 0) {
      results.fleet = await fleetLadder(ctx, options.only, {
        ladder: options.fleetLadder,
        warmupMs: options.fleetWarmupMs,
        windowMs: options.fleetWindowMs,
        streamShare: 0.1,
        concurrency: options.concurrency,
        p99LimitMs: 100,
        nice: options.fleetNice
      })
    }
    if (options.storm > 0 && options.only.includes('tether')) {
      for (const limit of options.stormLimits) {
        results.storm.push(await restartStorm(ctx, {
          phones: options.storm, limit, timeoutMs: options.stormTimeoutMs, settleMs: 10_000, concurrency: options.concurrency, nice: options.fleetNice
        }))
      }
    }
  } finally {
    await app.close()
  }
  // With the servers gone: the event-loop figures are this process's own.
  if (options.compareBuild === null) results.lc3 = await lc3DecodeBench({}, line => progress(line))
  // Then a server of its own again, with phones streaming LC3 to apps.
  if (options.streamingPhones > 0) results.phoneStream = await phoneStreamBench({ phones: options.streamingPhones, seconds: 10 })
  results.elapsedMs = performance.now() - started
  results.load.end = loadavg()[0] ?? Number.NaN
  if (process.stderr.isTTY) process.stderr.write('\n')
  if (options.compareBuild !== null) {
    process.stdout.write(`\nThe "baseline" column below is the Tether build at ${options.compareBuild}, with Tether's settings.\n`)
  }
  process.stdout.write(`\n${formatTable(buildRows(results))}\n${formatNotes(results)}\n${results.lc3 === null ? '' : formatLc3Section(results.lc3)}`)
  if (results.routing !== null) process.stdout.write(`\n${formatRoutingPrice(results.routing)}`)
  if (results.phoneStream !== null) process.stdout.write(`\n${formatPhoneStream(results.phoneStream)}\n`)
  if (results.fleet !== null) process.stdout.write(`\n${formatFleetLadder(results.fleet)}`)
  if (results.storm.length > 0) process.stdout.write(`\n${formatStorm(results.storm)}`)
  if (options.profileDir !== null) process.stdout.write('\nCPU profiles, one per server and phase: bench/profiles/\n')
  if (options.allocProfileDir !== null) process.stdout.write('\nAllocation profiles, one per server and phase: bench/profiles/\n')
  if (options.write) {
    const file = fileURLToPath(new URL('../../bench/RESULTS.md', import.meta.url))
    appendResults(file, results)
    process.stdout.write(`\nappended to bench/RESULTS.md (${(results.elapsedMs / 1000).toFixed(0)} s)\n`)
  }
}

await main()
