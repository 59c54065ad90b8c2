/**
 * The price of Fastify on the upgrade path, measured rather than read off a
 * profile: the same connect-and-resume procedure against three servers in
 * turn, round after round: the raw baseline, the same baseline with its
 * upgrades routed through Fastify and @fastify/websocket (BASELINE_ROUTER=fastify:
 * a route, a querystring schema, the checks in a callback onRequest hook, the
 * upgrade's request let go of, as Tether's glasses route has them), and
 * Tether. The first two differ by Fastify alone, the last two by what Tether
 * does beyond the baseline (the upgrade guard, the session's bookkeeping, its
 * managers, metrics, events and logs).
 */
import type { ConnectReport } from './fleet.js'
import { gcNote } from './gc-trace.js'
import { resumeBurst, type ResumeBurst } from './resume-burst.js'
import { fmtMs } from './stats.js'
import { freePort, startServerProcess } from './server-process.js'
import { newFleet, sleep, targetSpec, type BenchContext, type TargetName } from './suites.js'

export const ROUTING_SERVERS = ['baseline', 'baseline-fastify', 'tether'] as const
export type RoutingServer = typeof ROUTING_SERVERS[number]

export interface RoutingPriceOptions {
  rounds: number
  sessions: number
  resumeCount: number
}

export interface RoutingRun {
  connect: ConnectReport
  /** Server CPU (user + system, /proc) per acked connect, ms. */
  connectCpuMs: number
  resume: ResumeBurst
}

export interface RoutingPriceResult {
  options: RoutingPriceOptions & { concurrency: number }
  runs: Record<RoutingServer, RoutingRun[]>
}

const LABELS: Record<RoutingServer, string> = {
  baseline: 'raw baseline (node:http + ws)',
  'baseline-fastify': 'baseline, upgrades through Fastify + @fastify/websocket',
  tether: 'Tether'
}

async function measure (ctx: BenchContext, server: RoutingServer, options: RoutingPriceOptions): Promise<RoutingRun> {
  const target: TargetName = server === 'tether' ? 'tether' : 'baseline'
  const extraEnv: Record<string, string> = server === 'baseline-fastify' ? { BASELINE_ROUTER: 'fastify' } : {}
  const spec = { ...targetSpec(ctx, target, await freePort(), extraEnv), ...ctx.serverPin, name: server, traceGc: true }
  const running = await startServerProcess(spec)
  const fleet = newFleet(ctx, running, 'routing')
  try {
    ctx.progress(`routing price: ${server}: connecting ${options.sessions}`)
    const connectCpu = running.cpuMs()
    const connect = await fleet.connectRange(0, options.sessions)
    const connectCpuMs = (running.cpuMs() - connectCpu) / Math.max(1, connect.acked)
    // As in the main suite: the last acks' follow-up work first.
    await sleep(1000)
    ctx.progress(`routing price: ${server}: dropping and resuming ${options.resumeCount}`)
    const resume = await resumeBurst(running, fleet, { count: options.resumeCount, shift: 0, pingMs: ctx.options.pingMs })
    return { connect, connectCpuMs, resume }
  } finally {
    fleet.halt()
    fleet.terminateAll()
    running.kill()
    await Promise.race([running.exited, sleep(5000)])
  }
}

/**
 * `rounds` rounds, each running the three servers in turn, so a burst of other work hits all alike;
 * each round starts one server later, so none is always the first (the load generator warming up).
 */
export async function routingPrice (ctx: BenchContext, options: RoutingPriceOptions): Promise<RoutingPriceResult> {
  const runs: Record<RoutingServer, RoutingRun[]> = { baseline: [], 'baseline-fastify': [], tether: [] }
  const started = performance.now()
  for (let round = 0; round < options.rounds; round += 1) {
    for (let turn = 0; turn < ROUTING_SERVERS.length; turn += 1) {
      const server = ROUTING_SERVERS[(round + turn) % ROUTING_SERVERS.length] as RoutingServer
      runs[server].push(await measure(ctx, server, options))
    }
  }
  ctx.progress(`routing price: ${((performance.now() - started) / 1000).toFixed(0)} s`)
  return { options: { ...options, concurrency: ctx.options.concurrency }, runs }
}

/** The median (the lower middle value for an even count). */
function median (values: readonly number[]): number {
  const sorted = values.filter(Number.isFinite).sort((a, b) => a - b)
  return sorted.length === 0 ? Number.NaN : sorted[Math.floor((sorted.length - 1) / 2)] as number
}

interface Figures { rate: number, connectCpu: number, ackP99: number, resumeP50: number, resumeP99: number, resumeCpu: number, failed: number }

function figures (runs: readonly RoutingRun[]): Figures {
  return {
    rate: median(runs.map(r => r.connect.ratePerSecond)),
    connectCpu: median(runs.map(r => r.connectCpuMs)),
    ackP99: median(runs.map(r => r.connect.timeToAck.p99)),
    resumeP50: median(runs.map(r => r.resume.timeToAck.p50)),
    resumeP99: median(runs.map(r => r.resume.timeToAck.p99)),
    resumeCpu: median(runs.map(r => r.resume.cpuMsPerSession)),
    failed: runs.reduce((sum, r) => sum + r.connect.failed + r.resume.failed, 0)
  }
}

const x = (value: number): string => Number.isFinite(value) ? `${value.toFixed(2)}x` : '-'
const num = (value: number, digits: number): string => Number.isFinite(value) ? value.toFixed(digits) : '-'

export function formatRoutingPrice (result: RoutingPriceResult): string {
  const o = result.options
  const f = Object.fromEntries(ROUTING_SERVERS.map(s => [s, figures(result.runs[s])])) as Record<RoutingServer, Figures>
  const raw = f.baseline
  const routed = f['baseline-fastify']
  const row = (s: RoutingServer): string => {
    const v = f[s]
    return `| ${LABELS[s]} | ${num(v.rate, 0)} | ${x(v.rate / raw.rate)} | ${num(v.connectCpu, 3)} | ${x(v.connectCpu / raw.connectCpu)} | ` +
      `${fmtMs(v.ackP99)} | ${fmtMs(v.resumeP50)} | ${fmtMs(v.resumeP99)} | ${x(v.resumeP99 / raw.resumeP99)} | ${num(v.resumeCpu, 3)} | ` +
      `${x(v.resumeCpu / raw.resumeCpu)} | ${v.failed} |`
  }
  const rounds = (s: RoutingServer): string => result.runs[s]
    .map(r => `${num(r.connect.ratePerSecond, 0)} acks/s, resume p99 ${fmtMs(r.resume.timeToAck.p99)} ms${r.resume.afterPingTick ? ' (after a ping tick)' : ''}${gcNote(r.resume.gc)}`).join('; ')
  return [
    '### The price of Fastify on the upgrade path (bench/routing-price.ts)',
    '',
    `${o.sessions} connects (${o.concurrency} in flight), then ${o.resumeCount} dropped and resumed (right after the server's ` +
      'ping tick where it pings every socket at once), against each server in turn; ' +
      `${o.rounds} round(s), medians shown. The second server is the first with its upgrades routed through Fastify and ` +
      '@fastify/websocket (a route with a querystring schema, the checks in a callback onRequest hook, the upgrade\'s request let go ' +
      'of, as Tether\'s glasses route has them): the two differ by Fastify alone.',
    '',
    '| server | connect rate (acks/s) | vs raw | server CPU per connect (ms) | vs raw | time to ack p99 (ms) | resume p50 (ms) | resume p99 (ms) | vs raw | server CPU per resume (ms) | vs raw | failed |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
    ...ROUTING_SERVERS.map(row),
    '',
    `Fastify alone: connect rate ${x(routed.rate / raw.rate)}, CPU per connect ${x(routed.connectCpu / raw.connectCpu)}, ` +
      `resume p99 ${x(routed.resumeP99 / raw.resumeP99)} of the raw server's. ` +
      `Tether against the Fastify-routed baseline: connect rate ${x(f.tether.rate / routed.rate)}, ` +
      `CPU per connect ${x(f.tether.connectCpu / routed.connectCpu)}, resume p99 ${x(f.tether.resumeP99 / routed.resumeP99)}.`,
    '',
    ...ROUTING_SERVERS.map(s => `- ${s} rounds: ${rounds(s)}`),
    ''
  ].join('\n')
}
