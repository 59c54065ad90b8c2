/**
 * The Redis the ownership simulation runs against, started and ended by the tool
 * itself on free loopback ports with nothing persisted (`--save '' --appendonly no`):
 * one redis-server, or a Redis Cluster of N masters (no replicas) joined from here
 * with CLUSTER MEET and an even share of the 16384 slots each (ADDSLOTSRANGE).
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createServer } from 'node:net'
import { Redis } from 'ioredis'

export type RedisMode = 'single' | 'cluster'

export interface RedisEndpoint { host: string, port: number }

export interface RedisDeployment {
  readonly mode: RedisMode
  /** What `commandClient` takes: one url, or the masters' urls joined by commas. */
  readonly url: string
  readonly cluster: boolean
  /** Every master: where the tool reads INFO from. */
  readonly masters: readonly RedisEndpoint[]
  /** End every process and remove its directory; idempotent. */
  stop: () => Promise<void>
}

const HOST = '127.0.0.1'
const SLOTS = 16384
/**
 * Redis's own default. Two cores are shared by the shards and the simulator, and a shard
 * busy with a long pipeline answers the cluster bus late: a short timeout would flag it
 * failed and take the cluster down mid-run.
 */
const NODE_TIMEOUT_MS = 15_000
const START_TIMEOUT_MS = 10_000
const READY_TIMEOUT_MS = 20_000
const POLL_MS = 50

const delay = async (ms: number): Promise<void> => { await new Promise(resolve => setTimeout(resolve, ms)) }

interface Server { port: number, dir: string, child: ChildProcess, watchdog: ChildProcess }

/**
 * Ends a server (and removes its directory) should this process die without its clean-up: killed, or out of
 * memory. A few GiB of Redis must not outlive a crashed run on a shared machine. Ended by `stopServer`.
 */
function watchdog (pid: number, dir: string): ChildProcess {
  const child = spawn('sh', ['-c', `while kill -0 ${process.pid} 2>/dev/null; do sleep 1; done; kill ${pid} 2>/dev/null; sleep 1; rm -rf '${dir}'`],
    { stdio: 'ignore', detached: true })
  child.on('error', () => {})
  child.unref()
  return child
}

/** `count` distinct free loopback ports: each held open until all are known, so none is handed out twice. */
async function freePorts (count: number): Promise<number[]> {
  const probes = Array.from({ length: count }, () => createServer())
  try {
    for (const probe of probes) {
      probe.listen(0, HOST)
      await once(probe, 'listening')
    }
    return probes.map(probe => (probe.address() as { port: number }).port)
  } finally {
    await Promise.all(probes.map(async probe => { if (probe.listening) { probe.close(); await once(probe, 'close') } }))
  }
}

/** One command on one server over a connection of its own (no retries, no queue). */
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

/** Start one redis-server and wait until it answers PING; throw with its log's tail if it exits or never does. */
async function spawnServer (port: number, extra: readonly string[]): Promise<Server> {
  const dir = await mkdtemp(join(tmpdir(), 'tether-ownership-redis-'))
  const child = spawn('redis-server', [
    '--port', String(port), '--bind', HOST, '--save', '', '--appendonly', 'no',
    '--dir', dir, '--logfile', join(dir, 'redis.log'), ...extra
  ], { stdio: 'ignore', cwd: dir })
  child.on('error', () => {})
  const server = { port, dir, child, watchdog: watchdog(child.pid ?? 0, dir) }
  const deadline = Date.now() + START_TIMEOUT_MS
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`redis-server on ${port} exited: ${await logTail(server)}`)
    try {
      await command(port, 'PING')
      return server
    } catch {
      if (Date.now() > deadline) {
        await stopServer(server)
        throw new Error(`redis-server on ${port} did not start: ${await logTail(server)}`)
      }
      await delay(POLL_MS)
    }
  }
}

async function logTail (server: Server): Promise<string> {
  const log = await readFile(join(server.dir, 'redis.log'), 'utf8').catch(() => '')
  return log.split('\n').slice(-5).join('\n')
}

/** SIGTERM (nothing to save), SIGKILL if it lingers; then remove its directory. */
async function stopServer (server: Server): Promise<void> {
  server.watchdog.kill()
  const child = server.child
  if (child.exitCode === null && child.signalCode === null) {
    const exited = once(child, 'exit')
    child.kill('SIGTERM')
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000)
    await exited
    clearTimeout(timer)
  }
  await rm(server.dir, { recursive: true, force: true })
}

function deployment (mode: RedisMode, servers: Server[]): RedisDeployment {
  let stopped: Promise<void> | null = null
  return {
    mode,
    url: servers.map(server => `redis://${HOST}:${server.port}`).join(','),
    cluster: mode === 'cluster',
    masters: servers.map(server => ({ host: HOST, port: server.port })),
    stop: async () => {
      stopped ??= Promise.all(servers.map(stopServer)).then(() => {})
      await stopped
    }
  }
}

export async function startSingle (): Promise<RedisDeployment> {
  const [port] = await freePorts(1)
  return deployment('single', [await spawnServer(port as number, [])])
}

export async function startCluster (shards: number): Promise<RedisDeployment> {
  const servers: Server[] = []
  try {
    // Bus ports are given explicitly: port + 10000 may be taken.
    const ports = await freePorts(2 * shards)
    for (let i = 0; i < shards; i++) {
      const [port, busPort] = [ports[2 * i] as number, ports[2 * i + 1] as number]
      // nodes.conf is relative to --dir: each server keeps its own in its own directory.
      const server = await spawnServer(port, [
        '--cluster-enabled', 'yes', '--cluster-port', String(busPort),
        '--cluster-config-file', 'nodes.conf', '--cluster-node-timeout', String(NODE_TIMEOUT_MS)
      ])
      servers.push(server)
      await command(port, 'CLUSTER', 'SET-CONFIG-EPOCH', i + 1)
      if (i > 0) await command((servers[0] as Server).port, 'CLUSTER', 'MEET', HOST, port, busPort)
    }
    await Promise.all(servers.map(async (server, i) => {
      await command(server.port, 'CLUSTER', 'ADDSLOTSRANGE', Math.floor(i * SLOTS / shards), Math.floor((i + 1) * SLOTS / shards) - 1)
    }))
    await clusterReady(servers.map(server => server.port))
    return deployment('cluster', servers)
  } catch (error) {
    await Promise.all(servers.map(stopServer))
    throw error
  }
}

/** Every node says cluster_state:ok, knows every master and sees all slots served. */
async function clusterReady (ports: number[]): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS
  for (;;) {
    const views = await Promise.all(ports.map(async port => {
      const text = String(await command(port, 'CLUSTER', 'INFO').catch(() => ''))
      const info = Object.fromEntries(text.split('\r\n').filter(Boolean).map(line => line.split(':') as [string, string]))
      return info.cluster_state === 'ok' && info.cluster_known_nodes === String(ports.length) && info.cluster_slots_ok === String(SLOTS)
    }))
    if (views.every(Boolean)) return
    if (Date.now() > deadline) throw new Error(`redis cluster on ${ports.join(',')} not ready after ${READY_TIMEOUT_MS} ms`)
    await delay(POLL_MS)
  }
}
