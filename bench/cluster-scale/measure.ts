/**
 * One measurement: a design at one number of idle sessions. A private Redis,
 * two nodes of that design (A holds the glasses, B answers the admin list),
 * N glasses on node A that only answer pings, a settle of two leases, then
 * Redis watched over the window with no other traffic, then the admin page
 * timed on node B. Everything started here is stopped here, whatever fails.
 */
import { performance } from 'node:perf_hooks'
import { Fleet } from '../fleet.js'
import { timeGets } from '../probes.js'
import { freePort, startServerProcess, type ServerProcess, type ServerSpec } from '../server-process.js'
import { simEmail, type TokenSigner } from '../tokens.js'
import type { Design } from './designs.js'
import type { ScaleOptions } from './options.js'
import { delta, startPrivateRedis, type RedisDelta } from './redis.js'

export interface ScaleContext {
  options: ScaleOptions
  secret: string
  sign: TokenSigner
  adminEmail: string
  progress: (line: string, ticker?: boolean) => void
}

export interface PageResult {
  requests: number
  p50: number
  p99: number
  max: number
  status: number
  bytes: number
  /** Redis commands one page cost, the idle rate over the same time taken off. */
  redisCommandsPerPage: number
}

export interface ScaleResult {
  design: Design['name']
  commit: string
  sessions: number
  acked: number
  failed: number
  failures: Record<string, number>
  connectSeconds: number
  /** Sessions node B counted (`counts.total` of its page) just before the window. */
  seenByB: number | null
  /** Glasses still open at the end of the window, and sockets the server ended meanwhile. */
  openAfterWindow: number
  serverCloses: number
  idle: RedisDelta
  /** Node CPU over the window, % of one core. */
  nodeCpuPercent: { a: number, b: number }
  page: PageResult
}

/** Every variable a node is started with: checked against each design's config.ts before a run. */
export const NODE_ENV_NAMES = [
  'PORT', 'HOST', 'AUGMENTOS_AUTH_JWT_SECRET', 'ADMIN_EMAILS', 'REDIS_URL', 'NODE_ID', 'LEASE_TTL_MS', 'LOG_LEVEL',
  'UPGRADE_RATE_LIMIT', 'USER_CONNECTS_PER_MINUTE'
] as const

function nodeEnv (ctx: ScaleContext, nodeId: string, port: number, redisUrl: string): Record<typeof NODE_ENV_NAMES[number], string> {
  return {
    PORT: String(port),
    HOST: '127.0.0.1',
    AUGMENTOS_AUTH_JWT_SECRET: ctx.secret,
    ADMIN_EMAILS: ctx.adminEmail,
    REDIS_URL: redisUrl,
    NODE_ID: nodeId,
    LEASE_TTL_MS: String(ctx.options.leaseMs),
    LOG_LEVEL: 'warn',
    // Every glasses connects from 127.0.0.1: the per-address upgrade limit would refuse the fleet.
    UPGRADE_RATE_LIMIT: '100000000',
    USER_CONNECTS_PER_MINUTE: '100000'
  }
}

const sleep = async (ms: number): Promise<void> => await new Promise(resolve => setTimeout(resolve, ms))

async function within<T> (promise: Promise<T>, ms: number): Promise<T | null> {
  let timer: NodeJS.Timeout | undefined
  try {
    return await Promise.race([promise, new Promise<null>(resolve => { timer = setTimeout(() => resolve(null), ms) })])
  } finally {
    clearTimeout(timer)
  }
}

/** /health answers before Redis did; /ready says the node can take sessions (both designs have it). */
async function waitReady (node: ServerProcess, timeoutMs = 20_000): Promise<void> {
  const deadline = performance.now() + timeoutMs
  while (performance.now() < deadline) {
    const response = await fetch(`${node.httpUrl}/ready`).catch(() => null)
    await response?.arrayBuffer()
    if (response?.ok === true) return
    await sleep(100)
  }
  throw new Error(`${node.name} was not ready within ${timeoutMs} ms:\n${node.stderrTail()}`)
}

async function countSeenBy (node: ServerProcess, headers: Record<string, string>): Promise<number | null> {
  try {
    const response = await fetch(`${node.httpUrl}/sessions?limit=1`, { headers })
    const body = await response.json() as { counts?: { total?: number } }
    return body.counts?.total ?? null
  } catch {
    return null
  }
}

async function connectFleet (ctx: ScaleContext, fleet: Fleet, sessions: number, label: string): Promise<number> {
  const started = performance.now()
  const ticker = setInterval(() => {
    ctx.progress(`${label}: ${fleet.open}/${sessions} acked, ${fleet.stats.failed} failed, ${((performance.now() - started) / 1000).toFixed(1)} s`, true)
  }, 500)
  try {
    await fleet.connectRange(0, sessions)
  } finally {
    clearInterval(ticker)
  }
  return (performance.now() - started) / 1000
}

/** SIGTERM (a node drains its sessions), SIGKILL if it is not gone in time. */
async function stopNode (node: ServerProcess): Promise<void> {
  node.terminate()
  if (await within(node.exited, 15_000) === null) node.kill()
}

export async function measureScale (ctx: ScaleContext, design: Design, sessions: number): Promise<ScaleResult> {
  const { options } = ctx
  const label = `${design.name} ${sessions}`
  const redis = await startPrivateRedis()
  const nodes: ServerProcess[] = []
  let fleet: Fleet | null = null
  try {
    for (const id of ['a', 'b'] as const) {
      const port = await freePort()
      const spec: ServerSpec = {
        name: `${design.name}-node-${id}`,
        script: design.script,
        port,
        env: nodeEnv(ctx, `node-${id}`, port, redis.url),
        openFiles: sessions + 2048
      }
      nodes.push(await startServerProcess(spec))
    }
    const [a, b] = nodes as [ServerProcess, ServerProcess]
    await Promise.all(nodes.map(async node => { await waitReady(node) }))

    ctx.progress(`${label}: connecting ${sessions} glasses to node A`)
    const glasses = new Fleet({
      url: `${a.wsUrl}/glasses-ws`,
      concurrency: options.concurrency,
      handshakeTimeoutMs: 30_000,
      tokenFor: index => ctx.sign(simEmail('scale', index), `scale-${index}`)
    })
    fleet = glasses
    const connectSeconds = await connectFleet(ctx, glasses, sessions, label)

    ctx.progress(`${label}: ${glasses.open} idle, settling for ${2 * options.leaseMs} ms`)
    await sleep(2 * options.leaseMs)
    const headers = { authorization: `Bearer ${ctx.sign(ctx.adminEmail, 'bench-admin')}` }
    const seenByB = await countSeenBy(b, headers)

    ctx.progress(`${label}: watching Redis for ${options.windowMs} ms`)
    const closesBefore = glasses.stats.unexpectedCloses
    const cpuBefore = { a: a.cpuMs(), b: b.cpuMs() }
    const before = await redis.read()
    await sleep(options.windowMs)
    const after = await redis.read()
    const windowMs = after.at - before.at
    const nodeCpuPercent = { a: (a.cpuMs() - cpuBefore.a) / windowMs * 100, b: (b.cpuMs() - cpuBefore.b) / windowMs * 100 }
    const idle = delta(before, after)
    const openAfterWindow = glasses.open
    const serverCloses = glasses.stats.unexpectedCloses - closesBefore

    ctx.progress(`${label}: GET /sessions?limit=50 on node B x${options.pageRequests}`)
    const pageBefore = await redis.read()
    const list = await timeGets(`${b.httpUrl}/sessions?limit=50`, headers, options.pageRequests)
    const pageDelta = delta(pageBefore, await redis.read())
    const page: PageResult = {
      requests: list.count,
      p50: list.p50,
      p99: list.p99,
      max: list.max,
      status: list.status,
      bytes: list.bytes,
      // timeGets sends one untimed request first: it costs Redis like the others.
      redisCommandsPerPage: Math.max(0, pageDelta.commandsPerSecond - idle.commandsPerSecond) * pageDelta.seconds / (options.pageRequests + 1)
    }
    return {
      design: design.name,
      commit: design.commit,
      sessions,
      acked: glasses.stats.acked,
      failed: glasses.stats.failed,
      failures: { ...glasses.stats.failures },
      connectSeconds,
      seenByB,
      openAfterWindow,
      serverCloses,
      idle,
      nodeCpuPercent,
      page
    }
  } finally {
    ctx.progress(`${label}: tearing down`)
    fleet?.halt()
    await Promise.all(nodes.map(stopNode))
    fleet?.terminateAll()
    await redis.stop()
  }
}
