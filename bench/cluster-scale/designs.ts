/**
 * The two designs under test, each a compiled tree whose `dist/server.js` the
 * nodes run: the current build (this repository, built by the prebench script)
 * and an older commit, exported with `git archive` into os.tmpdir() and built
 * there once. The export is keyed by the full commit id and marked when its
 * build finished, so a second run reuses it and a half-built one is redone.
 */
import { execFileSync } from 'node:child_process'
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'

export interface Design {
  /** `current` or `baseline`: the first column of the table. */
  name: 'current' | 'baseline'
  /** The commit it was built from (`+wip` for a working tree with changes of its own). */
  commit: string
  /** The tree holding dist/ and node_modules/. */
  root: string
  script: string
}

/** The repository this benchmark was compiled from: dist/bench/cluster-scale/ is three levels down. */
export const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url))

const BUILT_MARK = '.cluster-scale-built'

/** Run a command, output captured (stdout may be the JSON report); throws with the tail of its stderr. */
function run (command: string, args: string[], cwd: string): string {
  try {
    return execFileSync(command, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 * 1024 * 1024 })
  } catch (error) {
    const stderr = String((error as { stderr?: unknown }).stderr ?? '').trim().split('\n').slice(-5).join(' | ')
    throw new Error(`${command} ${args.join(' ')} failed${stderr === '' ? '' : `: ${stderr}`}`)
  }
}

/** Read-only git: the full id of a commit, or null when git or the ref is not there. */
function resolveCommit (ref: string): string | null {
  try {
    return run('git', ['rev-parse', '--verify', '--quiet', `${ref}^{commit}`], REPO_ROOT).trim() || null
  } catch {
    return null
  }
}

export function currentDesign (): Design {
  const head = resolveCommit('HEAD')
  return {
    name: 'current',
    // `git status` may refresh the index (a write), so the tree is not inspected: it is what is built now.
    commit: head === null ? 'unknown' : `${head.slice(0, 7)}+wip`,
    root: REPO_ROOT,
    script: join(REPO_ROOT, 'dist', 'server.js')
  }
}

/**
 * The design at `ref`, built under os.tmpdir() (reused when already built). Returns a note
 * instead when git, the ref or the build is not available: the run then measures the current build only.
 */
export function baselineDesign (ref: string, progress: (line: string) => void): Design | { note: string } {
  const commit = resolveCommit(ref)
  if (commit === null) return { note: `baseline ${ref} not measured: git or the ref is not available here` }
  const root = join(tmpdir(), `tether-cluster-scale-${commit}`)
  const design: Design = { name: 'baseline', commit: commit.slice(0, 7), root, script: join(root, 'dist', 'server.js') }
  if (existsSync(join(root, BUILT_MARK)) && existsSync(design.script)) return design
  try {
    rmSync(root, { recursive: true, force: true })
    mkdirSync(root, { recursive: true })
    progress(`baseline ${design.commit}: git archive into ${root}`)
    // pipefail: a failed archive must not pass as an empty tree.
    run('bash', ['-o', 'pipefail', '-c', 'git archive "$1" | tar -x -C "$2"', 'bash', commit, root], REPO_ROOT)
    progress(`baseline ${design.commit}: npm ci`)
    run('npm', ['ci', '--no-audit', '--no-fund', '--loglevel=error'], root)
    progress(`baseline ${design.commit}: npm run build`)
    run('npm', ['run', 'build', '--silent'], root)
    writeFileSync(join(root, BUILT_MARK), `${new Date().toISOString()}\n`)
    return design
  } catch (error) {
    return { note: `baseline ${ref} not measured: ${(error as Error).message}` }
  }
}

/**
 * The env names a design's config.ts does not know (it ignores unknown ones silently, so a renamed
 * variable would quietly run with its default). Read from the design's own compiled schema.
 */
export async function unknownEnvNames (design: Design, names: readonly string[]): Promise<string[]> {
  const config = await import(pathToFileURL(join(design.root, 'dist', 'config.js')).href) as { EnvSchema?: { properties?: Record<string, unknown> } }
  const known = new Set(Object.keys(config.EnvSchema?.properties ?? {}))
  return names.filter(name => !known.has(name))
}
