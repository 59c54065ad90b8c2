/**
 * Cluster mode (REDIS_URL set): the Redis connections, the directory and the
 * node-to-node requests, decorated as `fastify.cluster` (null on a single node).
 */
import fp from 'fastify-plugin'
import { Redis } from 'ioredis'
import type { Config } from '../config.js'
import { Cluster } from '../sessions/cluster.js'
import { ClusterRpc } from '../sessions/cluster-rpc.js'
import { RedisDirectory } from '../sessions/redis-directory.js'

declare module 'fastify' {
  interface FastifyInstance { cluster: Cluster | null }
}

/** How long boot waits for Redis before starting degraded. */
const BOOT_WAIT_MS = 3000

export default fp<{ config: Config, publicUrl: () => string }>(async function clusterPlugin (fastify, { config, publicUrl }) {
  if (config.redisUrl === null) {
    fastify.decorate('cluster', null)
    return
  }
  const retryStrategy = (attempt: number): number => Math.min(attempt * 200, 2000)
  // Commands fail at once while Redis is away (new claims fail closed) instead of queueing.
  // A paused or stalled Redis answers nothing: bound every command so claims fail instead of hanging.
  const redis = new Redis(config.redisUrl, {
    enableOfflineQueue: false, maxRetriesPerRequest: 1, retryStrategy, commandTimeout: config.handoverTimeoutMs
  })
  // The subscriber waits for Redis; ClusterRpc subscribes on every ready (see ClusterRpc.start).
  const subscriber = new Redis(config.redisUrl, { retryStrategy, autoResubscribe: false, disableClientInfo: true })
  for (const client of [redis, subscriber]) {
    client.on('error', (error: Error) => fastify.log.debug({ err: error }, 'redis connection error'))
  }
  // Give Redis a moment at boot; without it the node still starts, degraded, and joins when Redis answers.
  const connected = await new Promise<boolean>(resolve => {
    if (redis.status === 'ready') { resolve(true); return }
    const timer = setTimeout(() => resolve(false), BOOT_WAIT_MS).unref()
    redis.once('ready', () => { clearTimeout(timer); resolve(true) })
  })
  if (!connected) fastify.log.warn({}, 'redis not reachable at start: serving degraded until it is')
  const directory = new RedisDirectory(redis, {
    nodeId: config.nodeId,
    leaseTtlMs: config.leaseTtlMs,
    stateTtlMs: config.gracePeriodMs + config.leaseTtlMs
  })
  const rpc = new ClusterRpc(redis, subscriber, config.nodeId, fastify.log)
  const cluster = new Cluster(directory, rpc, {
    nodeId: config.nodeId,
    publicUrl,
    leaseTtlMs: config.leaseTtlMs,
    handoverTimeoutMs: config.handoverTimeoutMs,
    log: fastify.log
  })
  fastify.decorate('cluster', cluster)
  fastify.addHook('onClose', async () => {
    // Stop answering other nodes first: a closing node must not take part in handovers.
    subscriber.disconnect()
    await cluster.stop()
    redis.disconnect()
  })
}, { name: 'tether-cluster' })
