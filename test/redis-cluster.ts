/**
 * A real, sharded Redis Cluster of the test's own: N masters (no replicas), each a
 * `redis-server --cluster-enabled yes` process on free loopback ports with its own temp dir,
 * joined and given an even share of the 16384 slots from here (CLUSTER MEET, ADDSLOTSRANGE),
 * killed and restarted on the same port, and ended in teardown.
 *
 * Nothing is persisted (`--save '' --appendonly no`): a restarted shard comes back empty of
 * data, but its nodes.conf brings back its node id, its slots and the other members.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { createServer, type Server } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Cluster, Redis, type ClusterOptions } from 'ioredis'
import type { Teardown } from './helper.js'

const HOST = '127.0.0.1'
const SLOTS = 16384
/** Small, so a dead shard is flagged, and a restarted one rejoins, within a second or two. */
const NODE_TIMEOUT_MS = 1000
const START_TIMEOUT_MS = 10_000
const READY_TIMEOUT_MS = 15_000
const POLL_MS = 50

/**
 * Options of the Cluster clients of `client()`. ioredis's defaults already recover once a
 * restarted shard is back (a MOVED from a live node reconnects it); what they lack is patience:
 * a command sent while a shard is down is retried on "Connection is closed", MOVED and
 * CLUSTERDOWN, each retry spending one of `maxRedirections` (16: about one second). 200 holds
 * such a command for some 10 to 20 s, through a kill and restart (see test/redis-cluster.test.ts).
 */
export const CLUSTER_CLIENT_OPTIONS: ClusterOptions = {
  maxRedirections: 200,
  retryDelayOnFailover: 100,
  retryDelayOnClusterDown: 100
}

const delay = async (ms: number): Promise<void> => { await new Promise(resolve => setTimeout(resolve, ms)) }

/** `count` distinct free loopback ports: all held open until all are known, so none repeats. */
async function freePorts (count: number): Promise<number[]> {
  const servers: Server[] = []
  try {
    for (let i = 0; i < count; i++) {
      const server = createServer()
      servers.push(server)
      server.listen(0, HOST)
      await once(server, 'listening')
    }
    return servers.map(server => (server.address() as { port: number }).port)
  } finally {
    await Promise.all(servers.map(async server => { server.close(); await once(server, 'close') }))
  }
}

/** One command on one node over a connection of its own: no retries, no offline queue. */
async function command (port: number, name: string, ...args: Array<string | number>): Promise<unknown> {
  const client = new Redis({ host: HOST, port, lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0, connectTimeout: 1000 })
  client.on('error', () => {})
  try {
    await client.connect()
    return await client.call(name, ...args)
  } finally {
    client.disconnect()
  }
}

/** `CLUSTER INFO` as a record of its fields. */
async function clusterInfo (port: number): Promise<Record<string, string>> {
  const text = String(await command(port, 'CLUSTER', 'INFO'))
  return Object.fromEntries(text.split('\r\n').filter(Boolean).map(line => line.split(':') as [string, string]))
}

interface Shard {
  readonly port: number
  readonly busPort: number
  readonly dir: string
  child: ChildProcess | null
}

export class RedisCluster {
  readonly ports: number[]
  private ended = false

  private constructor (private readonly shards: Shard[]) {
    this.ports = shards.map(shard => shard.port)
  }

  static async start (t: Teardown, shards = 3): Promise<RedisCluster> {
    const ports = await freePorts(shards * 2)
    const dirs = await Promise.all(ports.slice(0, shards).map(async () => await mkdtemp(join(tmpdir(), 'tether-redis-cluster-'))))
    const list: Shard[] = dirs.map((dir, i) => ({ port: ports[2 * i] as number, busPort: ports[2 * i + 1] as number, dir, child: null }))
    const cluster = new RedisCluster(list)
    t.teardown(async () => { await cluster.stop() })
    await Promise.all(list.map(async shard => { await cluster.spawn(shard) }))
    // Distinct config epochs up front (as redis-cli does), so no epoch collision needs resolving.
    await Promise.all(list.map(async (shard, i) => await command(shard.port, 'CLUSTER', 'SET-CONFIG-EPOCH', i + 1)))
    const first = list[0] as Shard
    for (const shard of list.slice(1)) await command(first.port, 'CLUSTER', 'MEET', HOST, shard.port, shard.busPort)
    await Promise.all(list.map(async (shard, i) => {
      await command(shard.port, 'CLUSTER', 'ADDSLOTSRANGE', Math.floor(i * SLOTS / shards), Math.floor((i + 1) * SLOTS / shards) - 1)
    }))
    await cluster.ready()
    return cluster
  }

  /** A Redis Cluster, not one server. */
  readonly cluster = true

  /** Tells this cluster's nodes apart from those of other tests. */
  get tag (): string { return String(this.ports[0]) }

  /** Seeds as 'host:port' strings, e.g. for a config value. */
  get seeds (): string[] { return this.ports.map(port => `${HOST}:${port}`) }

  /** `redis://127.0.0.1:p1,redis://127.0.0.1:p2,...`, usable as a config value. */
  get url (): string { return this.ports.map(port => `redis://${HOST}:${port}`).join(',') }

  /** Kill one shard's process with SIGKILL: its data is lost. */
  async kill (index: number): Promise<void> {
    const shard = this.shard(index)
    const child = shard.child
    shard.child = null
    if (child === null || child.exitCode !== null || child.signalCode !== null) return
    child.kill('SIGKILL')
    await once(child, 'exit')
  }

  /** Start a killed shard again on the same port and dir; resolves once the cluster is ok from every node's view. */
  async restart (index: number): Promise<void> {
    const shard = this.shard(index)
    if (shard.child !== null) throw new Error(`shard ${index} is running`)
    await this.spawn(shard)
    await this.ready()
  }

  /** The index of the shard that serves `key`'s slot, as the cluster itself says (CLUSTER SLOTS). */
  async shardOf (key: string): Promise<number> {
    const port = this.livePorts()[0]
    if (port === undefined) throw new Error('no live shard')
    const slot = Number(await command(port, 'CLUSTER', 'KEYSLOT', key))
    const ranges = await command(port, 'CLUSTER', 'SLOTS') as Array<[number, number, [string, number, ...unknown[]]]>
    const range = ranges.find(([from, to]) => slot >= from && slot <= to)
    const index = range === undefined ? -1 : this.ports.indexOf(range[2][1])
    if (index < 0) throw new Error(`no shard serves slot ${slot}`)
    return index
  }

  /** An ioredis Cluster client of the test's own (CLUSTER_CLIENT_OPTIONS unless given), closed in teardown. */
  client (t: Teardown, options: ClusterOptions = CLUSTER_CLIENT_OPTIONS): Cluster {
    const client = new Cluster(this.ports.map(port => ({ host: HOST, port })), options)
    client.on('error', () => {})
    t.teardown(() => client.disconnect())
    return client
  }

  /**
   * Wait until every live node says cluster_state:ok, knows all the shards and sees all 16384
   * slots served (none by a node it flags as failing).
   */
  async ready (timeoutMs = READY_TIMEOUT_MS): Promise<void> {
    const deadline = Date.now() + timeoutMs
    let last = ''
    for (;;) {
      const ports = this.livePorts()
      if (ports.length === 0) throw new Error('no live shard')
      const views = await Promise.all(ports.map(async port => {
        try {
          const info = await clusterInfo(port)
          const ok = info.cluster_state === 'ok' && info.cluster_known_nodes === String(this.shards.length) && info.cluster_slots_ok === String(SLOTS)
          return { ok, view: `${port}: state ${info.cluster_state} known ${info.cluster_known_nodes} slots_ok ${info.cluster_slots_ok}` }
        } catch (err) {
          return { ok: false, view: `${port}: ${(err as Error).message}` }
        }
      }))
      if (views.every(v => v.ok)) return
      last = views.map(v => v.view).join('; ')
      if (Date.now() > deadline) throw new Error(`redis cluster not ready after ${timeoutMs} ms: ${last}`)
      await delay(POLL_MS)
    }
  }

  private shard (index: number): Shard {
    const shard = this.shards[index]
    if (shard === undefined) throw new Error(`no shard ${index}`)
    return shard
  }

  private livePorts (): number[] {
    return this.shards.filter(shard => shard.child !== null).map(shard => shard.port)
  }

  /** Start a shard's process and wait until it answers PING; fail fast, with its log, if it exits. */
  private async spawn (shard: Shard): Promise<void> {
    if (this.ended) throw new Error('redis cluster ended')
    const child = spawn('redis-server', [
      '--port', String(shard.port), '--bind', HOST,
      '--cluster-enabled', 'yes', '--cluster-port', String(shard.busPort),
      '--cluster-config-file', join(shard.dir, 'nodes.conf'), '--cluster-node-timeout', String(NODE_TIMEOUT_MS),
      '--dir', shard.dir, '--save', '', '--appendonly', 'no',
      '--logfile', join(shard.dir, 'redis.log')
    ], { stdio: 'ignore', cwd: shard.dir })
    shard.child = child
    child.on('error', () => {})
    const deadline = Date.now() + START_TIMEOUT_MS
    for (;;) {
      if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) {
        shard.child = null
        throw new Error(`redis-server on ${shard.port} exited: ${await this.logTail(shard)}`)
      }
      try {
        await command(shard.port, 'PING')
        return
      } catch {
        if (Date.now() > deadline) throw new Error(`redis-server on ${shard.port} did not start: ${await this.logTail(shard)}`)
        await delay(POLL_MS)
      }
    }
  }

  private async logTail (shard: Shard): Promise<string> {
    const log = await readFile(join(shard.dir, 'redis.log'), 'utf8').catch(() => '')
    return log.split('\n').slice(-5).join('\n')
  }

  /** Kill every shard and remove the dirs; idempotent. */
  private async stop (): Promise<void> {
    this.ended = true
    await Promise.all(this.shards.map(async (_, i) => { await this.kill(i) }))
    await Promise.all(this.shards.map(async shard => { await rm(shard.dir, { recursive: true, force: true }) }))
  }
}
