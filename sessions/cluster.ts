/**
 * Cluster mode (docs/ARCHITECTURE.md "Cluster mode"): one session per user across
 * nodes, by leases in Redis. This node claims a user before taking its socket,
 * asks the owner to hand the session over when another node holds it, keeps its
 * leases fresh, drops copies it no longer owns, and answers other nodes'
 * requests for its sessions. The registry calls it at those points; it knows
 * nothing of Fastify.
 */
import type { Summary } from '../protocol/admin.js'
import { NO_ANSWER, RemoteRequestError, type ClusterRpc, type RpcHandler } from './cluster-rpc.js'
import type { DisposeReason } from './lifecycle.js'
import type { Log } from './log.js'
import type { RedisDirectory } from './redis-directory.js'
import type { SessionSnapshot } from './session-snapshot.js'
import { describe, summarize, type SessionDetail } from './summary.js'
import type { UserSession } from './user-session.js'

/** The owner did not answer a handover yet: the client should retry shortly (503 SESSION_MOVING). */
export class SessionMovingError extends Error {
  override readonly name = 'SessionMovingError'
  /** For Fastify's error handler, when it reaches an HTTP answer. */
  readonly statusCode = 503
}

/** Redis cannot be reached: no new claim is possible (503, retryable). The message never carries Redis's own. */
export class DirectoryUnavailableError extends Error {
  override readonly name = 'DirectoryUnavailableError'
  readonly statusCode = 503
  constructor (cause: unknown) {
    super('the session directory is unreachable: retry shortly', { cause })
  }
}

/** What a Redis operation or a request to another node was for: the `operation` label of the directory metrics. */
export type DirectoryOperation = 'claim' | 'last_state' | 'release' | 'refresh' | 'announce' | 'retire' | 'owner' |
  'revoke' | 'summaries' | 'handover' | 'detail' | 'delete' | 'yield' | 'forward'

/** Sees every directory operation (metrics): how it ended and how long it took. */
export type DirectoryObserver = (operation: DirectoryOperation, outcome: DirectoryOutcome, seconds: number) => void

/** `timeout`: a request to another node that got no answer in time (a Redis command that times out is an `error`). */
export type DirectoryOutcome = 'ok' | 'error' | 'timeout'

/** What the cluster needs from the registry: its sessions, serialised per user. */
export interface ClusterHost {
  local: (userId: string) => UserSession | undefined
  all: () => UserSession[]
  /** Run under the user's lock. */
  locked: <T>(userId: string, task: () => T | Promise<T>) => Promise<T>
  /** End a local session (admin delete routed here). */
  end: (userId: string, reason: DisposeReason) => Promise<boolean>
  /** Drop a claim made for an upgrade still in flight; that upgrade must claim again. */
  forget: (userId: string) => void
  /** True while an upgrade of the user is in flight on this node. */
  isPending: (userId: string) => boolean
}

export interface ClusterOptions {
  nodeId: string
  publicUrl: () => string
  leaseTtlMs: number
  handoverTimeoutMs: number
  log: Log
}

interface HandoverReply { snapshot: SessionSnapshot | null }

/** How long start waits for this node's request channel before serving anyway (Redis may be away). */
const SUBSCRIBE_WAIT_MS = 3000

export class Cluster {
  /** This node's lease token per user it owns (or is about to). */
  private readonly tokens = new Map<string, string>()
  private host: ClusterHost | null = null
  private timer: NodeJS.Timeout | null = null
  /** Unknown until Redis first answers: /ready stays 503 until then. */
  private unreachable = true
  private inflight: Promise<void> = Promise.resolve()
  private readonly refreshing = new Set<Promise<void>>()
  private readonly observers: DirectoryObserver[] = []

  constructor (readonly directory: RedisDirectory, private readonly rpc: ClusterRpc, private readonly options: ClusterOptions) {}

  get nodeId (): string { return this.options.nodeId }

  /** False while Redis cannot be reached: /ready says so and new claims fail closed. */
  get healthy (): boolean { return !this.unreachable }

  async start (host: ClusterHost): Promise<void> {
    this.host = host
    this.rpc.handle('handover', async params => await this.giveUp((params as { userId: string }).userId))
    this.rpc.handle('detail', async params => {
      const session = host.local((params as { userId: string }).userId)
      return session === undefined ? null : describe(session)
    })
    this.rpc.handle('delete', async params => await host.end((params as { userId: string }).userId, 'manual'))
    this.rpc.handle('yield', async params => await this.yieldIfIdle((params as { userId: string }).userId))
    // Neither waits long for Redis: a node that starts while Redis is away serves (degraded) and catches up.
    const subscribed = this.rpc.start().then(() => true, (error: unknown) => {
      this.options.log.warn({ err: error }, 'cluster requests not subscribed yet')
      return false
    })
    await Promise.race([subscribed, new Promise(resolve => setTimeout(resolve, SUBSCRIBE_WAIT_MS).unref())])
    this.timer = setInterval(() => { this.inflight = this.refreshAll() }, Math.max(50, Math.floor(this.options.leaseTtlMs / 3)))
    this.timer.unref()
    this.inflight = this.refreshAll()
  }

  async stop (): Promise<void> {
    if (this.timer !== null) clearInterval(this.timer)
    this.timer = null
    // A refresh in flight would announce this node again after it retired.
    await this.inflight
    await this.guard('retire', async () => { await this.directory.retire() }).catch(() => {})
  }

  /**
   * Make this node the owner of the user's session (call under the user's lock).
   * Returns the state to resume from: the previous owner's, when it handed the
   * session over or died with its last state in Redis; null for a new session.
   */
  async acquire (userId: string): Promise<SessionSnapshot | null> {
    const placeholder = { userId } as unknown as Summary
    const first = await this.guard('claim', async () => await this.directory.claim(userId, '', placeholder))
    if (first.ok) {
      this.tokens.set(userId, first.token)
      return await this.guard('last_state', async () => await this.directory.lastState(userId))
    }
    const reply = await this.guard('handover', async () => await this.rpc.request<HandoverReply>(first.owner, 'handover', { userId }, this.options.handoverTimeoutMs))
      .catch((error: unknown) => {
        // The owner failed to hand over: the user may retry, as when it is silent.
        if (error instanceof RemoteRequestError) throw new SessionMovingError(error.message)
        throw error
      })
    if (reply === NO_ANSWER) throw new SessionMovingError(`node ${first.owner} holds the session and does not answer`)
    const second = await this.guard('claim', async () => await this.directory.claim(userId, '', placeholder))
    if (!second.ok) throw new SessionMovingError(`node ${second.owner} took the session meanwhile`)
    this.tokens.set(userId, second.token)
    return reply.snapshot
  }

  /** True while this node holds a claim on the user (a handover request may take it away at any await). */
  holds (userId: string): boolean { return this.tokens.has(userId) }

  /** A local session changed: write its lease now rather than at the next refresh. */
  touch (session: UserSession): void {
    if (!session.isLive) return
    void this.refresh([session]).catch(() => {})
  }

  /** A local session was disposed: let its lease go (keeping its state when it moved to another node). */
  async released (session: UserSession, reason: DisposeReason): Promise<void> {
    const token = this.tokens.get(session.userId)
    if (token === undefined) return
    this.tokens.delete(session.userId)
    await this.guard('release', async () => await this.directory.release(session.userId, token, reason !== 'handover')).catch(error => {
      this.options.log.warn({ err: error, userId: session.userId }, 'could not release a lease; it will expire')
    })
  }

  /** Serve a kind of request that other nodes forward to the owner of a session. */
  serve (method: string, handler: RpcHandler): void { this.rpc.handle(method, handler) }

  /**
   * Have the node that owns the user's session run a request (the phone's REST calls act on
   * the session wherever it lives). Null when no other node owns it, or the owner does not answer in time.
   */
  async forward<T> (userId: string, method: string, params: unknown, timeoutMs: number): Promise<T | null> {
    const owner = await this.guard('owner', async () => await this.directory.owner(userId))
    if (owner === null || owner === '' || owner === this.nodeId) return null
    const answer = await this.guard('forward', async () => await this.rpc.request<T>(owner, method, params, timeoutMs))
    return answer === NO_ANSWER ? null : answer
  }

  /** Ask the owner of a session elsewhere for its detail; null when absent or silent. */
  async remoteDetail (userId: string): Promise<SessionDetail | null> {
    const owner = await this.guard('owner', async () => await this.directory.owner(userId))
    if (owner === null || owner === '' || owner === this.nodeId) return null
    const detail = await this.guard('detail', async () => await this.rpc.request<SessionDetail | null>(owner, 'detail', { userId }, this.options.handoverTimeoutMs))
      .catch((error: unknown): typeof NO_ANSWER => this.failedAsSilent(error, userId))
    if (detail !== NO_ANSWER && detail !== null) return detail
    // The owner is silent (or failed): the last summary it wrote, without live manager state.
    const summary = await this.directory.lastSummary(userId)
    return summary === null || summary.sessionInstanceId === '' ? null : { ...summary, managers: {}, events: [] }
  }

  /** End a session held elsewhere: by its owner, or by revoking the lease when the owner is silent. */
  async remoteEnd (userId: string): Promise<boolean> {
    const owner = await this.guard('owner', async () => await this.directory.owner(userId))
    if (owner === null || owner === '') return false
    const ended = await this.guard('delete', async () => await this.rpc.request<boolean>(owner, 'delete', { userId }, this.options.handoverTimeoutMs))
      .catch((error: unknown): typeof NO_ANSWER => this.failedAsSilent(error, userId))
    if (ended !== NO_ANSWER) return ended
    return await this.guard('revoke', async () => await this.directory.revoke(userId))
  }

  /** An owner that answered an admin request with its own error is treated as silent; anything else is thrown on. */
  private failedAsSilent (error: unknown, userId: string): typeof NO_ANSWER {
    if (!(error instanceof RemoteRequestError)) throw error
    this.options.log.warn({ err: error, userId }, 'the owner of a session failed an admin request: answering without it')
    return NO_ANSWER
  }

  /** Every session of the cluster (live ones of this node fresh, others as last written). */
  async summaries (): Promise<Summary[]> {
    const remote = await this.guard('summaries', async () => await this.directory.summaries())
    const local = new Map((this.host?.all() ?? []).filter(s => s.isLive).map(s => [s.userId, summarize(s)]))
    const merged = remote.filter(s => typeof s.sessionInstanceId === 'string' && s.sessionInstanceId !== '' && !local.has(s.userId))
    return [...merged, ...local.values()]
  }

  /** The owner side of a handover: snapshot, close the glasses 4001, leave apps in place, release the lease. */
  private async giveUp (userId: string): Promise<HandoverReply> {
    const host = this.host
    if (host === null) return { snapshot: null }
    if (host.local(userId) === undefined) {
      // Only claimed, for an upgrade still in flight (whose task may hold the user's lock while it
      // asks us in turn): give the claim up without waiting, and that upgrade claims again.
      host.forget(userId)
      await this.releaseClaim(userId)
      return { snapshot: await this.directory.lastState(userId) }
    }
    return await host.locked(userId, async () => {
      const session = host.local(userId)
      if (session === undefined) {
        host.forget(userId)
        await this.releaseClaim(userId)
        return { snapshot: await this.directory.lastState(userId) }
      }
      const snapshot = session.snapshot()
      void session.dispose('handover')
      await this.releaseClaim(userId)
      return { snapshot }
    })
  }

  private async releaseClaim (userId: string): Promise<void> {
    const token = this.tokens.get(userId)
    if (token === undefined) return
    this.tokens.delete(userId)
    // A refresh of ours already on its way would re-create the lease just released.
    await Promise.allSettled([...this.refreshing])
    await this.directory.release(userId, token, false)
  }

  private async refreshAll (): Promise<void> {
    const host = this.host
    if (host === null) return
    try {
      await this.refresh(host.all().filter(s => s.isLive))
      const counts = { active: 0, grace: 0 }
      for (const s of host.all()) {
        if (s.state === 'active') counts.active += 1
        else if (s.state === 'grace') counts.grace += 1
      }
      await this.guard('announce', async () => { await this.directory.announce({ nodeId: this.nodeId, publicUrl: this.options.publicUrl(), ...counts, at: new Date().toISOString() }) })
    } catch (error) {
      this.options.log.warn({ err: error }, 'lease refresh failed')
    }
  }

  /** Write the sessions' leases; a session whose lease another node now holds is dropped here (fenced). */
  private async refresh (sessions: UserSession[]): Promise<void> {
    const running = this.writeLeases(sessions)
    this.refreshing.add(running)
    try {
      await running
    } finally {
      this.refreshing.delete(running)
    }
  }

  private async writeLeases (sessions: UserSession[]): Promise<void> {
    const updates = sessions.flatMap(session => {
      const token = this.tokens.get(session.userId)
      return token === undefined ? [] : [{ userId: session.userId, token, summary: summarize(session), snapshot: session.snapshot() }]
    })
    const fenced = await this.guard('refresh', async () => await this.directory.refresh(updates))
    for (const userId of fenced) void this.contest(userId)
  }

  /**
   * Our lease token was refused: another node claimed the user. If that node really
   * has the session (the user connected there), our copy is stale and is dropped.
   * A claim with no session behind it (one that timed out on its node while Redis
   * was paused, then ran) is given back, and we claim again and keep serving.
   */
  private async contest (userId: string): Promise<void> {
    const host = this.host
    if (host === null) return
    await host.locked(userId, async () => {
      const session = host.local(userId)
      if (session === undefined) return
      let revoked = false
      try {
        const owner = await this.guard('owner', async () => await this.directory.owner(userId))
        // An empty owner is a lease an admin revoked: the session was ended on purpose, never re-claimed.
        revoked = owner === ''
        let yielded = owner === null || owner === this.nodeId
        if (!yielded && owner !== null && owner !== '') {
          const answer = await this.guard('yield', async () => await this.rpc.request<boolean>(owner, 'yield', { userId }, this.options.handoverTimeoutMs))
          // No answer (a busy or dead owner) proves nothing: keep serving and ask again at the next refresh.
          if (answer === NO_ANSWER) {
            this.options.log.warn({ userId, owner }, 'lease refused and its holder does not answer: still serving, asking again')
            return
          }
          yielded = answer
        }
        if (yielded && owner !== '') {
          const claim = await this.guard('claim', async () => await this.directory.claim(userId, session.sessionInstanceId, summarize(session)))
          if (claim.ok) {
            this.tokens.set(userId, claim.token)
            return
          }
        }
      } catch (error) {
        // Unsure (Redis away, or the holder failed the request): keep serving; the next refresh asks again.
        this.options.log.warn({ err: error, userId }, 'could not settle a refused lease yet')
        return
      }
      this.tokens.delete(userId)
      if (revoked) {
        // Ended by an admin through another node while this one was silent: end it as a delete here
        // would (4002, apps told), not as a move.
        this.options.log.warn({ userId }, 'lease revoked by an admin: ending the local session')
        void session.dispose('manual')
        return
      }
      this.options.log.warn({ userId }, 'lease lost to another node: dropping the local copy')
      void session.dispose('handover')
    })
  }

  /** Another node asks us to give back a claim of ours that has no session behind it. */
  private async yieldIfIdle (userId: string): Promise<boolean> {
    const host = this.host
    if (host === null || host.local(userId) !== undefined || host.isPending(userId)) return false
    const owner = await this.directory.owner(userId)
    if (owner !== this.nodeId) return owner === null
    const token = this.tokens.get(userId)
    if (token !== undefined) {
      await this.releaseClaim(userId)
      return true
    }
    // A claim this node made but never learned of (its command timed out, then ran).
    return await this.directory.revokeOwnIdle(userId, this.nodeId)
  }

  observe (observer: DirectoryObserver): void { this.observers.push(observer) }

  /**
   * Run a Redis operation (or a request to another node over Redis), counted by
   * name; a connection failure marks the cluster unreachable and throws
   * DirectoryUnavailableError.
   */
  private async guard<T> (name: DirectoryOperation, operation: () => Promise<T>): Promise<T> {
    const started = performance.now()
    try {
      const result = await operation()
      this.observed(name, result === NO_ANSWER ? 'timeout' : 'ok', started)
      if (this.unreachable) {
        this.unreachable = false
        this.options.log.info({}, 'redis reachable again')
      }
      return result
    } catch (error) {
      this.observed(name, 'error', started)
      // Another node's own failure says nothing about Redis: not a reason to report this node unready.
      if (error instanceof SessionMovingError || error instanceof RemoteRequestError) throw error
      if (!this.unreachable) this.options.log.error({ err: error }, 'redis unreachable: new sessions are refused')
      this.unreachable = true
      throw new DirectoryUnavailableError(error)
    }
  }

  private observed (name: DirectoryOperation, outcome: DirectoryOutcome, started: number): void {
    const seconds = (performance.now() - started) / 1000
    for (const observer of this.observers) {
      try {
        observer(name, outcome, seconds)
      } catch (error) {
        this.options.log.error({ err: error }, 'directory observer failed')
      }
    }
  }
}
