/**
 * What a measured window cost. Redis: commands per second (INFO commandstats,
 * which counts the commands scripts run as well as the scripts), CPU (INFO cpu,
 * user + sys, as a share of one core) and memory (INFO memory), each summed over
 * every master, the sampler's own INFO calls left out. This process: its CPU and
 * event-loop delay, since one process plays every node and shares the machine
 * with Redis.
 */
import { monitorEventLoopDelay, performance, type IntervalHistogram } from 'node:perf_hooks'
import { Redis } from 'ioredis'
import type { RedisEndpoint } from './redis-processes.js'

export interface RedisTotals {
  calls: Map<string, number>
  cpuSeconds: number
  usedMemory: number
  expiredKeys: number
  keys: number
  /** INFO calls this sampler had made before this sample (each is counted by Redis in the next one). */
  ownInfoCalls: number
}

export interface RedisWindow {
  commandsPerS: number
  /** Share of one core, summed over masters (3 shards may use up to 300%). */
  cpuPercent: number
  usedMemoryBytes: number
  keys: number
  /** Keys Redis expired in the window (the old design's lapsed leases and their state among them). */
  expiredKeys: number
  topCommands: Array<{ command: string, perS: number }>
}

const SECTIONS = ['commandstats', 'cpu', 'memory', 'stats', 'keyspace']

function parseInfo (text: string, into: RedisTotals): void {
  for (const line of text.split('\r\n')) {
    const colon = line.indexOf(':')
    if (colon < 0) continue
    const name = line.slice(0, colon)
    const value = line.slice(colon + 1)
    if (name.startsWith('cmdstat_')) {
      const calls = Number(/calls=(\d+)/.exec(value)?.[1] ?? 0)
      const command = name.slice('cmdstat_'.length)
      into.calls.set(command, (into.calls.get(command) ?? 0) + calls)
    } else if (name === 'used_cpu_sys' || name === 'used_cpu_user') {
      into.cpuSeconds += Number(value)
    } else if (name === 'used_memory') {
      into.usedMemory += Number(value)
    } else if (name === 'expired_keys') {
      into.expiredKeys += Number(value)
    } else if (/^db\d+$/.test(name)) {
      into.keys += Number(/keys=(\d+)/.exec(value)?.[1] ?? 0)
    }
  }
}

export class RedisSampler {
  private infoCalls = 0

  private constructor (private readonly clients: Redis[]) {}

  /** One plain connection per master (a node of a Redis Cluster answers INFO for itself). */
  static async open (masters: readonly RedisEndpoint[]): Promise<RedisSampler> {
    const clients = masters.map(master => new Redis({ host: master.host, port: master.port, lazyConnect: true, enableReadyCheck: false }))
    for (const client of clients) client.on('error', () => {})
    await Promise.all(clients.map(async client => { await client.connect() }))
    return new RedisSampler(clients)
  }

  async sample (): Promise<RedisTotals> {
    const totals: RedisTotals = { calls: new Map(), cpuSeconds: 0, usedMemory: 0, expiredKeys: 0, keys: 0, ownInfoCalls: this.infoCalls }
    this.infoCalls += this.clients.length
    const texts = await Promise.all(this.clients.map(async client => String(await client.call('INFO', ...SECTIONS))))
    for (const text of texts) parseInfo(text, totals)
    return totals
  }

  close (): void {
    for (const client of this.clients) client.disconnect()
  }
}

export function redisWindow (from: RedisTotals, to: RedisTotals, ms: number): RedisWindow {
  const perCommand: Array<{ command: string, perS: number }> = []
  let total = 0
  for (const [command, calls] of to.calls) {
    let delta = calls - (from.calls.get(command) ?? 0)
    if (command === 'info') delta -= to.ownInfoCalls - from.ownInfoCalls
    if (delta <= 0) continue
    total += delta
    perCommand.push({ command, perS: delta * 1000 / ms })
  }
  perCommand.sort((a, b) => b.perS - a.perS)
  return {
    commandsPerS: total * 1000 / ms,
    cpuPercent: (to.cpuSeconds - from.cpuSeconds) * 1000 / ms * 100,
    usedMemoryBytes: to.usedMemory,
    keys: to.keys,
    expiredKeys: to.expiredKeys - from.expiredKeys,
    topCommands: perCommand
  }
}

export interface ProcessWindow {
  /** This process's CPU (user + sys) as a share of one core. */
  cpuPercent: number
  loopDelayP99Ms: number
  loopDelayMaxMs: number
  rssBytes: number
  heapUsedBytes: number
}

/** The simulator's own cost over a window. */
export class ProcessSampler {
  private cpu = process.cpuUsage()
  private startedAt = performance.now()
  private histogram: IntervalHistogram | null = null

  start (): void {
    this.cpu = process.cpuUsage()
    this.startedAt = performance.now()
    this.histogram?.disable()
    this.histogram = monitorEventLoopDelay({ resolution: 10 })
    this.histogram.enable()
  }

  end (): ProcessWindow {
    const cpu = process.cpuUsage(this.cpu)
    const ms = performance.now() - this.startedAt
    const histogram = this.histogram
    histogram?.disable()
    this.histogram = null
    const memory = process.memoryUsage()
    return {
      cpuPercent: (cpu.user + cpu.system) / 1000 / ms * 100,
      loopDelayP99Ms: histogram === null ? NaN : histogram.percentile(99) / 1e6,
      loopDelayMaxMs: histogram === null ? NaN : histogram.max / 1e6,
      rssBytes: memory.rss,
      heapUsedBytes: memory.heapUsed
    }
  }
}
