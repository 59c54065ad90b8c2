/**
 * Core pinning for the fleet phases: the server under test on core 0 and the
 * load generator (this process) on core 1, so "one core's capacity" is one
 * core and the phones do not steal it. Needs `taskset` (util-linux) and two
 * cores; without them nothing is pinned and the report says so.
 */
import { execFileSync } from 'node:child_process'
import { cpus } from 'node:os'

export interface Pinning {
  /** CPU list for the server (`taskset -c`), or null when not pinned. */
  server: string | null
  /** What the report says about it. */
  note: string
}

function hasTaskset (): boolean {
  try {
    execFileSync('taskset', ['-V'], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
}

/** Pin this process (every thread) to core 1 and name core 0 for the server; undo with release(). */
export function pinForFleet (): Pinning & { release: () => void } {
  const cores = cpus().length
  if (cores < 2 || !hasTaskset()) {
    return { server: null, note: `not pinned (${cores < 2 ? 'one core' : 'no taskset'}): server and load share the machine`, release: () => {} }
  }
  const setSelf = (list: string): void => {
    execFileSync('taskset', ['-a', '-cp', list, String(process.pid)], { stdio: 'ignore' })
  }
  try {
    setSelf('1')
  } catch {
    return { server: null, note: 'not pinned (taskset failed): server and load share the machine', release: () => {} }
  }
  return {
    server: '0',
    note: `server pinned to core 0 (taskset -c 0, its LC3 worker thread included), load generator to core 1, of ${cores}`,
    release: () => { try { setSelf(`0-${cores - 1}`) } catch { /* the next phase runs pinned; harmless */ } }
  }
}
