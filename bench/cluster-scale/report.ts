/**
 * The printed report: one row per design and session count, the ratios from
 * the smallest to the largest count with the issue's targets beside them, and
 * the Redis commands by name, so a command whose rate grows with idle sessions
 * is named rather than hidden in a total.
 */
import type { ScaleResult } from './measure.js'

/** The issue's targets for the new design (at a 3 s lease). */
export const TARGETS = { commandsPerSessionSecond: 0.05, redisRatio: 1.5, pageP50Ratio: 2 } as const

/** A command whose rate rises by more than this from the smallest to the largest count is flagged... */
const GROWS_RATIO = 1.5
/** ...when it reaches at least this many calls per second (a stray call in a window is not a trend). */
const GROWS_MIN_RATE = 1

export interface Ratio {
  design: ScaleResult['design']
  from: number
  to: number
  redisCommands: number
  redisCpu: number
  pageP50: number
  pageP99: number
}

export interface CommandGrowth {
  design: ScaleResult['design']
  command: string
  /** Calls per second at each session count, in the order of the run. */
  rates: Record<number, number>
  ratio: number
  grows: boolean
}

const fixed = (value: number, digits: number): string => Number.isFinite(value) ? value.toFixed(digits) : '-'
const thousands = (value: number): string => Number.isFinite(value) ? Math.round(value).toLocaleString('en-US') : '-'

function table (header: string[], rows: string[][]): string {
  const line = (cells: string[]): string => `| ${cells.join(' | ')} |`
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n')
}

const byDesign = (results: readonly ScaleResult[]): Map<string, ScaleResult[]> => {
  const groups = new Map<string, ScaleResult[]>()
  for (const result of results) groups.set(result.design, [...(groups.get(result.design) ?? []), result])
  return groups
}

export function ratios (results: readonly ScaleResult[]): Ratio[] {
  const out: Ratio[] = []
  for (const group of byDesign(results).values()) {
    const sorted = [...group].sort((x, y) => x.sessions - y.sessions)
    const low = sorted[0]
    const high = sorted[sorted.length - 1]
    if (low === undefined || high === undefined || low === high) continue
    out.push({
      design: low.design,
      from: low.sessions,
      to: high.sessions,
      redisCommands: high.idle.commandsPerSecond / low.idle.commandsPerSecond,
      redisCpu: high.idle.cpuPercent / low.idle.cpuPercent,
      pageP50: high.page.p50 / low.page.p50,
      pageP99: high.page.p99 / low.page.p99
    })
  }
  return out
}

export function commandGrowth (results: readonly ScaleResult[]): CommandGrowth[] {
  const out: CommandGrowth[] = []
  for (const group of byDesign(results).values()) {
    const sorted = [...group].sort((x, y) => x.sessions - y.sessions)
    const low = sorted[0]
    const high = sorted[sorted.length - 1]
    if (low === undefined || high === undefined) continue
    const names = new Set(sorted.flatMap(result => Object.keys(result.idle.perCommand)))
    for (const command of names) {
      const rates: Record<number, number> = {}
      for (const result of sorted) rates[result.sessions] = result.idle.perCommand[command] ?? 0
      const first = rates[low.sessions] ?? 0
      const last = rates[high.sessions] ?? 0
      const ratio = first > 0 ? last / first : last > 0 ? Number.POSITIVE_INFINITY : 1
      out.push({ design: low.design, command, rates, ratio, grows: low !== high && ratio > GROWS_RATIO && last >= GROWS_MIN_RATE })
    }
  }
  return out.sort((x, y) => x.design.localeCompare(y.design) || (Object.values(y.rates).at(-1) ?? 0) - (Object.values(x.rates).at(-1) ?? 0))
}

export function formatResults (results: readonly ScaleResult[]): string {
  const rows = results.map(r => [
    r.design, r.commit, thousands(r.sessions), `${r.openAfterWindow}${r.failed > 0 ? ` (${r.failed} failed)` : ''}`,
    r.seenByB === null ? '-' : thousands(r.seenByB),
    thousands(r.idle.commandsPerSecond), fixed(r.idle.commandsPerSecond / Math.max(1, r.openAfterWindow), 4),
    `${fixed(r.idle.cpuPercent, 1)} / ${fixed(r.idle.procCpuPercent, 1)}`, fixed(r.nodeCpuPercent.a, 1), fixed(r.page.p50, 1), fixed(r.page.p99, 1),
    fixed(r.page.redisCommandsPerPage, 0)
  ])
  return table(['design', 'commit', 'idle sessions', 'open after window', 'seen by B', 'Redis cmds/s', 'cmds per session per s',
    'Redis CPU % (INFO / proc)', 'node A CPU %', 'page p50 ms', 'page p99 ms', 'Redis cmds per page'], rows)
}

export function formatRatios (list: readonly Ratio[]): string {
  const rows = list.map(r => [
    r.design, `${thousands(r.to)}/${thousands(r.from)}`, fixed(r.redisCommands, 2), fixed(r.redisCpu, 2), fixed(r.pageP50, 2), fixed(r.pageP99, 2)
  ])
  return table(['design', 'sessions', 'Redis cmds/s', 'Redis CPU', 'page p50', 'page p99'], rows)
}

/** The targets, judged on the current design only (the baseline is there to compare with). */
export function formatTargets (results: readonly ScaleResult[], list: readonly Ratio[]): string {
  const current = results.filter(r => r.design === 'current')
  const ratio = list.find(r => r.design === 'current')
  const verdict = (ok: boolean): string => ok ? 'met' : 'NOT met'
  const lines = current.map(r => {
    const perSession = r.idle.commandsPerSecond / Math.max(1, r.openAfterWindow)
    return `- ${thousands(r.sessions)} idle: ${fixed(perSession, 4)} cmds per session per s (target <= ${TARGETS.commandsPerSessionSecond}): ${verdict(perSession <= TARGETS.commandsPerSessionSecond)}`
  })
  if (ratio !== undefined) {
    lines.push(`- Redis cmds/s ${thousands(ratio.to)}/${thousands(ratio.from)}: ${fixed(ratio.redisCommands, 2)}x (target <= ${TARGETS.redisRatio}x): ${verdict(ratio.redisCommands <= TARGETS.redisRatio)}`)
    lines.push(`- page p50 ${thousands(ratio.to)}/${thousands(ratio.from)}: ${fixed(ratio.pageP50, 2)}x (target <= ${TARGETS.pageP50Ratio}x): ${verdict(ratio.pageP50 <= TARGETS.pageP50Ratio)}`)
  }
  return lines.join('\n')
}

export function formatCommands (growth: readonly CommandGrowth[], counts: readonly number[]): string {
  const rows = growth.map(g => [
    g.design, g.command, ...counts.map(n => fixed(g.rates[n] ?? Number.NaN, 2)), fixed(g.ratio, 2), g.grows ? 'grows' : ''
  ])
  return table(['design', 'command', ...counts.map(n => `calls/s at ${thousands(n)}`), 'ratio', ''], rows)
}
