/** The human table of `npm run simulate:ownership`: one column per configuration (Redis × design), one row per figure. */
import { fmtMs } from '../stats.js'
import type { ScenarioResult, WindowFigures } from './scenario.js'

type Row = [string, ...string[]]

const int = (n: number): string => Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : '-'
const pct = (n: number): string => Number.isFinite(n) ? `${n.toFixed(1)}%` : '-'
const mib = (bytes: number): string => `${(bytes / 1024 / 1024).toFixed(0)} MiB`
const share = (n: number): string => `${(n * 100).toFixed(1)}%`

interface RefreshFigures { neededPerS: number, achievedPerS: number, roundsCompleted: number, roundMeanMs: number | null, roundMaxMs: number | null, overruns: number, errors: number }
interface LapseFigures { timeFraction: number, leaseFraction: number }
interface SweepFigures { perS: number, sessionsPerS: number, meanMs: number, maxMs: number }
type Operations = Record<string, { count: number, perS: number, errors: number, timeouts: number, meanMs: number, maxMs: number }>

const errorsOf = (ops: Operations): number => Object.values(ops).reduce((sum, o) => sum + o.errors, 0)

function windowRows (label: string, results: readonly ScenarioResult[], pick: (r: ScenarioResult) => WindowFigures | null): Row[] {
  const cell = (f: (w: WindowFigures) => string): string[] => results.map(r => { const w = pick(r); return w === null ? '-' : f(w) })
  if (results.every(r => pick(r) === null)) return []
  return [
    [`${label}: Redis commands/s`, ...cell(w => int(w.redis.commandsPerS))],
    [`${label}: Redis CPU (% of a core, all shards)`, ...cell(w => pct(w.redis.cpuPercent))],
    [`${label}: simulator CPU / loop delay p99`, ...cell(w => `${pct(w.simulator.cpuPercent)} / ${fmtMs(w.simulator.loopDelayP99Ms)} ms`)],
    [`${label}: machine load average (start, end)`, ...cell(w => `${w.loadAverage.start.toFixed(1)}, ${w.loadAverage.end.toFixed(1)}`)],
    [`${label}: new: session writes/s`, ...cell(w => {
      const ops = w.design.operations as Operations | undefined
      return ops === undefined ? '-' : int(ops.write?.perS ?? 0)
    })]
  ]
}

export function formatTable (results: readonly ScenarioResult[]): string {
  const header: Row = ['figure', ...results.map(r => `${r.redis} / ${r.design}`)]
  const each = (f: (r: ScenarioResult) => string): string[] => results.map(f)
  const design = <T>(r: ScenarioResult, key: string): T | undefined => r.churn.design[key] as T | undefined
  const rows: Row[] = [
    ['sessions', ...each(r => int(r.sessions))],
    ['ramp: claims/s', ...each(r => int(r.ramp.claimsPerS))],
    ['ramp: claim p50 / p99 ms', ...each(r => `${fmtMs(r.ramp.claimMs.p50)} / ${fmtMs(r.ramp.claimMs.p99)}`)],
    ['ramp: took / retried / failed', ...each(r => `${(r.ramp.ms / 1000).toFixed(0)} s / ${r.ramp.retries} / ${r.ramp.failures}`)],
    ['ramp: new: directory errors / sessions re-asserted', ...each(r => {
      const ops = r.ramp.design.operations as Operations | undefined
      return ops === undefined ? '-' : `${errorsOf(ops)} / ${int(ops.reassert?.count ?? 0)}`
    })],
    ['ramp: old: refreshes/s, leases lapsed (time share)', ...each(r => {
      const refresh = r.ramp.design.refresh as RefreshFigures | undefined
      const lapse = r.ramp.design.lapse as LapseFigures | undefined
      return refresh === undefined || lapse === undefined ? '-' : `${int(refresh.achievedPerS)}, ${share(lapse.timeFraction)}`
    })],
    ...windowRows('idle', results, r => r.idle),
    ...windowRows('churn', results, r => r.churn),
    ['churn: Redis memory (used_memory)', ...each(r => mib(r.churn.redis.usedMemoryBytes))],
    ['churn: Redis keys / expired in window', ...each(r => `${int(r.churn.redis.keys)} / ${int(r.churn.redis.expiredKeys)}`)],
    ['churn done /s: drop, resume, end, new, move', ...each(r => { const p = r.churn.load.perS; return [p.drops, p.resumes, p.ends, p.connects, p.moves].map(int).join(', ') })],
    ['churn: new-user claim p50 / p99 ms', ...each(r => `${fmtMs(r.churn.load.claimMs.p50)} / ${fmtMs(r.churn.load.claimMs.p99)}`)],
    ['churn: move (handover) p50 / p99 ms', ...each(r => `${fmtMs(r.churn.load.moveMs.p50)} / ${fmtMs(r.churn.load.moveMs.p99)}`)],
    ['churn: failed / skipped / unfinished', ...each(r => `${Object.entries(r.churn.load.failures).map(([k, v]) => `${k} ${v}`).join(', ') || '0'} / ${r.churn.load.skipped} / ${r.churn.load.unfinished}`)],
    ['old: refreshes needed/s / achieved/s', ...each(r => { const f = design<RefreshFigures>(r, 'refresh'); return f === undefined ? '-' : `${int(f.neededPerS)} / ${int(f.achievedPerS)}` })],
    ['old: refresh rounds done, mean / max ms, overruns', ...each(r => { const f = design<RefreshFigures>(r, 'refresh'); return f === undefined ? '-' : `${f.roundsCompleted}, ${fmtMs(f.roundMeanMs ?? NaN)} / ${fmtMs(f.roundMaxMs ?? NaN)}, ${f.overruns}` })],
    ['old: leases lapsed (time share / leases)', ...each(r => { const f = design<LapseFigures>(r, 'lapse'); return f === undefined ? '-' : `${share(f.timeFraction)} / ${share(f.leaseFraction)}` })],
    ['new: full sweeps/s, mean / max ms', ...each(r => { const f = design<SweepFigures>(r, 'sweeps'); return f === undefined ? '-' : `${f.perS.toFixed(1)}, ${fmtMs(f.meanMs)} / ${fmtMs(f.maxMs)}` })],
    ['new: directory errors / timeouts in window', ...each(r => {
      const ops = design<Operations>(r, 'operations')
      if (ops === undefined) return '-'
      return `${errorsOf(ops)} / ${Object.values(ops).reduce((sum, o) => sum + o.timeouts, 0)}`
    })],
    ['admin list ms (p50 / max)', ...each(r => 'error' in r.adminList ? 'failed' : `${fmtMs(r.adminList.p50Ms)} / ${fmtMs(r.adminList.maxMs)} (${int(r.adminList.listed)} listed)`)],
    ['failover: claim elsewhere after ms (tries)', ...each(r => 'error' in r.failover ? 'failed' : `${r.failover.claimMs === null ? 'not within limit' : int(r.failover.claimMs)} (${r.failover.claimAttempts})`)],
    ['failover: dead node\'s users settled after ms', ...each(r => 'error' in r.failover ? 'failed' : r.failover.settled.ms === null ? 'not within limit' : int(r.failover.settled.ms))]
  ]
  const all = [header, ...rows]
  const widths = header.map((_, i) => Math.max(...all.map(row => (row[i] ?? '').length)))
  const line = (row: Row): string => `| ${row.map((cell, i) => i === 0 ? cell.padEnd(widths[i] ?? 0) : cell.padStart(widths[i] ?? 0)).join(' | ')} |`
  const separator = `|${widths.map((w, i) => i === 0 ? '-'.repeat(w + 2) : `${'-'.repeat(w + 1)}:`).join('|')}|`
  const top = results.map(r => `${r.redis} / ${r.design}: ${r.churn.redis.topCommands.slice(0, 8).map(c => `${c.command} ${int(c.perS)}`).join(', ')}`)
  const settled = results.map(r => `${r.redis} / ${r.design}: ${'error' in r.failover ? r.failover.error : `${r.failover.settled.what}; ${JSON.stringify(r.failover.settled.detail)}`}`)
  const errors = results.flatMap(r => 'error' in r.adminList ? [`${r.redis} / ${r.design}: admin list ${r.adminList.error}`] : [])
  return [line(header), separator, ...rows.map(line), '', 'Redis commands/s in the churn window, by command:', ...top, '', 'Failover settled means:', ...settled, ...errors].join('\n') + '\n'
}
