/**
 * The ownership layer under a cluster's load, with no sockets and no HTTP:
 * `npm run simulate:ownership -- [options]`. N simulated nodes holding M
 * sessions each, in this one process, against a redis-server and a Redis
 * Cluster the tool starts itself, for the new design (cluster/redis-ownership.ts)
 * and, under the same load, the per-session leases it replaced
 * (bench/ownership/legacy-leases.ts). Prints a table, or JSON with --json.
 */
import { spawn } from 'node:child_process'
import { pathToFileURL } from 'node:url'
import { parseArgs } from 'node:util'
import { getHeapStatistics } from 'node:v8'
import type { DesignName } from './ownership/design.js'
import type { RedisMode } from './ownership/redis-processes.js'
import { formatTable } from './ownership/report.js'
import { runScenario, type ScenarioOptions, type ScenarioResult } from './ownership/scenario.js'

export interface OwnershipSimOptions extends ScenarioOptions {
  redis: RedisMode[]
  designs: DesignName[]
  json: boolean
}

class UsageError extends Error {
  override readonly name = 'UsageError'
  constructor (message: string, readonly help = false) { super(message) }
}

const USAGE = `usage: npm run simulate:ownership -- [options]
  --nodes N                  simulated nodes (default 10)
  --sessions-per-node N      sessions each node holds after the ramp (default 100000)
  --lease-ms MS              LEASE_TTL_MS (default 3000)
  --window-ms MS             the measured churn window (default 30000)
  --idle-ms MS               an idle window measured before it, 0 for none (default: a third of --window-ms)
  --churn-per-s F            fraction of sessions dropping to grace per second, each back after --away-ms;
                             per drop also 0.2 users end, 0.2 new ones connect, 0.05 move node (default 0.002)
  --away-ms MS               time in grace before a dropped session resumes (default 2000)
  --busy-fraction F          sessions streaming audio, whose counters move (default 0.05)
  --ramp-in-flight N         claims in flight during the ramp (default 256)
  --handover-timeout-ms MS   HANDOVER_TIMEOUT_MS, also the Redis command timeout (default 2000)
  --grace-period-ms MS       GRACE_PERIOD_MS (default 60000)
  --counters-write-ms MS     COUNTERS_WRITE_MS (default 30000)
  --shards N                 masters of the Redis Cluster (default 3)
  --stagger-ms MS            nodes start this far apart, so their timers do not all fire in the same
                             millisecond of this one process (default: the shorter of --counters-write-ms
                             and --window-ms, divided by --nodes)
  --failover-limit-ms MS     how long the failover figures may take (default 120000)
  --redis single|cluster|both   (default both)
  --design new|old|both         (default both)
  --json                     print the results as JSON`

function numberOption (value: string | undefined, name: string, fallback: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (value === undefined) return fallback
  const parsed = Number(value)
  if (!Number.isFinite(parsed) || parsed < min || parsed > max) throw new UsageError(`--${name} must be a number from ${min} to ${max}`)
  return parsed
}

function choice<T extends string> (value: string | undefined, name: string, options: readonly T[]): T[] {
  if (value === undefined || value === 'both') return [...options]
  if (!(options as readonly string[]).includes(value)) throw new UsageError(`--${name} must be ${options.join(', ')} or both`)
  return [value as T]
}

export function parseOwnershipSimArgs (argv: readonly string[]): OwnershipSimOptions {
  const names = ['nodes', 'sessions-per-node', 'lease-ms', 'window-ms', 'idle-ms', 'churn-per-s', 'away-ms', 'busy-fraction',
    'ramp-in-flight', 'handover-timeout-ms', 'grace-period-ms', 'counters-write-ms', 'shards', 'stagger-ms', 'failover-limit-ms', 'redis', 'design'] as const
  let values: Partial<Record<typeof names[number], string>> & { json?: boolean, help?: boolean }
  try {
    ({ values } = parseArgs({
      args: [...argv],
      strict: true,
      options: {
        ...Object.fromEntries(names.map(name => [name, { type: 'string' as const }])),
        json: { type: 'boolean' },
        help: { type: 'boolean' }
      }
    }) as { values: typeof values })
  } catch (error) {
    throw new UsageError(`${(error as Error).message}\n${USAGE}`)
  }
  if (values.help === true) throw new UsageError(USAGE, true)
  const leaseMs = numberOption(values['lease-ms'], 'lease-ms', 3000, 300)
  const windowMs = numberOption(values['window-ms'], 'window-ms', 30_000, 1000)
  const nodes = numberOption(values.nodes, 'nodes', 10, 2, 100)
  const countersWriteMs = numberOption(values['counters-write-ms'], 'counters-write-ms', 30_000, 100)
  return {
    nodes,
    sessionsPerNode: numberOption(values['sessions-per-node'], 'sessions-per-node', 100_000, 10, 1_000_000),
    leaseMs,
    windowMs,
    idleMs: numberOption(values['idle-ms'], 'idle-ms', Math.round(windowMs / 3), 0),
    churnPerS: numberOption(values['churn-per-s'], 'churn-per-s', 0.002, 0, 1),
    awayMs: numberOption(values['away-ms'], 'away-ms', 2000, 0),
    busyFraction: numberOption(values['busy-fraction'], 'busy-fraction', 0.05, 0, 1),
    rampInFlight: numberOption(values['ramp-in-flight'], 'ramp-in-flight', 256, 1, 100_000),
    handoverTimeoutMs: numberOption(values['handover-timeout-ms'], 'handover-timeout-ms', 2000, 50),
    gracePeriodMs: numberOption(values['grace-period-ms'], 'grace-period-ms', 60_000, 1000),
    countersWriteMs,
    staggerMs: numberOption(values['stagger-ms'], 'stagger-ms', Math.round(Math.min(countersWriteMs, windowMs) / nodes), 0),
    shards: numberOption(values.shards, 'shards', 3, 1, 16),
    failoverLimitMs: numberOption(values['failover-limit-ms'], 'failover-limit-ms', 120_000, leaseMs),
    redis: choice(values.redis, 'redis', ['single', 'cluster'] as const),
    designs: choice(values.design, 'design', ['new', 'old'] as const),
    json: values.json === true
  }
}

function describeRun (options: OwnershipSimOptions): string {
  return `${options.nodes} nodes x ${options.sessionsPerNode} sessions, lease ${options.leaseMs} ms, idle window ${options.idleMs} ms, ` +
    `churn window ${options.windowMs} ms at ${options.churnPerS}/s (away ${options.awayMs} ms), busy ${options.busyFraction}, ` +
    `ramp ${options.rampInFlight} in flight, handover timeout ${options.handoverTimeoutMs} ms, grace ${options.gracePeriodMs} ms, ` +
    `counters every ${options.countersWriteMs} ms, nodes started ${options.staggerMs} ms apart, cluster of ${options.shards} masters`
}

/**
 * A million sessions and what ten nodes keep for them fit in about a GiB, but a burst (every session of a
 * node written at once) briefly holds several: below this heap limit the tool runs itself again with
 * room, and a larger young generation so that short-lived claim garbage is not promoted.
 */
const HEAP_MB = 12_288
const NODE_FLAGS = [`--max-old-space-size=${HEAP_MB}`, '--max-semi-space-size=64']

async function withRoom (): Promise<boolean> {
  if (getHeapStatistics().heap_size_limit >= HEAP_MB * 1024 * 1024 * 0.9) return false
  const child = spawn(process.execPath, [...NODE_FLAGS, ...process.execArgv, ...process.argv.slice(1)], { stdio: 'inherit' })
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => child.kill(signal))
  const [code] = await new Promise<[number | null]>(resolve => child.on('exit', code => resolve([code])))
  process.exitCode = code ?? 1
  return true
}

async function main (): Promise<void> {
  if (await withRoom()) return
  let options: OwnershipSimOptions
  try {
    options = parseOwnershipSimArgs(process.argv.slice(2))
  } catch (error) {
    if (!(error instanceof UsageError)) throw error
    ;(error.help ? process.stdout : process.stderr).write(`${error.message}\n`)
    process.exitCode = error.help ? 0 : 2
    return
  }
  const started = Date.now()
  const progress = (line: string): void => { process.stderr.write(`[${((Date.now() - started) / 1000).toFixed(0)}s] ${line}\n`) }
  progress(describeRun(options))
  const results: ScenarioResult[] = []
  for (const redis of options.redis) {
    for (const design of options.designs) results.push(await runScenario(redis, design, options, progress))
  }
  process.stdout.write(options.json
    ? `${JSON.stringify({ options, results })}\n`
    : `${describeRun(options)}\n\n${formatTable(results)}`)
  // Every connection and timer was ended; never hang a CI job on one that was not.
  setTimeout(() => process.exit(), 2000).unref()
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) await main()
