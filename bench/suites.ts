/**
 * The benchmark's phases against one server at a time. `mainSuite`: audio
 * relay, memory per idle session, connect rate, `GET /sessions`, resume, drain.
 * `capacitySuite`: the 15,000-session hold with heartbeats on.
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import type { Pinning } from './affinity.js'
import { connectBaselineRelay, connectTetherRelay, measureRelay, type RelayLink, type RelayResult } from './audio-relay.js'
import type { BenchApp } from './bench-app.js'
import { Fleet, type ConnectReport } from './fleet.js'
import { collectGarbage, scrapeMemory, startAllocationProfile, startCpuProfile, timeGets, type MemorySample } from './probes.js'
import { freePort, startServerProcess, threadCpuMs, type ServerProcess, type ServerSpec } from './server-process.js'
import { resumeBurst, type ResumeBurst } from './resume-burst.js'
import type { LatencySummary } from './stats.js'
import { simEmail, type TokenSigner } from './tokens.js'

export type TargetName = 'tether' | 'baseline'

export interface BenchOptions {
  /** Idle sessions for memory, `GET /sessions` and drain. */
  sessions: number
  /** Sessions held with heartbeats on in the capacity phase; 0 skips it. */
  capacity: number
  concurrency: number
  resumeCount: number
  pingMs: number
  holdMs: number
  relayMs: number
  relayWindow: number
  relayFrameBytes: number
  listRequests: number
  /** Extra node flags for every server the bench starts (e.g. --no-opt). */
  serverNodeFlags: string[]
  /** Where to write one CPU profile per server and phase (taken over the inspector); null: no profiling. */
  profileDir: string | null
  /** Where to write one allocation profile per server and phase instead; null: none. */
  allocProfileDir: string | null
  cluster: boolean
  /** Use this Redis instead of starting one. */
  redisUrl: string | null
}

export interface BenchContext {
  options: BenchOptions
  secret: string
  sign: TokenSigner
  adminEmail: string
  app: BenchApp
  /** The compiled entry points. */
  scripts: Record<TargetName, string>
  /** A progress line (overwritten on a terminal); `ticker` lines repeat within a phase and are left out of logs. */
  progress: (line: string, ticker?: boolean) => void
  /**
   * Where the single-server phases (main suite, routing section, capacity) run their server: core 0, with the
   * load generator on core 1, while run.ts holds that pinning; empty when not pinned.
   */
  serverPin: Pinning['server']
  /** `--compare-build`: the "baseline" slot runs another Tether build, which needs Tether's settings and relay. */
  baselineIsTether?: boolean
}

export interface MemoryResult {
  before: MemorySample
  after: MemorySample
  sessions: number
  rssPerSession: number
  heapPerSession: number
}

export interface DrainResult {
  sessions: number
  /** SIGTERM to the last glasses socket closed, as the clients saw it. */
  allClosedMs: number
  /** SIGTERM to process exit. */
  exitMs: number
  exitCode: number | null
  closed1001: number
  allClosed: boolean
}

export type ListResult = LatencySummary & { status: number, bytes: number, firstMs: number }

/** Server CPU time (user + system) per unit of work, from /proc; NaN elsewhere. */
export interface CpuResult {
  connectMsPerSession: number
  /** The part of it on the main thread (the event loop); the rest is V8's GC helpers and other threads. */
  connectMainMsPerSession: number
  relayUsPerFrame: number
  listMsPerRequest: number
}

export interface MainResult {
  cpu: CpuResult
  connect: ConnectReport
  connectFailures: Record<string, number>
  memory: MemoryResult
  list100: ListResult
  list1000: ListResult
  /** The first burst of resumes in the server's life. */
  resume: ResumeBurst
  /** A later burst, of other sessions. */
  laterResume: ResumeBurst
  relay: RelayResult | null
  relayError: string | null
  drain: DrainResult
}

export interface CapacityResult {
  target: number
  connect: ConnectReport
  failures: Record<string, number>
  /** Acked sockets the server ended during the hold (a heartbeat failure would show here). */
  unexpectedCloses: number
  closeCodes: Record<string, number>
  openAfterHold: number
  heldMs: number
  memory: MemorySample
  /** Server CPU while holding the sessions, in % of one core. */
  holdCpuPercent: number
  drain: DrainResult
}

export const ADMIN_SUBJECT = 'bench-admin'
export const sleep = async (ms: number): Promise<void> => await new Promise(resolve => setTimeout(resolve, ms))

/** Whether the server in this slot is a Tether build (the baseline's slot is one under `--compare-build`). */
function isTether (ctx: BenchContext, name: TargetName): boolean {
  return name === 'tether' || ctx.baselineIsTether === true
}

export function targetSpec (ctx: BenchContext, name: TargetName, port: number, extraEnv: Record<string, string> = {}): ServerSpec {
  const { options } = ctx
  const env: Record<string, string> = {
    PORT: String(port),
    HOST: '127.0.0.1',
    AUGMENTOS_AUTH_JWT_SECRET: ctx.secret,
    ADMIN_EMAILS: ctx.adminEmail,
    LOG_LEVEL: 'warn',
    PING_INTERVAL_MS: String(options.pingMs),
    SILENCE_TIMEOUT_MS: String(3 * options.pingMs),
    GRACE_PERIOD_MS: '60000',
    SHUTDOWN_TIMEOUT_MS: '10000',
    NODE_ID: `bench-${name}`,
    // Single node unless the cluster phase says otherwise, whatever the caller's shell has.
    REDIS_URL: '',
    ...(isTether(ctx, name)
      ? {
          APPS_FILE: ctx.app.catalogueFile,
          // Every virtual glasses connects from 127.0.0.1: per-address limits would refuse the fleet.
          UPGRADE_RATE_LIMIT: '100000000',
          USER_CONNECTS_PER_MINUTE: '10000'
        }
      : {}),
    ...extraEnv
  }
  return {
    name,
    script: ctx.scripts[name],
    port,
    env,
    openFiles: Math.max(options.sessions, options.capacity) + 2048,
    nodeFlags: options.serverNodeFlags
  }
}

export function newFleet (ctx: BenchContext, server: ServerProcess, prefix: string, concurrency = ctx.options.concurrency): Fleet {
  return new Fleet({
    url: `${server.wsUrl}/glasses-ws`,
    concurrency,
    handshakeTimeoutMs: 30_000,
    tokenFor: index => ctx.sign(simEmail(prefix, index), `${prefix}-${index}`)
  })
}

/** Connect with a progress line; the line says how far the fleet got. */
async function connectWithProgress (ctx: BenchContext, label: string, fleet: Fleet, from: number, to: number): Promise<ConnectReport> {
  const started = performance.now()
  const ticker = setInterval(() => {
    ctx.progress(`${label}: ${fleet.open}/${to - from} acked, ${fleet.stats.failed} failed, ${((performance.now() - started) / 1000).toFixed(1)} s`, true)
  }, 250)
  try {
    return await fleet.connectRange(from, to)
  } finally {
    clearInterval(ticker)
  }
}

async function withTimeout<T> (promise: Promise<T>, ms: number, fallback: T): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<T>(resolve => { timer = setTimeout(() => resolve(fallback), ms) })
  try {
    return await Promise.race([promise, timeout])
  } finally {
    clearTimeout(timer)
  }
}

/** SIGTERM the server and time how long until every glasses socket is closed and the process is gone. */
async function drain (server: ServerProcess, fleet: Fleet, sessions: number): Promise<DrainResult> {
  const closed1001Before = fleet.stats.closeCodes['1001'] ?? 0
  const signalled = server.terminate()
  const allClosed = await fleet.allClosed(20_000)
  const exit = await withTimeout(server.exited, 20_000, { code: null, signal: null, at: Number.NaN })
  return {
    sessions,
    allClosedMs: Math.max(0, fleet.lastClose - signalled),
    exitMs: exit.at - signalled,
    exitCode: exit.code,
    closed1001: (fleet.stats.closeCodes['1001'] ?? 0) - closed1001Before,
    allClosed
  }
}

/** Run one phase, CPU- or allocation-profiled when the options ask for it. */
async function phase<T> (ctx: BenchContext, server: ServerProcess, label: string, work: () => Promise<T>): Promise<T> {
  const inspector = server.inspectorUrl()
  const { profileDir, allocProfileDir } = ctx.options
  const profile = profileDir !== null
    ? { dir: profileDir, file: `${server.name}-${label}.cpuprofile`, start: startCpuProfile }
    : allocProfileDir !== null
      ? { dir: allocProfileDir, file: `${server.name}-${label}.heapprofile`, start: startAllocationProfile }
      : null
  if (profile === null || inspector === null) return await work()
  const stop = await profile.start(inspector)
  try {
    return await work()
  } finally {
    mkdirSync(profile.dir, { recursive: true })
    writeFileSync(join(profile.dir, profile.file), JSON.stringify(await stop()))
  }
}

async function measuredMemory (server: ServerProcess): Promise<MemorySample> {
  const inspector = server.inspectorUrl()
  if (inspector !== null) await collectGarbage(inspector)
  return await scrapeMemory(server.httpUrl)
}

export async function mainSuite (ctx: BenchContext, name: TargetName): Promise<MainResult> {
  const { options } = ctx
  const server = await startServerProcess({ ...targetSpec(ctx, name, await freePort()), ...ctx.serverPin, traceGc: true })
  let link: RelayLink | null = null
  const fleet = newFleet(ctx, server, 'bench')
  try {
    ctx.progress(`${name}: audio relay for ${options.relayMs} ms`)
    let relay: RelayResult | null = null
    let relayError: string | null = null
    let relayUsPerFrame = Number.NaN
    const relayUser = 'bench-relay@tether.sim'
    try {
      const connectRelay = isTether(ctx, name) ? connectTetherRelay : connectBaselineRelay
      link = await connectRelay(server.wsUrl, ctx.sign(relayUser, 'bench-relay'), relayUser, ctx.app)
      const cpuBefore = server.cpuMs()
      const relayLink = link
      relay = await phase(ctx, server, 'relay', async () => await measureRelay(relayLink, {
        durationMs: options.relayMs, warmupMs: 1000, frameBytes: options.relayFrameBytes, window: options.relayWindow
      }))
      relayUsPerFrame = (server.cpuMs() - cpuBefore) * 1000 / Math.max(1, relay.allFrames)
    } catch (error) {
      relayError = (error as Error).message
    }

    ctx.progress(`${name}: memory before the fleet`)
    const before = await measuredMemory(server)
    const connectCpu = server.cpuMs()
    const connectMain = threadCpuMs(server.pid).main
    ctx.progress(`${name}: connecting ${options.sessions} sessions`)
    const connect = await phase(ctx, server, 'connect', async () => await connectWithProgress(ctx, `${name}: connecting`, fleet, 0, options.sessions))
    const connectMsPerSession = (server.cpuMs() - connectCpu) / Math.max(1, connect.acked)
    const connectMainMsPerSession = (threadCpuMs(server.pid).main - connectMain) / Math.max(1, connect.acked)
    // Let the last acks' follow-up work (timers armed, logs) finish before measuring.
    await sleep(1000)
    ctx.progress(`${name}: memory at ${fleet.open} idle sessions`)
    const after = await measuredMemory(server)
    const held = Math.max(1, fleet.open)
    const memory: MemoryResult = {
      before,
      after,
      sessions: fleet.open,
      rssPerSession: (after.rssBytes - before.rssBytes) / held,
      heapPerSession: (after.heapUsedBytes - before.heapUsedBytes) / held
    }

    ctx.progress(`${name}: GET /sessions x${options.listRequests}`)
    const headers = { authorization: `Bearer ${ctx.sign(ctx.adminEmail, ADMIN_SUBJECT)}` }
    const listCpu = server.cpuMs()
    const list100 = await phase(ctx, server, 'list', async () => await timeGets(`${server.httpUrl}/sessions`, headers, options.listRequests))
    const listMsPerRequest = (server.cpuMs() - listCpu) / (options.listRequests + 1)
    const list1000 = await timeGets(`${server.httpUrl}/sessions?limit=1000`, headers, options.listRequests)

    // Two bursts: the first of the process's life, right after the memory measurement's forced collections (as
    // every run before ccc778a measured it), then one of other sessions, once the resume path has run.
    const burst = (shift: number, label: string): Promise<ResumeBurst> =>
      resumeBurst(server, fleet, { count: options.resumeCount, shift, pingMs: options.pingMs },
        async work => await phase(ctx, server, label, work))
    ctx.progress(`${name}: dropping and resuming ${options.resumeCount}`)
    const resume = await burst(0, 'resume')
    ctx.progress(`${name}: dropping and resuming ${options.resumeCount} others`)
    const laterResume = await burst(0.5, 'resume-later')

    ctx.progress(`${name}: draining ${fleet.open} sessions`)
    const drainResult = await drain(server, fleet, fleet.open + (link === null ? 0 : 1))
    return {
      cpu: { connectMsPerSession, connectMainMsPerSession, relayUsPerFrame, listMsPerRequest },
      connect,
      connectFailures: { ...fleet.stats.failures },
      memory,
      list100,
      list1000,
      resume,
      laterResume,
      relay,
      relayError,
      drain: drainResult
    }
  } finally {
    fleet.halt()
    fleet.terminateAll()
    link?.close()
    server.kill()
    await withTimeout(server.exited, 5000, null)
  }
}

export async function capacitySuite (ctx: BenchContext, name: TargetName): Promise<CapacityResult> {
  const { options } = ctx
  const server = await startServerProcess({ ...targetSpec(ctx, name, await freePort()), ...ctx.serverPin })
  const fleet = newFleet(ctx, server, 'hold')
  try {
    ctx.progress(`${name}: capacity, connecting ${options.capacity} sessions`)
    const connect = await phase(ctx, server, 'capacity-connect', async () =>
      await connectWithProgress(ctx, `${name}: capacity, connecting`, fleet, 0, options.capacity))
    ctx.progress(`${name}: holding ${fleet.open} sessions with heartbeats for ${(options.holdMs / 1000).toFixed(0)} s`)
    const holdStarted = performance.now()
    const holdCpu = server.cpuMs()
    while (performance.now() - holdStarted < options.holdMs) {
      ctx.progress(`${name}: holding ${fleet.open} sessions with heartbeats, ` +
        `${((performance.now() - holdStarted) / 1000).toFixed(0)}/${(options.holdMs / 1000).toFixed(0)} s, ` +
        `${fleet.stats.unexpectedCloses} closed by the server`, true)
      await sleep(Math.min(1000, options.holdMs))
    }
    const heldMs = performance.now() - holdStarted
    const holdCpuPercent = (server.cpuMs() - holdCpu) / heldMs * 100
    const openAfterHold = fleet.open
    const unexpectedCloses = fleet.stats.unexpectedCloses
    const closeCodes = { ...fleet.stats.closeCodes }
    const memory = await scrapeMemory(server.httpUrl)
    ctx.progress(`${name}: draining ${fleet.open} sessions`)
    const drainResult = await drain(server, fleet, fleet.open)
    return {
      target: options.capacity,
      connect,
      failures: { ...fleet.stats.failures },
      unexpectedCloses,
      closeCodes,
      openAfterHold,
      heldMs,
      memory,
      holdCpuPercent,
      drain: drainResult
    }
  } finally {
    fleet.halt()
    fleet.terminateAll()
    server.kill()
    await withTimeout(server.exited, 5000, null)
  }
}
