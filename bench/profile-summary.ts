/**
 * `node dist/bench/profile-summary.js <file.cpuprofile> [top]`: the hottest
 * functions of a V8 CPU profile (from `npm run bench -- --cpu-prof`), by self
 * time and by total time, and the hottest files. Enough to see where a phase
 * spends its CPU without opening DevTools.
 */
import { readFileSync } from 'node:fs'
import { pathToFileURL } from 'node:url'

interface CallFrame { functionName: string, url: string, lineNumber: number }
interface ProfileNode { id: number, callFrame: CallFrame, children?: number[] }
interface CpuProfile { nodes: ProfileNode[], samples: number[], timeDeltas: number[] }

export interface ProfileEntry { name: string, ms: number, percent: number }
export interface ProfileSummary { totalMs: number, self: ProfileEntry[], total: ProfileEntry[], files: ProfileEntry[] }

const IDLE = new Set(['(idle)', '(program)', '(garbage collector)'])

export function shortUrl (url: string): string {
  if (url === '') return ''
  const path = url.replace(/^file:\/\//, '')
  const at = path.lastIndexOf('/node_modules/')
  if (at >= 0) return path.slice(at + '/node_modules/'.length)
  const dist = path.lastIndexOf('/dist/')
  return dist >= 0 ? path.slice(dist + '/dist/'.length) : path
}

export function keyOf (frame: CallFrame): string {
  const where = shortUrl(frame.url)
  return `${frame.functionName === '' ? '(anonymous)' : frame.functionName}${where === '' ? '' : ` ${where}:${frame.lineNumber + 1}`}`
}

function top (totals: Map<string, number>, all: number, count: number): ProfileEntry[] {
  return [...totals].sort((a, b) => b[1] - a[1]).slice(0, count)
    .map(([name, us]) => ({ name, ms: us / 1000, percent: all === 0 ? 0 : us / all * 100 }))
}

export function summarizeProfile (profile: CpuProfile, count = 25): ProfileSummary {
  const byId = new Map(profile.nodes.map(node => [node.id, node]))
  const selfUs = new Map<number, number>()
  profile.samples.forEach((id, i) => { selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)) })
  const self = new Map<string, number>()
  const files = new Map<string, number>()
  let busy = 0
  for (const [id, us] of selfUs) {
    const node = byId.get(id)
    if (node === undefined || IDLE.has(node.callFrame.functionName)) continue
    busy += us
    const key = keyOf(node.callFrame)
    self.set(key, (self.get(key) ?? 0) + us)
    const file = shortUrl(node.callFrame.url) || '(native)'
    files.set(file, (files.get(file) ?? 0) + us)
  }
  // Total (inclusive) time per function, counting a function once per stack even when it recurses.
  const total = new Map<string, number>()
  const root = profile.nodes[0]
  const inclusive = (node: ProfileNode, onStack: Set<string>): number => {
    const key = keyOf(node.callFrame)
    const counted = IDLE.has(node.callFrame.functionName) ? 0 : (selfUs.get(node.id) ?? 0)
    const fresh = !onStack.has(key)
    if (fresh) onStack.add(key)
    let sum = counted
    for (const child of node.children ?? []) {
      const childNode = byId.get(child)
      if (childNode !== undefined) sum += inclusive(childNode, onStack)
    }
    if (fresh) {
      onStack.delete(key)
      total.set(key, (total.get(key) ?? 0) + sum)
    }
    return sum
  }
  if (root !== undefined) inclusive(root, new Set())
  total.delete('(root)')
  return { totalMs: busy / 1000, self: top(self, busy, count), total: top(total, busy, count), files: top(files, busy, count) }
}

export function formatProfile (summary: ProfileSummary): string {
  const lines = (title: string, entries: ProfileEntry[]): string[] => [
    title,
    ...entries.map(e => `  ${e.percent.toFixed(1).padStart(5)}%  ${e.ms.toFixed(0).padStart(6)} ms  ${e.name}`)
  ]
  return [
    `busy CPU in profile: ${summary.totalMs.toFixed(0)} ms`,
    ...lines('by self time:', summary.self),
    ...lines('by total time:', summary.total),
    ...lines('by file (self):', summary.files)
  ].join('\n') + '\n'
}

function main (): void {
  const [file, count] = process.argv.slice(2)
  if (file === undefined) {
    process.stderr.write('usage: node dist/bench/profile-summary.js <file.cpuprofile> [top]\n')
    process.exitCode = 2
    return
  }
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile
  process.stdout.write(formatProfile(summarizeProfile(profile, count === undefined ? 25 : Number(count))))
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) main()
