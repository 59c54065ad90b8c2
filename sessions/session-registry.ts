/**
 * The node's sessions by userId (decorated as `fastify.sessions`). Every
 * operation on one user goes through that user's lock, so two simultaneous first
 * connections yield one session and a reconnect racing the grace timer either
 * resumes or starts fresh, never both.
 */
import type { SessionCounts } from '../protocol/admin.js'
import type { GlassesConnection } from './glasses-connection.js'
import { KeyedLock } from './keyed-lock.js'
import type { AttachOutcome, DisposeReason } from './lifecycle.js'
import type { Log } from './log.js'
import type { NodeEvents } from './node-events.js'
import type { ManagerFactory } from './manager.js'
import type { SessionConfig } from './session-config.js'
import { UserSession, type SessionHooks } from './user-session.js'
import type { Ownership } from './ownership.js'
import type { SessionSnapshot } from './session-snapshot.js'
import { countByState } from './summary.js'

export interface SessionRegistryOptions {
  config: SessionConfig
  log: Log
  /** Where sessions tell what happens (logs and metrics listen). */
  events: NodeEvents
  managerFactories?: readonly ManagerFactory[]
  /** Which node holds each user: this one alone, or one of a cluster. */
  ownership: Ownership
}

export interface ConnectResult { session: UserSession, outcome: AttachOutcome }

/** Whether a user's new socket may take over: `in_use` during a takeover cool-down, with its end. */
export type Admission = { admitted: true } | { admitted: false, reason: 'in_use', retryAfterMs: number }

/** How long a REST call with no session in sight waits for an upgrade of its user to begin. */
const ARRIVAL_WAIT_MS = 250
/** An upgrade that never reached its session stops counting as in flight after this. */
const ATTACH_STALE_MS = 15_000

/** Thrown by `connect` once the node is draining. */
export class RegistryDrainingError extends Error {
  override readonly name = 'RegistryDrainingError'
}

export class SessionRegistry {
  private readonly sessions = new Map<string, UserSession>()
  private readonly lock = new KeyedLock()
  private readonly hooks: SessionHooks
  private draining = false
  /** Upgrades of each user in flight (authenticated, not yet attached or refused). */
  private readonly attaching = new Map<string, number>()
  /**
   * The end of every upgrade in flight, with when it began: one sweep ends the stale ones, where a
   * timer per upgrade cost a setTimeout and a clearTimeout of every connect.
   */
  private readonly inFlight = new Map<() => void, number>()
  private staleSweep: NodeJS.Timeout | null = null
  /** REST calls waiting for a user's session to exist. */
  private readonly watchers = new Map<string, Set<() => void>>()
  private readonly ownership: Ownership

  constructor (private readonly options: SessionRegistryOptions) {
    this.ownership = options.ownership
    this.hooks = {
      graceTimerFired: (session, epoch) => { void this.expire(session, epoch) },
      fatalError: (session) => { void this.lock.run(session.userId, () => { void session.dispose('fatal_error') }) },
      disposed: (session, reason) => {
        if (this.sessions.get(session.userId) === session) this.sessions.delete(session.userId)
        this.ownership.released(session, reason)
      },
      changed: (session) => { this.ownership.changed(session) },
      events: options.events
    }
    // Every transition changes what the ownership records of the session (its state); this listener is
    // the first, so the record is written before logs and metrics hear of it.
    options.events.on('session.lifecycle', (event) => {
      const session = this.sessions.get(event.userId)
      if (session !== undefined) this.ownership.changed(session)
    })
  }

  get isDraining (): boolean { return this.draining }

  get size (): number { return this.sessions.size }

  get (userId: string): UserSession | undefined {
    const session = this.sessions.get(userId)
    return session?.isLive === true ? session : undefined
  }

  /** This node's sessions by state (its gauges); the admin views count every node's through the ownership. */
  counts (): SessionCounts { return countByState(this.sessions.values()) }

  /**
   * An authenticated upgrade of this user has begun: REST calls of the user wait for it
   * rather than answering "no session". Returns the function that ends it (idempotent).
   */
  beginAttach (userId: string): () => void {
    this.attaching.set(userId, (this.attaching.get(userId) ?? 0) + 1)
    this.wake(userId)
    const end = (): void => {
      if (!this.inFlight.delete(end)) return
      const left = (this.attaching.get(userId) ?? 1) - 1
      if (left > 0) this.attaching.set(userId, left)
      else this.attaching.delete(userId)
      this.wake(userId)
    }
    this.inFlight.set(end, Date.now())
    // An upgrade that never reaches its session is ended by the sweep, ATTACH_STALE_MS to twice that late.
    this.staleSweep ??= setInterval(() => this.endStale(), ATTACH_STALE_MS).unref()
    return end
  }

  private endStale (): void {
    const before = Date.now() - ATTACH_STALE_MS
    for (const [end, begunAt] of this.inFlight) if (begunAt <= before) end()
    if (this.inFlight.size > 0 || this.staleSweep === null) return
    clearInterval(this.staleSweep)
    this.staleSweep = null
  }

  /**
   * The user's live session on this node, waiting up to `waitMs` while an upgrade of the
   * user is in flight (or begins within a moment), so a REST call racing the socket is not
   * told there is no session.
   */
  async live (userId: string, waitMs: number): Promise<UserSession | undefined> {
    const started = Date.now()
    for (;;) {
      const session = this.get(userId)
      if (session !== undefined) return session
      const waited = Date.now() - started
      const limit = this.attaching.has(userId) ? waitMs : Math.min(waitMs, ARRIVAL_WAIT_MS)
      if (waited >= limit) return undefined
      await this.watch(userId, limit - waited)
    }
  }

  /**
   * May a new socket of this user be attached? Not while the session's live socket is in
   * a takeover cool-down (two devices of one user replacing each other, docs/PROTOCOL.md).
   */
  admission (userId: string): Admission {
    const session = this.get(userId)
    const until = session?.takeoverCooldownUntil ?? 0
    const now = Date.now()
    if (session === undefined || session.state !== 'active' || until <= now) return { admitted: true }
    session.takeoverRefused()
    return { admitted: false, reason: 'in_use', retryAfterMs: until - now }
  }

  /** Start serving other nodes' requests (in a cluster) with this node's sessions. */
  async start (): Promise<void> {
    await this.ownership.start({
      local: userId => this.get(userId),
      all: () => this.sessions.values(),
      locked: async (userId, task) => await this.lock.run(userId, task),
      end: async (userId, reason) => await this.dispose(userId, reason)
    })
  }

  /**
   * Before an upgrade: make sure this node may hold the user (in a cluster, taking the session
   * over from the node that holds it). Throws (or rejects with) SessionMovingError or
   * DirectoryUnavailableError, which the route answers 503 before any upgrade. Nothing to wait
   * for (undefined) on one node.
   */
  prepare (userId: string): Promise<void> | undefined {
    return this.ownership.prepare(userId)
  }

  /**
   * Give an authenticated socket to its user's session: create it, resume it from
   * grace, or replace its live socket. Returns null when the socket closed while
   * it waited for the lock (nothing to attach).
   */
  connect (connection: GlassesConnection): Promise<ConnectResult | null> {
    return this.lock.run(connection.identity.userId, () => this.attachLocked(connection))
  }

  /**
   * `connect` under the user's lock. Not async: on one node the claim answers at once, and the
   * attach then costs the lock's promise alone, with no promise or turn of the loop of its own.
   */
  private attachLocked (connection: GlassesConnection): ConnectResult | null | Promise<ConnectResult | null> {
    if (this.draining) throw new RegistryDrainingError('node is draining')
    if (!connection.isOpen) return null
    const userId = connection.identity.userId
    const session = this.get(userId)
    if (session !== undefined) return this.attachTo(session, connection)
    const claim = this.ownership.claim(userId)
    if (claim instanceof Promise) return claim.then(restore => this.attachNew(connection, restore ?? undefined))
    return this.attachNew(connection, claim ?? undefined)
  }

  private attachNew (connection: GlassesConnection, restore: SessionSnapshot | undefined): ConnectResult | null {
    // The socket may have closed while the claim was asked.
    if (!connection.isOpen) return null
    return this.attachTo(this.create(connection.identity.userId, restore), connection)
  }

  private attachTo (session: UserSession, connection: GlassesConnection): ConnectResult {
    const outcome = session.attach(connection)
    this.wake(session.userId)
    return { session, outcome }
  }

  /** End a user's session. True once it is disposed; false when there was none. Concurrent calls share the disposal. */
  async dispose (userId: string, reason: DisposeReason): Promise<boolean> {
    // The lock covers the decision only; the disposal itself runs outside it, boxed so
    // the lock's promise chain does not adopt (and wait for) it.
    const started = await this.lock.run(userId, () => {
      const session = this.sessions.get(userId)
      if (session === undefined || session.state === 'disposed') return null
      return { disposal: session.dispose(reason) }
    })
    if (started === null) return false
    await started.disposal
    return true
  }

  /**
   * Stop taking sessions and dispose every one with `shutdown` (each closes its
   * socket 1001), `batchSize` at a time with `intervalMs` between batches, so a
   * fleet does not reconnect elsewhere all in the same instant. The pause shrinks
   * when the batches would not fit in the budget. Resolves with the number of
   * sessions still not disposed when the budget ran out.
   */
  async drain (budgetMs: number, pacing: { batchSize: number, intervalMs: number } = { batchSize: Infinity, intervalMs: 0 }): Promise<number> {
    this.draining = true
    const deadline = Date.now() + budgetMs
    const sessions = [...this.sessions.values()]
    const batches = Math.ceil(sessions.length / pacing.batchSize)
    // Leave half the budget for the last batch's disposal.
    const interval = batches > 1 ? Math.min(pacing.intervalMs, budgetMs / 2 / (batches - 1)) : 0
    const disposals: Array<Promise<void>> = []
    for (let start = 0; start < sessions.length; start += pacing.batchSize) {
      if (start > 0 && interval > 0) await new Promise(resolve => setTimeout(resolve, interval))
      for (const session of sessions.slice(start, start + pacing.batchSize)) {
        disposals.push((async () => {
          const started = await this.lock.run(session.userId, () => ({ disposal: session.dispose('shutdown') }))
          await started.disposal
        })())
      }
    }
    let timer: NodeJS.Timeout | undefined
    const outOfTime = new Promise<'timeout'>(resolve => { timer = setTimeout(() => resolve('timeout'), Math.max(0, deadline - Date.now())) })
    try {
      await Promise.race([Promise.all(disposals), outOfTime])
    } finally {
      clearTimeout(timer)
    }
    return this.sessions.size
  }

  private create (userId: string, restore?: SessionSnapshot): UserSession {
    const session = new UserSession({
      userId,
      restore,
      config: this.options.config,
      log: this.options.log,
      hooks: this.hooks,
      managerFactories: this.options.managerFactories ?? []
    })
    this.sessions.set(userId, session)
    return session
  }

  private async watch (userId: string, ms: number): Promise<void> {
    await new Promise<void>(resolve => {
      let watchers = this.watchers.get(userId)
      if (watchers === undefined) {
        watchers = new Set()
        this.watchers.set(userId, watchers)
      }
      const wake = (): void => {
        clearTimeout(timer)
        const set = this.watchers.get(userId)
        set?.delete(wake)
        if (set?.size === 0) this.watchers.delete(userId)
        resolve()
      }
      const timer = setTimeout(wake, ms)
      watchers.add(wake)
    })
  }

  private wake (userId: string): void {
    const watchers = this.watchers.get(userId)
    if (watchers === undefined) return
    for (const wake of [...watchers]) wake()
  }

  private async expire (session: UserSession, epoch: number): Promise<void> {
    const started = await this.lock.run(session.userId, () => ({ disposal: session.expireGrace(epoch) }))
    await started.disposal
  }
}
