/**
 * Requests between nodes over Redis pub/sub: each node listens on its own
 * channel and answers on the asker's. A node that does not answer within the
 * deadline is treated as absent (dead or partitioned); callers fall back.
 */
import { randomUUID } from 'node:crypto'
import { Cluster } from 'ioredis'
import type { Log } from '../sessions/log.js'
import { channels, type RedisClient } from './keys.js'

interface Envelope { id: string, from: string, method?: string, params?: unknown, result?: unknown, error?: string }

export type RpcHandler = (params: unknown) => Promise<unknown>

/** What `request` resolves with when the node did not answer in time (a result may itself be null). */
export const NO_ANSWER: unique symbol = Symbol('no answer')

/** The other node answered, with an error of its own: Redis and the link are fine. */
export class RemoteRequestError extends Error {
  override readonly name = 'RemoteRequestError'
  constructor (readonly nodeId: string, readonly method: string, message: string) {
    super(`node ${nodeId} failed ${method}: ${message}`)
  }
}

export class ClusterRpc {
  private readonly handlers = new Map<string, RpcHandler>()
  private readonly waiting = new Map<string, (envelope: Envelope) => void>()
  private readonly announcements = new Set<(from: string) => void>()

  /** `subscriber` is a dedicated connection: a subscribed ioredis client can do nothing else. */
  constructor (private readonly publisher: RedisClient, private readonly subscriber: RedisClient, private readonly nodeId: string,
    private readonly log: Log) {}

  /**
   * Listen on this node's channel, now and after every reconnect. The subscriber
   * must be made with `autoResubscribe: false` and `disableClientInfo: true`:
   * SUBSCRIBE is sent only once the connection is ready, because one sent during
   * ioredis's connection handshake races its CLIENT SETINFO, Redis refuses that in
   * subscriber mode, and the connection came back unsubscribed (ioredis #2037).
   * Resolves at the first subscription.
   */
  async start (): Promise<void> {
    this.subscriber.on('message', (channel: string, text: string) => {
      if (channel === channels.changes) this.heard(text)
      else void this.receive(text)
    })
    const subscribe = async (): Promise<void> => { await this.subscriber.subscribe(channels.node(this.nodeId), channels.changes) }
    await new Promise<void>((resolve, reject) => {
      this.subscriber.on('ready', () => {
        subscribe().then(resolve, (error: unknown) => {
          // A connection that stays up would never be ready again: reconnect, and subscribe then.
          this.log.warn({ err: error }, 'could not subscribe to cluster requests: reconnecting to retry')
          this.subscriber.disconnect(true)
        })
      })
      if (this.subscriber.status === 'ready') subscribe().then(resolve, reject)
    })
  }

  handle (method: string, handler: RpcHandler): void { this.handlers.set(method, handler) }

  /** Tell every node that sessions changed here (fire and forget: a lost notice only delays an admin feed). */
  announce (): void {
    this.publisher.publish(channels.changes, this.nodeId).catch(() => {})
  }

  /** Hear other nodes' announcements. */
  onAnnouncement (listener: (from: string) => void): () => void {
    this.announcements.add(listener)
    return () => { this.announcements.delete(listener) }
  }

  private heard (from: string): void {
    if (from === this.nodeId) return
    for (const listener of this.announcements) listener(from)
  }

  /** Ask a node; resolves with its result, or NO_ANSWER when it does not answer in time. Throws its error. */
  async request<T> (nodeId: string, method: string, params: unknown, timeoutMs: number): Promise<T | typeof NO_ANSWER> {
    const id = randomUUID()
    let timer: NodeJS.Timeout | undefined
    const answered = new Promise<Envelope | null>(resolve => {
      this.waiting.set(id, resolve)
      timer = setTimeout(() => resolve(null), timeoutMs)
    })
    try {
      const listeners = await this.publisher.publish(channels.node(nodeId), JSON.stringify({ id, from: this.nodeId, method, params }))
      // One server counts every subscriber; a Redis Cluster counts only those of the shard that took the message.
      if (listeners === 0 && !(this.publisher instanceof Cluster)) return NO_ANSWER
      const envelope = await answered
      if (envelope === null) return NO_ANSWER
      if (envelope.error !== undefined) throw new RemoteRequestError(nodeId, method, envelope.error)
      return envelope.result as T
    } finally {
      clearTimeout(timer)
      this.waiting.delete(id)
    }
  }

  private async receive (text: string): Promise<void> {
    let envelope: Envelope
    try {
      envelope = JSON.parse(text) as Envelope
    } catch {
      return
    }
    if (envelope.method === undefined) {
      this.waiting.get(envelope.id)?.(envelope)
      return
    }
    const handler = this.handlers.get(envelope.method)
    let reply: Envelope
    try {
      if (handler === undefined) throw new Error(`no handler for ${envelope.method}`)
      reply = { id: envelope.id, from: this.nodeId, result: await handler(envelope.params) ?? null }
    } catch (error) {
      this.log.warn({ err: error, method: envelope.method }, 'cluster request failed')
      reply = { id: envelope.id, from: this.nodeId, error: (error as Error).message }
    }
    try {
      await this.publisher.publish(channels.node(envelope.from), JSON.stringify(reply))
    } catch (error) {
      this.log.warn({ err: error }, 'could not answer a cluster request')
    }
  }
}
