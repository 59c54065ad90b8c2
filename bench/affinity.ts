/**
 * Where the fleet phases run: the server under test on core 0 and the load
 * generator (this process) on core 1, so "one core's capacity" is one core and
 * the phones do not steal it. Needs `taskset` (util-linux) and two cores;
 * without them nothing is pinned and the report says so.
 *
 * On a machine shared with other work, a negative nice (root only) keeps the
 * other work from stalling both processes for tens of milliseconds, which
 * would otherwise decide every p99; the report says when it was used.
 */
import { execFileSync } from 'node:child_process'
import { cpus, setPriority } from 'node:os'

export interface Pinning {
  /** What the server's spawn adds: `taskset -c` CPUs and a nice value. */
  server: { cpus?: string, nice?: number }
  /** What the report says about it. */
  note: string
  /** Undo what was done to this process. */
  release: () => void
}

function hasTaskset (): boolean {
  try {
    execFileSync('taskset', ['-V'], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
}

/** Pin this process (every thread) to core 1 and name core 0 for the server; with `nice`, both run at it. */
export function pinForFleet (nice = 0): Pinning {
  const cores = cpus().length
  const releases: Array<() => void> = []
  const server: Pinning['server'] = {}
  const notes: string[] = []
  if (cores < 2 || !hasTaskset()) {
    notes.push(`not pinned (${cores < 2 ? 'one core' : 'no taskset'}): server and load share the machine`)
  } else {
    const setSelf = (list: string): void => {
      execFileSync('taskset', ['-a', '-cp', list, String(process.pid)], { stdio: 'ignore' })
    }
    try {
      setSelf('1')
      server.cpus = '0'
      notes.push(`server pinned to core 0 (taskset -c 0, its LC3 worker thread included), load generator to core 1, of ${cores}`)
      releases.push(() => { try { setSelf(`0-${cores - 1}`) } catch { /* the next phase runs pinned; harmless */ } })
    } catch {
      notes.push('not pinned (taskset failed): server and load share the machine')
    }
  }
  if (nice !== 0) {
    try {
      // The event loop's thread: the one that answers the phones and the apps.
      setPriority(nice)
      server.nice = nice
      notes.push(`server and load generator at nice ${nice}`)
      releases.push(() => { try { setPriority(0) } catch { /* stays raised for the rest of the run */ } })
    } catch {
      notes.push(`nice ${nice} refused (not root): both at the default priority`)
    }
  }
  return { server, note: notes.join('; '), release: () => { for (const release of releases) release() } }
}
