/** The machine a result was measured on, for RESULTS.md. */
import { execFileSync } from 'node:child_process'
import { cpus, release, totalmem, type } from 'node:os'

export interface MachineInfo {
  cpuModel: string
  cores: number
  memoryGiB: number
  node: string
  os: string
  /** Short commit of the code under test, `+dirty` when the tree has changes. */
  commit: string
}

function gitCommit (): string {
  try {
    const head = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim()
    const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim()
    return dirty === '' ? head : `${head}+dirty`
  } catch {
    return 'unknown'
  }
}

/** The machine without its commit (which runs `git status`, a possible index write). */
export function hostInfo (): Omit<MachineInfo, 'commit'> {
  const list = cpus()
  return {
    cpuModel: list[0]?.model.trim() ?? 'unknown',
    cores: list.length,
    memoryGiB: Math.round(totalmem() / 2 ** 30 * 10) / 10,
    node: process.version,
    os: `${type()} ${release()}`
  }
}

export function machineInfo (): MachineInfo {
  // An exported tree (git archive) has no .git: the caller names the commit it came from.
  return { ...hostInfo(), commit: process.env.TETHER_BENCH_COMMIT ?? gitCommit() }
}

export function describeMachine (machine: MachineInfo): string {
  return `${machine.cpuModel}, ${machine.cores} cores, ${machine.memoryGiB} GiB, node ${machine.node}, ${machine.os}, commit ${machine.commit}`
}
