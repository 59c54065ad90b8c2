/**
 * A server under test as a child process: started through bash so its soft
 * open-files limit can be raised, with the inspector on a loopback port (the
 * benchmark asks it for a full GC before reading memory), ready once
 * `/health` answers, stopped with SIGTERM and timed until it exits.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { performance } from 'node:perf_hooks'
import { GcTrace, type GcWindow } from './gc-trace.js'

export interface ServerSpec {
  name: string
  /** The compiled entry point to run with node. */
  script: string
  port: number
  env: Record<string, string>
  /** Open files the process should be allowed (its soft limit is raised towards this). */
  openFiles: number
  /** Extra node flags, e.g. --cpu-prof. */
  nodeFlags?: readonly string[]
  /** Run on these CPUs only (`taskset -c`, e.g. `0`); undefined: anywhere. */
  cpus?: string
  /** Scheduling priority (`nice -n`, every thread); undefined: inherited. */
  nice?: number
  /** Run with `--trace-gc` and keep its account (`gcBetween`). */
  traceGc?: boolean
}

export interface ExitInfo { code: number | null, signal: NodeJS.Signals | null, at: number }

export interface ServerProcess {
  readonly name: string
  readonly pid: number
  readonly httpUrl: string
  readonly wsUrl: string
  /** The inspector's WebSocket URL, once the process printed it. */
  inspectorUrl: () => string | null
  /** Resolves when the process exits; `at` is performance.now() at that moment. */
  readonly exited: Promise<ExitInfo>
  /** The last lines it wrote to stderr, for error messages. */
  stderrTail: () => string
  /** CPU time (user + system) the process has used so far, in ms; NaN where /proc is not there. */
  cpuMs: () => number
  /** SIGTERM; returns performance.now() when the signal was sent. */
  terminate: () => number
  /** SIGKILL if still running (clean-up after a failed run). */
  kill: () => void
  /** The garbage collections from a performance.now() time until now; null unless started with `traceGc`. */
  gcSince: (from: number) => Promise<GcWindow | null>
}

/** A free loopback port (the kernel's pick, released at once). */
export async function freePort (): Promise<number> {
  return await new Promise((resolve, reject) => {
    const probe = createServer()
    probe.once('error', reject)
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address()
      const port = typeof address === 'object' && address !== null ? address.port : 0
      probe.close(() => resolve(port))
    })
  })
}

/** Raise the soft open-files limit to `want` (or the hard limit), never lower it, then exec the command. */
export function raiseLimitScript (want: number): string {
  return `cur=$(ulimit -Sn); if [ "$cur" != unlimited ] && [ "$cur" -lt ${want} ]; then ` +
    `ulimit -Sn ${want} 2>/dev/null || ulimit -Sn "$(ulimit -Hn)" 2>/dev/null; fi; exec "$@"`
}

let ticksPerSecond: number | null = null

/** utime + stime of a process from /proc (Linux), in ms. */
export function processCpuMs (pid: number): number {
  try {
    ticksPerSecond ??= Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // Fields after the command name, which is in parentheses and may hold spaces.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return (Number(fields[11]) + Number(fields[12])) * 1000 / ticksPerSecond
  } catch {
    return Number.NaN
  }
}

/**
 * CPU time of a process split into its main thread (the event loop) and all
 * its other threads (for Tether: the LC3 decoding worker, V8's GC helpers,
 * the inspector), in ms; NaN where /proc is not there.
 */
export function threadCpuMs (pid: number): { main: number, others: number } {
  try {
    const total = processCpuMs(pid)
    const main = readThreadCpuMs(`/proc/${pid}/task/${pid}/stat`)
    return { main, others: total - main }
  } catch {
    return { main: Number.NaN, others: Number.NaN }
  }
}

function readThreadCpuMs (file: string): number {
  ticksPerSecond ??= Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100
  const stat = readFileSync(file, 'utf8')
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return (Number(fields[11]) + Number(fields[12])) * 1000 / ticksPerSecond
}

/** How late a `--trace-gc` line may reach the benchmark after its collection. */
const GC_LINE_DELAY_MS = 50

const sleep = async (ms: number): Promise<void> => await new Promise(resolve => setTimeout(resolve, ms))

export async function startServerProcess (spec: ServerSpec, readyTimeoutMs = 20_000): Promise<ServerProcess> {
  const args = [...(spec.nodeFlags ?? []), ...(spec.traceGc === true ? ['--trace-gc'] : []), '--inspect=127.0.0.1:0', spec.script]
  const command = ['bash', '-c', raiseLimitScript(spec.openFiles), 'bash', process.execPath, ...args]
  // taskset, nice and bash all exec, so the child's pid is the server's own.
  if (spec.nice !== undefined) command.unshift('nice', '-n', String(spec.nice))
  if (spec.cpus !== undefined) command.unshift('taskset', '-c', spec.cpus)
  const child: ChildProcess = spawn(command[0] as string, command.slice(1), {
    env: { ...process.env, ...spec.env },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let stderr = ''
  let inspector: string | null = null
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-4000)
    inspector ??= /Debugger listening on (ws:\/\/\S+)/.exec(stderr)?.[1] ?? null
  })
  // Tether logs warnings as JSON on stdout; keep the pipe drained so it never blocks.
  const gc = spec.traceGc === true ? new GcTrace() : null
  child.stdout?.on('data', (chunk: Buffer) => { gc?.add(chunk.toString(), performance.now()) })
  const exited = new Promise<ExitInfo>(resolve => {
    child.once('exit', (code, signal) => resolve({ code, signal, at: performance.now() }))
  })
  let gone = false
  void exited.then(() => { gone = true })
  const httpUrl = `http://127.0.0.1:${spec.port}`
  const started = performance.now()
  for (;;) {
    if (gone) throw new Error(`${spec.name} exited before it was ready:\n${stderr}`)
    if (performance.now() - started > readyTimeoutMs) {
      child.kill('SIGKILL')
      throw new Error(`${spec.name} was not ready within ${readyTimeoutMs} ms:\n${stderr}`)
    }
    try {
      const response = await fetch(`${httpUrl}/health`)
      await response.arrayBuffer()
      if (response.ok && inspector !== null) break
    } catch {
      // not listening yet
    }
    await sleep(100)
  }
  return {
    name: spec.name,
    pid: child.pid ?? -1,
    httpUrl,
    wsUrl: `ws://127.0.0.1:${spec.port}`,
    inspectorUrl: () => inspector,
    exited,
    stderrTail: () => stderr,
    cpuMs: () => processCpuMs(child.pid ?? -1),
    terminate: () => {
      const at = performance.now()
      child.kill('SIGTERM')
      return at
    },
    kill: () => { if (!gone) child.kill('SIGKILL') },
    gcSince: async (from) => {
      if (gc === null) return null
      // A collection's line reaches us a moment after it: wait that moment, and count it.
      const to = performance.now() + GC_LINE_DELAY_MS
      await sleep(GC_LINE_DELAY_MS)
      return gc.between(from, to)
    }
  }
}
