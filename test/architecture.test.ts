/**
 * The import graph, read from the source: no circles, and each folder imports
 * only folders below it, so the session core can be read (and tested) without
 * the managers, and neither knows Fastify's plugins or routes.
 */
import { readdirSync, readFileSync } from 'node:fs'
import { dirname, join, normalize, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'

const root = normalize(join(dirname(fileURLToPath(import.meta.url)), '..'))
const SOURCE_FOLDERS = ['protocol', 'audio', 'sessions', 'managers', 'cluster', 'http', 'plugins', 'routes', 'phone']

/** Lower layers never import higher ones; one layer may hold several folders that do not import each other. */
const LAYER: Record<string, number> = { protocol: 0, audio: 1, sessions: 2, managers: 3, cluster: 3, phone: 3, http: 4, plugins: 5, routes: 6 }

function sources (folder: string): string[] {
  return readdirSync(join(root, folder), { withFileTypes: true }).flatMap(entry => {
    const path = join(folder, entry.name)
    if (entry.isDirectory()) return sources(path)
    return entry.name.endsWith('.ts') ? [path] : []
  })
}

/** Relative imports of a file (type-only ones included: they tie the code together just the same), as repository paths. */
function importsOf (file: string): string[] {
  const text = readFileSync(join(root, file), 'utf8')
  const specifiers = [...text.matchAll(/(?:from|import)\s*\(?\s*'(\.{1,2}\/[^']+)'/g)].map(match => match[1] ?? '')
  return specifiers.map(specifier => relative(root, join(root, dirname(file), specifier)).replace(/\.js$/, '.ts'))
}

const files = SOURCE_FOLDERS.flatMap(sources)
const graph = new Map(files.map(file => [file, importsOf(file).filter(target => files.includes(target))]))
const folderOf = (file: string): string => file.split('/')[0] ?? ''

t.test('no import circle', async t => {
  const circles: string[] = []
  const state = new Map<string, 'open' | 'done'>()
  const visit = (file: string, path: string[]): void => {
    if (state.get(file) === 'done') return
    if (state.get(file) === 'open') {
      circles.push([...path.slice(path.indexOf(file)), file].join(' -> '))
      return
    }
    state.set(file, 'open')
    for (const target of graph.get(file) ?? []) visit(target, [...path, file])
    state.set(file, 'done')
  }
  for (const file of files) visit(file, [])
  t.same(circles, [], 'every import chain ends')
})

t.test('each folder imports only folders below it', async t => {
  const upward: string[] = []
  for (const [file, targets] of graph) {
    for (const target of targets) {
      const from = folderOf(file)
      const to = folderOf(target)
      if (from !== to && (LAYER[to] ?? 0) >= (LAYER[from] ?? 0)) upward.push(`${file} -> ${target}`)
    }
  }
  t.same(upward, [], 'protocol < audio < sessions < managers, cluster, phone < http < plugins < routes')
})

t.test('the check sees imports at all', async t => {
  t.ok((graph.get('sessions/session-registry.ts') ?? []).includes('sessions/keyed-lock.ts'), 'a known import is found')
})
