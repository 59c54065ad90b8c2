/**
 * Cluster nodes for the end-to-end tests on a real redis-server: nodes as apps
 * in this process (distinct NODE_IDs) and, where a node must die or sleep, as
 * child processes.
 */
import type { ChildProcess } from 'node:child_process'
import type { Cluster, Redis } from 'ioredis'
import WebSocket from 'ws'
import { Client, SECRET, glassesToken, startServer, type Server, type Teardown } from './helper.js'

/** A Redis the tests start: one server (RedisServer) or a sharded Redis Cluster (RedisCluster). */
export interface RedisBackend {
  readonly url: string
  readonly cluster: boolean
  readonly tag: string
  client: (t: Teardown) => Redis | Cluster
}
import { startServerProcess } from './server-process.js'
import type { Config } from '../config.js'

export const LEASE = 900
/**
 * For tests that do not exercise expiry: under a loaded CI machine an event-loop stall of a few hundred
 * milliseconds can let a 900 ms lease lapse, and another node then rightly claims the user.
 */
export const STEADY = { leaseTtlMs: 5000 }

export async function node (t: Teardown, redis: RedisBackend, nodeId: string, extra: Partial<Config> = {}): Promise<Server> {
  // Node ids are unique per Redis, so a node of an earlier test can never answer for one of this test.
  return await startServer(t, {
    redisUrl: redis.url, redisCluster: redis.cluster, nodeId: `${nodeId}-${redis.tag}`, leaseTtlMs: LEASE, handoverTimeoutMs: 500, gracePeriodMs: 30_000, userConnectsPerMinute: 1000, ...extra
  })
}

/** Live sessions of a user across nodes. */
export const owners = (nodes: Server[], user: string): Server[] => nodes.filter(n => n.app.sessions.get(user) !== undefined)

/** Connect, resolving with the socket once acked, or with the HTTP status of a refused upgrade. */
export async function tryConnect (t: Teardown, server: Server, token: string): Promise<{ client: Client } | { status: number }> {
  const ws = new WebSocket(`${server.wsUrl}/glasses-ws`, { headers: { authorization: `Bearer ${token}` } })
  t.teardown(() => ws.terminate())
  return await new Promise(resolve => {
    ws.on('unexpected-response', (_req, res) => { resolve({ status: res.statusCode ?? 0 }); ws.terminate() })
    ws.on('error', () => {})
    ws.on('open', () => {
      const client = new Client(ws)
      void client.next('connection_ack', 5000).then(() => resolve({ client }), () => resolve({ client }))
    })
  })
}

export async function nodeProcess (t: Teardown, redis: RedisBackend, nodeId: string, env: Record<string, string> = {}):
Promise<{ child: ChildProcess, url: string, nodeId: string, output: () => string }> {
  const { child, port, output } = await startServerProcess(t, {
    AUGMENTOS_AUTH_JWT_SECRET: SECRET,
    REDIS_URL: redis.url,
    REDIS_CLUSTER: String(redis.cluster),
    NODE_ID: `${nodeId}-${redis.tag}`,
    LEASE_TTL_MS: String(LEASE),
    HANDOVER_TIMEOUT_MS: '500',
    GRACE_PERIOD_MS: '30000',
    COUNTERS_WRITE_MS: '300',
    ...env
  })
  return { child, url: `ws://127.0.0.1:${port}`, nodeId: `${nodeId}-${redis.tag}`, output }
}

export async function connectTo (t: Teardown, url: string, user: string): Promise<{ client: Client, ack: Record<string, unknown> }> {
  const ws = new WebSocket(`${url}/glasses-ws`, { headers: { authorization: `Bearer ${glassesToken(user)}` } })
  const client = new Client(ws)
  t.teardown(() => ws.terminate())
  return { client, ack: await client.next('connection_ack', 5000) }
}
