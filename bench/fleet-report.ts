/**
 * The phone fleet's ladder (bench/fleet-ladder.ts) and the restart storm
 * (bench/restart-storm.ts) as markdown sections, printed by `npm run bench`
 * and appended to bench/RESULTS.md with the rest.
 */
import type { FleetLadderResult, FleetStep } from './fleet-ladder.js'
import type { StormResult } from './restart-storm.js'
import { fmtMs } from './stats.js'

const num = (value: number, digits = 0): string => Number.isFinite(value) ? value.toFixed(digits) : '-'
const counts = (record: Record<string, number>): string => {
  const parts = Object.entries(record).filter(([, v]) => v !== 0).map(([k, v]) => `${k}: ${v}`)
  return parts.length === 0 ? 'none' : parts.join(', ')
}

function stepRow (s: FleetStep): string {
  // ms of server CPU per second per phone: % of a core x 10 / phones.
  const perPhone = s.serverCpuPercent * 10 / s.phones
  return `| ${s.target} | ${s.phones} | ${s.streaming} | ${s.open} | ${num(s.serverCpuPercent, 1)} (${num(s.mainThreadCpuPercent, 1)}) | ${num(perPhone, 3)} | ` +
    `${fmtMs(s.pingPong.p99)} | ${fmtMs(s.buttonDisplay.p99)} | ${fmtMs(s.tickDisplay.p99)} | ${fmtMs(s.audio.p99)} | ` +
    `${num(s.audioDelivered * 100)}% | ${fmtMs(s.serverLoop.p99)} | ${fmtMs(s.loadLoopP99)} | ${num(s.rssBytes / 2 ** 20, 1)} | ` +
    `${num(s.rssPerPhoneBytes / 1024, 1)} | ${s.reconnects.missed_pong} | ${num(s.loadAverage, 1)} | ${s.holds ? 'yes' : `no: ${s.broke.join('; ')}`}` +
    `${!s.holds && s.stalled ? ' (load generator stalled: inconclusive)' : ''}` +
    `${s.retried === undefined ? '' : ` (try ${s.retried.length + 1}; earlier tries broke on: ${s.retried.join(' / ')})`} |`
}

/** Tether's steps then the baseline's, each by size (the half-way step runs after the break). */
function ordered (r: FleetLadderResult): FleetStep[] {
  const bySize = (steps: FleetStep[]): FleetStep[] => [...steps].sort((a, b) => a.phones - b.phones)
  return [...bySize(r.steps.tether), ...bySize(r.steps.baseline)]
}

export function formatFleetLadder (r: FleetLadderResult): string {
  const o = r.options
  const capacity = (name: 'tether' | 'baseline'): string => {
    if (r.steps[name].length === 0) return 'not run'
    const cap = r.capacity[name]
    const top = r.steps[name].at(-1)
    const topped = top !== undefined && top.holds && top.phones === o.ladder.at(-1) ? ' (the top of the ladder: it may hold more)' : ''
    return cap === null ? `below ${o.ladder[0] ?? '?'} phones` : `${cap} phones${topped}`
  }
  const t = r.capacity.tether
  const b = r.capacity.baseline
  // Where the CPU alone would run out: the largest step's phones scaled to a whole core (linear, so an upper bound).
  const ceiling = (name: 'tether' | 'baseline'): string => {
    const top = [...r.steps[name]].sort((x, y) => y.phones - x.phones)[0]
    if (top === undefined || !(top.serverCpuPercent > 0)) return '-'
    return `${num(top.phones * 100 / top.serverCpuPercent)} phones (from ${top.phones} at ${num(top.serverCpuPercent, 1)}% of a core)`
  }
  const lines = [
    '### Phone fleet (bench/fleet-ladder.ts)',
    '',
    'Each phone: JSON ping every 5 s (no pong by the next: reconnect), the REST calls at open and ack, a button press every 5 s ' +
      `answered by the app's display, a display from its app every second; ${num(o.streamShare * 100)}% stream LC3 (40-byte frames, ` +
      '100 frames/s in 10-frame messages) to an app subscribed to audio_chunk. One app socket per session, all served by the bench process. ' +
      `${o.warmupMs / 1000} s warm-up, then ${o.windowMs / 1000} s measured per step; a step holds with every phone connected, ` +
      `no missed-pong reconnect and every p99 under ${o.p99LimitMs} ms. ${r.pinning}.`,
    '',
    `**Capacity of one core: Tether ${capacity('tether')}, baseline ${capacity('baseline')}` +
      (t !== null && b !== null ? ` (Tether/baseline ${(t / b).toFixed(2)}x, to the ladder's resolution)` : '') + '.**',
    '',
    `Where the CPU alone would run out (server CPU scaled linearly to 100% of the core; ignores latency): Tether ${ceiling('tether')}, ` +
      `baseline ${ceiling('baseline')}. When a step breaks well below its CPU ceiling, the p99s were lost to scheduling, not to work: ` +
      'see the load average column.',
    '',
    '| server | phones | streaming | connected | server CPU, % of a core (main thread) | CPU per phone (ms/s) | ping->pong p99 (ms) | button->display p99 (ms) | ' +
      'app display->phone p99 (ms) | LC3->app p99 (ms) | audio delivered | server loop delay p99 (ms) | load generator loop p99 (ms) | RSS (MiB) | ' +
      'RSS per phone (KiB) | missed-pong reconnects | machine load average | holds |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|',
    ...ordered(r).map(stepRow),
    '',
    'RSS per phone counts the phone\'s session and its app\'s socket. Other counts per step:',
    ...ordered(r).map(s =>
      `- ${s.target} ${s.phones}: connected in ${num(s.connectMs / 1000, 1)} s; reconnects ${counts(s.reconnects)}; ` +
      `refused ${counts(s.refusals)}; REST ${counts(s.rest)}; LC3 messages lost on the way ${s.audioLost}` +
      (Number.isFinite(s.lc3Dropped) ? `, dropped by the decoder ${s.lc3Dropped}` : '') +
      `; ping p50 ${fmtMs(s.pingPong.p50)} ms, button p50 ${fmtMs(s.buttonDisplay.p50)} ms, LC3 p50 ${fmtMs(s.audio.p50)} ms, ` +
      `server loop p50/max ${fmtMs(s.serverLoop.p50)}/${fmtMs(s.serverLoop.max)} ms`)
  ]
  return lines.join('\n') + '\n'
}

export function formatStorm (results: readonly StormResult[]): string {
  const lines = [
    '### Restart storm (bench/restart-storm.ts)',
    '',
    'Phones connected to one Tether process, SIGTERM, a new process on the same port, every phone back 5 s after its close ' +
      '(all from 127.0.0.1, as behind a load balancer). The first process is filled with the address limit off; the limit below is the ' +
      `restarted process's. ${results[0]?.pinning ?? ''}.`,
    '',
    '| upgrade limit after the restart | phones | SIGTERM -> all closed (ms) | SIGTERM -> new process ready (ms) | SIGTERM -> all acked again (s) | ' +
      'acked at the end | refused upgrades | phones that tried more than once | most tries by one phone | acked every 5 s |',
    '|---|---:|---:|---:|---:|---:|---|---:|---:|---|',
    ...results.map(s => `| ${s.limit} | ${s.filled} | ${num(s.drainMs)} | ${num(s.restartMs)} | ` +
      `${s.allAckedMs === null ? `not within the run (projected ${s.projectedAllMs === null ? '-' : num(s.projectedAllMs / 1000)} s at ${num(s.tailRatePerSecond, 1)}/s)` : num(s.allAckedMs / 1000, 1)} | ` +
      `${s.ackedAtEnd} | ${counts(s.refusals)} | ${s.cycled} | ${s.maxAttempts} | ${s.timeline.join(' ')} |`),
    '',
    ...results.map(s => `- ${s.limit}: tries per phone ${counts(s.attempts)}; reconnects ${counts(s.reconnects)}; ` +
      `connect errors ${counts(s.connectErrors)}; REST after SIGTERM ${counts(s.rest)}; ` +
      `${s.allAckedMs === null ? '' : `fell out again within the settle time: ${s.droppedAfter}; `}` +
      `all acked ${s.allAckedAfterCloseMs === null ? '-' : `${num(s.allAckedAfterCloseMs)} ms`} after the last close`)
  ]
  return lines.join('\n') + '\n'
}
