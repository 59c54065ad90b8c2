/**
 * `fastify.ownership`: which node holds each user's session. In memory on a
 * node alone; with REDIS_URL, on Redis (one server or a Redis Cluster) with
 * node-to-node requests over its pub/sub.
 */
import fp from 'fastify-plugin'
import type { Config } from '../config.js'
import { LocalOwnership } from '../sessions/local-ownership.js'
import type { Ownership } from '../sessions/ownership.js'
import { publicUrlOf } from '../http/public-url.js'

declare module 'fastify' {
  interface FastifyInstance { ownership: Ownership }
}

/** How long boot waits for Redis before starting degraded. */
const BOOT_WAIT_MS = 3000

export default fp<{ config: Config }>(async function ownershipPlugin (fastify, { config }) {
  if (config.redisUrl === null) {
    fastify.decorate('ownership', new LocalOwnership(config.nodeId))
    return
  }
  // The Redis side (ioredis with it, about 2 MiB of heap) is loaded only by a node that uses Redis.
  const [{ ClusterRpc }, { OwnershipStore }, { commandClient, subscriberClient }, { RedisUserStore }, { RedisOwnership }] = await Promise.all([
    import('../cluster/cluster-rpc.js'),
    import('../cluster/ownership-store.js'),
    import('../cluster/redis-client.js'),
    import('../cluster/redis-user-store.js'),
    import('../cluster/redis-ownership.js')
  ])
  const options = { url: config.redisUrl, cluster: config.redisCluster, commandTimeoutMs: config.handoverTimeoutMs }
  const redis = commandClient(options)
  const subscriber = subscriberClient(options)
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
  const ownership = new RedisOwnership(new OwnershipStore(redis, config.nodeId), new RedisUserStore(redis),
    new ClusterRpc(redis, subscriber, config.nodeId, fastify.log), {
      nodeId: config.nodeId,
      publicUrl: publicUrlOf(fastify, config),
      leaseTtlMs: config.leaseTtlMs,
      handoverTimeoutMs: config.handoverTimeoutMs,
      gracePeriodMs: config.gracePeriodMs,
      countersWriteMs: config.countersWriteMs,
      log: fastify.log,
      events: fastify.events
    })
  fastify.decorate('ownership', ownership)
  fastify.addHook('onClose', async () => {
    // Stop answering other nodes first: a closing node must not take part in handovers.
    subscriber.disconnect()
    await ownership.stop()
    redis.disconnect()
  })
}, { name: 'tether-ownership', dependencies: ['tether-events'] })
