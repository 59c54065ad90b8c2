/**
 * One configuration, start to end: its own Redis (one server or a Redis
 * Cluster), one design's nodes on it, the ramp, an idle window, a churn window,
 * the admin list, a node's death; then everything it started is ended.
 */
import { loadavg } from 'node:os'
import { performance } from 'node:perf_hooks'
import type { AdminListFigure, DesignName, DesignRun, NodeSettings, SimNode } from './design.js'
import { failover, type FailoverFigures } from './failover.js'
import { startLegacyDesign } from './legacy-leases.js'
import { Churn, ramp, type ChurnFigures, type LoadSettings, type RampFigures } from './load.js'
import { ProcessSampler, RedisSampler, redisWindow, type ProcessWindow, type RedisWindow } from './measure.js'
import { startNewDesign } from './new-design.js'
import { startCluster, startSingle, type RedisMode } from './redis-processes.js'

export interface ScenarioOptions extends LoadSettings {
  nodes: number
  leaseMs: number
  /** The measured churn window. */
  windowMs: number
  /** A window with no churn at all before it (0: none): what idle sessions cost. */
  idleMs: number
  handoverTimeoutMs: number
  gracePeriodMs: number
  countersWriteMs: number
  shards: number
  /** Nodes start this far apart (see NodeSettings.staggerMs). */
  staggerMs: number
  /** How long the failover measurement waits before it reports "not within". */
  failoverLimitMs: number
}

export interface WindowFigures {
  ms: number
  redis: RedisWindow
  simulator: ProcessWindow
  /** The machine's 1-minute load average at the start and the end: the simulator and Redis share its cores (with anything else running). */
  loadAverage: { start: number, end: number }
  design: Record<string, unknown>
}

export interface ScenarioResult {
  redis: RedisMode
  design: DesignName
  sessions: number
  ramp: RampFigures
  idle: WindowFigures | null
  churn: WindowFigures & { load: ChurnFigures }
  /** Either may fail (a Redis command timing out under the load): the error is the figure then. */
  adminList: AdminListFigure | { error: string }
  failover: FailoverFigures | { error: string }
}

const PROGRESS_MS = 5000

const delay = async (ms: number): Promise<void> => { await new Promise(resolve => setTimeout(resolve, ms)) }

const failedWith = (error: unknown): { error: string } => ({ error: `${(error as Error).name}: ${(error as Error).message}` })

/** What a window runs besides the idle majority. */
interface WindowLoad { start: () => void, stop: () => Promise<void>, readonly pending: number }

/** Measure `run` over `ms` while `during` runs (started before the first sample, stopped after the last). */
async function measuredWindow (run: DesignRun, sampler: RedisSampler, ms: number, during: WindowLoad | null, say: (line: string) => void): Promise<WindowFigures> {
  const simulator = new ProcessSampler()
  const loadAtStart = loadavg()[0] ?? NaN
  run.windowStarted()
  simulator.start()
  const from = await sampler.sample()
  const started = performance.now()
  during?.start()
  // A line every few seconds: what Redis did since the last one, and what the design did so far.
  let last = from
  let lastAt = started
  const ticker = setInterval(() => {
    void sampler.sample().then(now => {
      const at = performance.now()
      const figures = redisWindow(last, now, at - lastAt)
      last = now
      lastAt = at
      say(`  ${((at - started) / 1000).toFixed(0)} s: Redis ${figures.commandsPerS.toFixed(0)} commands/s, CPU ${figures.cpuPercent.toFixed(0)}%; ` +
        `${run.status()}; ${during?.pending ?? 0} in flight; load ${(loadavg()[0] ?? NaN).toFixed(1)}`)
    }, () => {})
  }, PROGRESS_MS)
  await delay(ms)
  clearInterval(ticker)
  const to = await sampler.sample()
  const elapsed = performance.now() - started
  const own = simulator.end()
  const design = run.windowEnded(elapsed)
  await during?.stop()
  return { ms: elapsed, redis: redisWindow(from, to, elapsed), simulator: own, loadAverage: { start: loadAtStart, end: loadavg()[0] ?? NaN }, design }
}

export async function runScenario (mode: RedisMode, design: DesignName, options: ScenarioOptions, progress: (line: string) => void): Promise<ScenarioResult> {
  const say = (line: string): void => { progress(`[${mode}/${design}] ${line}`) }
  const redis = mode === 'single' ? await startSingle() : await startCluster(options.shards)
  say(`redis up on ${redis.masters.map(m => m.port).join(',')}`)
  try {
    const settings: NodeSettings = {
      redis,
      leaseMs: options.leaseMs,
      handoverTimeoutMs: options.handoverTimeoutMs,
      gracePeriodMs: options.gracePeriodMs,
      countersWriteMs: options.countersWriteMs,
      staggerMs: options.staggerMs
    }
    const nodeIds = Array.from({ length: options.nodes }, (_, i) => `node-${i}`)
    const run = design === 'new' ? await startNewDesign(nodeIds, settings) : await startLegacyDesign(nodeIds, settings)
    const sampler = await RedisSampler.open(redis.masters)
    try {
      run.windowStarted()
      const rampFigures = await ramp(run.nodes, options, say)
      rampFigures.design = run.windowEnded(rampFigures.ms)
      say(`ramp done: ${rampFigures.sessions} sessions in ${(rampFigures.ms / 1000).toFixed(1)} s; settling`)
      // The ramp's last writes land and a full lease passes before anything is measured.
      await delay(options.leaseMs)
      let idle: WindowFigures | null = null
      if (options.idleMs > 0) {
        say(`idle window ${options.idleMs} ms`)
        idle = await measuredWindow(run, sampler, options.idleMs, null, say)
      }
      say(`churn window ${options.windowMs} ms`)
      const churn = new Churn(run.nodes, options, rampFigures.sessions)
      const churned = await measuredWindow(run, sampler, options.windowMs, churn, say)
      const load = churn.figures(churned.ms)
      await delay(1000)
      say('admin list')
      const adminList = await run.adminList(run.nodes[0] as SimNode).catch(failedWith)
      say('failover')
      const failed = await failover(run, options.failoverLimitMs).catch(failedWith)
      return { redis: mode, design, sessions: rampFigures.sessions, ramp: rampFigures, idle, churn: { ...churned, load }, adminList, failover: failed }
    } finally {
      sampler.close()
      const stopping = performance.now()
      await run.stop()
      say(`nodes stopped in ${((performance.now() - stopping) / 1000).toFixed(1)} s`)
    }
  } finally {
    const stopping = performance.now()
    await redis.stop()
    say(`redis stopped in ${((performance.now() - stopping) / 1000).toFixed(1)} s`)
  }
}
