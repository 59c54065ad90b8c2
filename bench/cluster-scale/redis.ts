/**
 * A private redis-server for one measurement (a free loopback port, nothing
 * saved to disk) and what the benchmark reads from it: every command's call
 * count from `INFO commandstats` (Redis counts the commands a script runs as
 * well as the script itself) and its CPU time from `INFO cpu`.
 */
import { spawn } from 'node:child_process'
import { performance } from 'node:perf_hooks'
import { Redis } from 'ioredis'
import { freePort, processCpuMs } from '../server-process.js'

/** One reading of the server's counters. */
export interface RedisReading {
  /** Calls per command name since the server started (`get`, `evalsha`, `client|setname`, ...). */
  calls: Map<string, number>
  /** used_cpu_user + used_cpu_sys, in seconds. */
  cpuSeconds: number
  /** INFO commands this reader had sent before this one. */
  ownReads: number
  /** The server process's CPU time from /proc, in ms (NaN where there is none): a check on INFO's figure. */
  procCpuMs: number
  /** performance.now() when the answer arrived. */
  at: number
}

/** What happened between two readings. */
export interface RedisDelta {
  seconds: number
  /** Calls per second of each command that was called; our own INFO readings are taken off (the nodes' stay). */
  perCommand: Record<string, number>
  commandsPerSecond: number
  /** CPU of the server in % of one core, from INFO cpu. */
  cpuPercent: number
  /** The same from /proc (clock ticks, so coarser): the two should agree. */
  procCpuPercent: number
}

export interface PrivateRedis {
  readonly url: string
  read: () => Promise<RedisReading>
  stop: () => Promise<void>
}

export function parseInfo (text: string, at: number, ownReads: number, procCpuMs = Number.NaN): RedisReading {
  const calls = new Map<string, number>()
  let cpuSeconds = 0
  for (const line of text.split('\r\n')) {
    const stat = /^cmdstat_([^:]+):calls=(\d+)/.exec(line)
    if (stat !== null) calls.set(stat[1] as string, Number(stat[2]))
    const cpu = /^used_cpu_(?:user|sys):([0-9.]+)$/.exec(line)
    if (cpu !== null) cpuSeconds += Number(cpu[1])
  }
  return { calls, cpuSeconds, at, ownReads, procCpuMs }
}

export function delta (before: RedisReading, after: RedisReading): RedisDelta {
  const seconds = (after.at - before.at) / 1000
  const perCommand: Record<string, number> = {}
  let total = 0
  for (const [name, calls] of after.calls) {
    // Whether a reading counts itself or not, exactly one reading per step lies between the two
    // counts. The nodes' own INFO (a design may read the server's run id) is real work and stays.
    const own = name === 'info' ? after.ownReads - before.ownReads : 0
    const diff = calls - (before.calls.get(name) ?? 0) - own
    if (diff <= 0) continue
    perCommand[name] = diff / seconds
    total += diff
  }
  return {
    seconds,
    perCommand,
    commandsPerSecond: total / seconds,
    cpuPercent: (after.cpuSeconds - before.cpuSeconds) / seconds * 100,
    procCpuPercent: (after.procCpuMs - before.procCpuMs) / 10 / seconds
  }
}

export async function startPrivateRedis (): Promise<PrivateRedis> {
  const port = await freePort()
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
    stdio: ['ignore', 'pipe', 'pipe']
  })
  const exited = new Promise<void>(resolve => { child.once('exit', () => resolve()) })
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error('redis-server did not start within 10 s')) }, 10_000)
    child.once('error', error => { clearTimeout(timer); reject(error) })
    child.stdout?.on('data', (chunk: Buffer) => {
      if (chunk.toString().includes('Ready to accept connections')) { clearTimeout(timer); resolve() }
    })
  })
  child.stdout?.resume()
  child.stderr?.resume()
  const url = `redis://127.0.0.1:${port}`
  // No ready check: it would be one more INFO; the reader sends nothing but INFO.
  const client = new Redis(url, { enableReadyCheck: false, maxRetriesPerRequest: 1 })
  let reads = 0
  return {
    url,
    read: async () => {
      const ownReads = reads++
      const text = await client.call('INFO', 'commandstats', 'cpu') as string
      return parseInfo(text, performance.now(), ownReads, processCpuMs(child.pid ?? -1))
    },
    stop: async () => {
      client.disconnect()
      child.kill('SIGTERM')
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000)
      await exited
      clearTimeout(timer)
    }
  }
}
