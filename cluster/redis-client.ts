/**
 * Connections to Redis for cluster mode: one server, or a Redis Cluster from
 * its seed nodes (REDIS_CLUSTER=true). Commands fail at once while Redis is away
 * (new claims fail closed) instead of queueing, and every command is bounded, so
 * a paused or stalled Redis fails a claim rather than hanging it.
 */
import { Cluster, Redis, type RedisOptions } from 'ioredis'
import type { RedisClient } from './keys.js'

export interface RedisClientOptions {
  url: string
  cluster: boolean
  commandTimeoutMs: number
}

const retryStrategy = (attempt: number): number => Math.min(attempt * 200, 2000)

function seeds (url: string): Array<{ host: string, port: number }> {
  return url.split(',').map(part => {
    const parsed = new URL(part)
    return { host: parsed.hostname, port: Number(parsed.port === '' ? 6379 : parsed.port) }
  })
}

function connect (options: RedisClientOptions, redisOptions: RedisOptions, offlineQueue: boolean): RedisClient {
  if (!options.cluster) return new Redis(options.url, { ...redisOptions, enableOfflineQueue: offlineQueue, retryStrategy })
  const first = new URL(options.url.split(',')[0] ?? options.url)
  return new Cluster(seeds(options.url), {
    enableOfflineQueue: offlineQueue,
    clusterRetryStrategy: retryStrategy,
    // A shard that restarted answers MOVED/CLUSTERDOWN for a moment: the client re-reads the slots.
    slotsRefreshTimeout: 2000,
    slotsRefreshInterval: 5000,
    enableAutoPipelining: true,
    redisOptions: {
      ...redisOptions,
      ...(first.password === '' ? {} : { password: decodeURIComponent(first.password) }),
      ...(first.username === '' ? {} : { username: decodeURIComponent(first.username) }),
      ...(first.protocol === 'rediss:' ? { tls: {} } : {})
    }
  })
}

/** The connection for commands and scripts. */
export function commandClient (options: RedisClientOptions): RedisClient {
  return connect(options, { maxRetriesPerRequest: 1, commandTimeout: options.commandTimeoutMs, enableAutoPipelining: true }, false)
}

/**
 * The connection for pub/sub: it waits for Redis, and subscribes on every ready itself
 * (see ClusterRpc.start for why automatic resubscription is off).
 */
export function subscriberClient (options: RedisClientOptions): RedisClient {
  return connect(options, { autoResubscribe: false, disableClientInfo: true }, true)
}
