/**
 * `node dist/bench/alloc-summary.js <file.heapprofile> [count] [divisor]`: where a
 * phase's allocations came from, from the sampling heap profile that
 * `npm run bench -- --alloc-prof` writes (collected objects included). Prints the
 * bytes per function that allocated them (self), per function with everything it
 * called (total), and per file; divided by `divisor` (e.g. the phase's connects)
 * when given, so the figures read as bytes per connect.
 */
import { readFileSync } from 'node:fs'
import { pathToFileURL } from 'node:url'
import { keyOf, shortUrl } from './profile-summary.js'

interface CallFrame { functionName: string, url: string, lineNumber: number }
interface AllocationNode { id: number, callFrame: CallFrame, selfSize: number, children: AllocationNode[] }
interface AllocationProfile { head: AllocationNode, samples?: Array<{ size: number, nodeId: number }> }

export interface AllocationEntry { name: string, bytes: number, percent: number }
export interface AllocationSummary {
  totalBytes: number
  self: AllocationEntry[]
  total: AllocationEntry[]
  files: AllocationEntry[]
  packages: AllocationEntry[]
}

/** Who owns a frame's code: `node` for node's own modules, the npm package, the repository folder, or `(built-in)`. */
export function packageOf (url: string): string {
  if (url === '') return '(built-in)'
  if (url.startsWith('node:')) return 'node'
  const modules = url.lastIndexOf('/node_modules/')
  if (modules >= 0) {
    const [scope = '', name = ''] = url.slice(modules + '/node_modules/'.length).split('/')
    return scope.startsWith('@') ? `${scope}/${name}` : scope
  }
  const short = shortUrl(url)
  const slash = short.indexOf('/')
  return slash < 0 ? short : short.slice(0, slash)
}

function top (totals: Map<string, number>, all: number, count: number, divisor: number): AllocationEntry[] {
  return [...totals].sort((a, b) => b[1] - a[1]).slice(0, count)
    .map(([name, bytes]) => ({ name, bytes: bytes / divisor, percent: all === 0 ? 0 : bytes / all * 100 }))
}

function add (map: Map<string, number>, key: string, bytes: number): void {
  map.set(key, (map.get(key) ?? 0) + bytes)
}

export function summarizeAllocations (profile: AllocationProfile, count = 25, divisor = 1): AllocationSummary {
  const self = new Map<string, number>()
  const total = new Map<string, number>()
  const files = new Map<string, number>()
  const packages = new Map<string, number>()
  // Each node's selfSize is what was sampled while that exact stack was on top.
  // Walk once, carrying the set of functions on the stack so recursion counts once.
  const walk = (node: AllocationNode, onStack: ReadonlySet<string>): number => {
    const key = keyOf(node.callFrame)
    let inclusive = node.selfSize
    if (node.selfSize > 0) {
      add(self, key, node.selfSize)
      add(files, shortUrl(node.callFrame.url) || '(native)', node.selfSize)
      add(packages, packageOf(node.callFrame.url), node.selfSize)
    }
    const below = onStack.has(key) ? onStack : new Set([...onStack, key])
    for (const child of node.children) inclusive += walk(child, below)
    if (!onStack.has(key)) add(total, key, inclusive)
    return inclusive
  }
  const all = walk(profile.head, new Set())
  return {
    totalBytes: all / divisor,
    self: top(self, all, count, divisor),
    total: top(total, all, count, divisor),
    files: top(files, all, count, divisor),
    packages: top(packages, all, count, divisor)
  }
}

function table (title: string, entries: AllocationEntry[]): string {
  const rows = entries.map(e => `${e.bytes.toFixed(0).padStart(12)}  ${e.percent.toFixed(1).padStart(5)}%  ${e.name}`)
  return `${title}\n${rows.join('\n')}\n`
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const [file, countArg, divisorArg] = process.argv.slice(2)
  if (file === undefined) {
    process.stderr.write('usage: node dist/bench/alloc-summary.js <file.heapprofile> [count] [divisor]\n')
    process.exit(2)
  }
  const divisor = divisorArg === undefined ? 1 : Number(divisorArg)
  const summary = summarizeAllocations(JSON.parse(readFileSync(file, 'utf8')) as AllocationProfile, countArg === undefined ? 25 : Number(countArg), divisor)
  process.stdout.write(`allocated: ${summary.totalBytes.toFixed(0)} bytes${divisor === 1 ? '' : ` per 1/${divisor} of the phase`}\n\n`)
  process.stdout.write(`${table('bytes, self (the function that allocated)', summary.self)}\n`)
  process.stdout.write(`${table('bytes, total (with what it called)', summary.total)}\n`)
  process.stdout.write(`${table('bytes per file', summary.files)}\n`)
  process.stdout.write(table('bytes per package', summary.packages))
}
