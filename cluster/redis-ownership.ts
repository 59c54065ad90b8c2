/**
 * Ownership across nodes on Redis (docs/ARCHITECTURE.md "Cluster mode"): one session
 * per user cluster-wide. This node claims a user before taking its socket, asks
 * the owner to hand the session over when another live node holds it, takes it
 * from a node whose liveness lapsed, writes a session when it changes (never
 * while it idles), renews this node's liveness, settles dead nodes' users, and
 * answers other nodes' requests for its sessions. It knows nothing of Fastify.
 */
import type { Log } from '../sessions/log.js'
import type { DirectoryOperation, DirectoryOutcome, NodeEvents } from '../sessions/node-events.js'
import { DISPOSE_POLICY, type DisposeReason } from '../sessions/lifecycle.js'
import {
  DirectoryUnavailableError, SessionMovingError, type NodeInfo, type Ownership, type OwnershipHost, type RequestHandler, type SessionPage, type SessionPageQuery
} from '../sessions/ownership.js'
import type { UserStore } from '../sessions/user-store.js'
import { positionUser, sessionPosition } from '../sessions/session-position.js'
import type { SessionSnapshot } from '../sessions/session-snapshot.js'
import { sessionDetail, summarize, type SessionDetail } from '../sessions/summary.js'
import type { UserSession } from '../sessions/user-session.js'
import type { Summary } from '../protocol/admin.js'
import { inBatches } from './bounded.js'
import { NO_ANSWER, RemoteRequestError, type ClusterRpc } from './cluster-rpc.js'
import { newIncarnation, type OwnerRecord, type OwnershipStore, type SessionWrite } from './ownership-store.js'
import { isoNow } from '../protocol/timestamp.js'

export interface RedisOwnershipOptions {
  nodeId: string
  publicUrl: () => string
  /** A node whose liveness was not renewed for this long is dead: its users can be taken. */
  leaseTtlMs: number
  /** How long a request to another node may take before that node counts as silent. */
  handoverTimeoutMs: number
  /** How long a dead node's sessions (and a moved session's state) are kept for a reconnect elsewhere. */
  gracePeriodMs: number
  /** Counters that moved (transcripts, audio) are written this often; pings alone never cause a write. */
  countersWriteMs: number
  log: Log
  /** Told of every Redis operation and request to another node (metrics). */
  events: NodeEvents
}

/** The owner's answer to a handover: the session's state, or `busy` while its own upgrade of the user is in flight. */
interface HandoverReply { snapshot: SessionSnapshot | null, busy?: boolean }

/** A claim made before an upgrade, waiting for its socket (`restore` undefined while the claim is in flight). */
interface PendingClaim { restore: SessionSnapshot | null | undefined, at: number }

/** How long a claim made before an upgrade waits for that upgrade to finish. */
const PENDING_CLAIM_MS = 10_000
/** How often an asker tries again while the owner's own upgrade of the user is in flight. */
const BUSY_RETRY_MS = 25
/** How long start waits for this node's request channel before serving anyway (Redis may be away). */
const SUBSCRIBE_WAIT_MS = 3000
/** Other nodes' changes reach the admin feeds at most this often. */
const REMOTE_CHANGES_MS = 250
/** Dead nodes are looked for every this many liveness renewals. */
const REAP_EVERY_TICKS = 3
/** Redis operations one burst (writes, re-assertions, settling) keeps in flight at most. */
const BURST_LIMIT = 256
/** How long one node alone settles a dead node's users before another may (idempotent if both do). */
const REAPER_LOCK_MS = 60_000
/** Positions of expired sessions dropped from the index per tick. */
const EXPIRED_BATCH = 500

const NO_HOST: OwnershipHost = {
  local: () => undefined,
  all: () => [],
  locked: async (_userId, task) => await task(),
  end: async () => false
}

const countersOf = (update: SessionWrite): string => `${update.summary.data.transcripts}:${update.summary.data.audioChunks}`

const delay = async (ms: number): Promise<void> => { await new Promise(resolve => setTimeout(resolve, ms)) }

export class RedisOwnership implements Ownership {
  /** This node's token per user it owns (or is about to). */
  private readonly tokens = new Map<string, string>()
  /** Users this node has added to its users set (written once per claim). */
  private readonly held = new Set<string>()
  private readonly pending = new Map<string, PendingClaim>()
  /** Sessions changed since the last write, written together on the next turn of the event loop. */
  private readonly dirty = new Map<string, UserSession>()
  private flushQueued = false
  /** Users whose write was refused or failed: settled again at the next renewal. */
  private readonly suspects = new Set<string>()
  /** What each session's counters stood at when last written (`transcripts:audioChunks`). */
  private readonly writtenCounters = new Map<string, string>()
  private lastCountersSweep = Date.now()
  private readonly inFlight = new Set<Promise<unknown>>()
  private readonly listeners = new Set<() => void>()
  private host: OwnershipHost = NO_HOST
  private incarnation = newIncarnation()
  private renewed = false
  private tickRunning = false
  /** Long bursts run beside the renewals, never inside them: a renewal must not wait on them and lapse. */
  private reasserting = false
  private reaping = false
  /** This node's users from before it started (a restart under the same NODE_ID) are settled once. */
  private settledEarlier = false
  private ticks = 0
  /** The Redis servers' run ids at the last renewal (see OwnershipStore.fingerprint). */
  private fingerprint: string | null = null
  /**
   * Until then a missing liveness key proves no node dead: Redis lost its data (a restart or a failover,
   * seen at a renewal or when an owner looked dead), and every live node writes its key again within one lease.
   */
  private livenessUnknownUntil = 0
  private timer: NodeJS.Timeout | null = null
  private ticking: Promise<void> = Promise.resolve()
  private remoteTimer: NodeJS.Timeout | null = null
  /** Unknown until Redis first answers: /ready stays 503 until then. */
  private unreachable = true

  constructor (private readonly store: OwnershipStore, readonly userStore: UserStore, private readonly rpc: ClusterRpc,
    private readonly options: RedisOwnershipOptions) {}

  get nodeId (): string { return this.options.nodeId }

  get healthy (): boolean { return !this.unreachable }

  async start (host: OwnershipHost): Promise<void> {
    this.host = host
    this.rpc.handle('handover', async params => {
      const { userId, final } = params as { userId: string, final: boolean }
      return await this.giveUp(userId, final)
    })
    this.rpc.handle('detail', async params => {
      const session = host.local((params as { userId: string }).userId)
      return session === undefined ? null : sessionDetail(session)
    })
    this.rpc.handle('delete', async params => await host.end((params as { userId: string }).userId, 'manual'))
    this.rpc.handle('yield', async params => await this.yieldIfIdle((params as { userId: string }).userId))
    this.rpc.onAnnouncement(() => { this.remoteChanged() })
    // Neither waits long for Redis: a node that starts while Redis is away serves (degraded) and catches up.
    const subscribed = this.rpc.start().then(() => true, (error: unknown) => {
      this.options.log.warn({ err: error }, 'cluster requests not subscribed yet')
      return false
    })
    await Promise.race([subscribed, delay(SUBSCRIBE_WAIT_MS)])
    this.timer = setInterval(() => {
      // A renewal still running (Redis slow or away) is not stacked on.
      if (!this.tickRunning) this.ticking = this.tick()
    }, Math.max(50, Math.floor(this.options.leaseTtlMs / 3)))
    this.timer.unref()
    // Claims name this node's incarnation: it must be live in Redis before the first one.
    this.ticking = this.tick()
    await this.ticking
  }

  async stop (): Promise<void> {
    if (this.timer !== null) clearInterval(this.timer)
    this.timer = null
    if (this.remoteTimer !== null) clearTimeout(this.remoteTimer)
    // A renewal in flight would announce this node again after it retired.
    await this.ticking
    await Promise.allSettled([...this.inFlight])
    await this.guard('liveness', async () => { await this.store.retire() }).catch(() => {})
  }

  async prepare (userId: string): Promise<void> {
    await this.host.locked(userId, async () => {
      if (this.host.local(userId) !== undefined) return
      const now = Date.now()
      for (const [user, claim] of this.pending) if (now - claim.at > PENDING_CLAIM_MS) this.pending.delete(user)
      const claim: PendingClaim = { restore: undefined, at: now }
      // Marked before the claim is made: an owner asked meanwhile answers `busy`, not "nothing here".
      this.pending.set(userId, claim)
      try {
        claim.restore = await this.acquire(userId)
      } catch (error) {
        if (this.pending.get(userId) === claim) this.pending.delete(userId)
        throw error
      }
    })
  }

  claim (userId: string): SessionSnapshot | null | Promise<SessionSnapshot | null> {
    const claim = this.pending.get(userId)
    this.pending.delete(userId)
    // Without a claim from before the upgrade (a newer connection took it meanwhile), claim now.
    if (claim?.restore !== undefined && this.tokens.has(userId)) return claim.restore
    return this.acquire(userId)
  }

  changed (session: UserSession): void {
    if (!session.isLive || !this.tokens.has(session.userId)) return
    this.dirty.set(session.userId, session)
    if (this.flushQueued) return
    this.flushQueued = true
    setImmediate(() => { this.track(this.flush()) })
  }

  released (session: UserSession, reason: DisposeReason): void {
    this.dirty.delete(session.userId)
    this.writtenCounters.delete(session.userId)
    this.suspects.delete(session.userId)
    const token = this.tokens.get(session.userId)
    if (token === undefined) return
    this.tokens.delete(session.userId)
    // A session that moved keeps its state for the node it moved to; one that ended leaves nothing.
    this.track(this.letGo(session.userId, token, DISPOSE_POLICY[reason].stateKept).catch((error: unknown) => {
      this.options.log.warn({ err: error, userId: session.userId }, 'could not release a user; a claim elsewhere takes it over')
    }))
  }

  async page (query: SessionPageQuery): Promise<SessionPage> {
    const states = query.state === undefined ? ['active', 'grace'] as const : [query.state]
    const [lists, counts] = await this.guard('page', async () => await Promise.all([
      Promise.all(states.map(async state => await this.store.positions(state, query.after, query.limit + 1))),
      this.store.counts()
    ]))
    const positions = lists.flat().sort().slice(0, query.limit + 1)
    const shown = positions.slice(0, query.limit)
    const now = Date.now()
    const summaries = await this.guard('page', async () => await Promise.all(shown.map(async position => {
      const userId = positionUser(position)
      const session = this.host.local(userId)
      if (session !== undefined && sessionPosition(session.startedAt, session.sessionInstanceId, userId) === position) return summarize(session, now)
      const stored = await this.store.stored(userId)
      // An entry whose record is gone or names another session: a leftover, not shown.
      return stored === null || sessionPosition(Date.parse(stored.summary.startedAt), stored.summary.sessionInstanceId, userId) !== position
        ? null
        : { ...stored.summary, nodeId: stored.nodeId }
    })))
    return {
      sessions: summaries.filter((s): s is Summary => s !== null && (query.state === undefined || s.state === query.state)),
      next: positions.length > query.limit ? shown[shown.length - 1] ?? null : null,
      counts: { ...counts, total: counts.active + counts.grace }
    }
  }

  async detail (userId: string): Promise<SessionDetail | null> {
    const session = this.host.local(userId)
    if (session !== undefined) return sessionDetail(session)
    const owner = await this.guard('owner', async () => await this.store.owner(userId))
    if (owner === null || owner.nodeId === '' || owner.nodeId === this.nodeId) return null
    if (await this.isAlive(owner)) {
      const detail = await this.guard('detail', async () => await this.rpc.request<SessionDetail | null>(owner.nodeId, 'detail', { userId }, this.options.handoverTimeoutMs))
        .catch((error: unknown): typeof NO_ANSWER => this.failedAsSilent(error, userId))
      if (detail !== NO_ANSWER && detail !== null) return detail
    }
    // The owner is silent, failed or dead: the last summary written, without live manager state.
    const stored = await this.guard('owner', async () => await this.store.stored(userId))
    return stored === null ? null : { ...stored.summary, nodeId: stored.nodeId, managers: {}, events: [] }
  }

  async end (userId: string): Promise<boolean> {
    if (await this.host.end(userId, 'manual')) return true
    const owner = await this.guard('owner', async () => await this.store.owner(userId))
    if (owner === null || owner.nodeId === '') return false
    if (owner.nodeId !== this.nodeId && await this.isAlive(owner)) {
      const ended = await this.guard('delete', async () => await this.rpc.request<boolean>(owner.nodeId, 'delete', { userId }, this.options.handoverTimeoutMs))
        .catch((error: unknown): typeof NO_ANSWER => this.failedAsSilent(error, userId))
      if (ended !== NO_ANSWER) return ended
    }
    // Silent or dead owner (or a leftover of this node): end it in Redis; a woken owner finds it revoked.
    const revoked = await this.guard('revoke', async () => await this.store.revoke(userId, 3 * this.options.leaseTtlMs))
    if (revoked.placement !== null) await this.store.unplace(revoked.placement)
    if (revoked.nodeId !== '') await this.store.dropUser(revoked.nodeId, userId)
    this.rpc.announce()
    return revoked.existed
  }

  async nodes (): Promise<NodeInfo[]> {
    const listed = await this.guard('nodes', async () => await this.store.listedNodes())
    return listed.flatMap(({ nodeId, text }) => {
      if (text === null) return []
      const info = JSON.parse(text.slice(text.indexOf('|') + 1)) as Omit<NodeInfo, 'nodeId'>
      return [{ ...info, nodeId }]
    })
  }

  serve (method: string, handler: RequestHandler): void { this.rpc.handle(method, handler) }

  async forward<T> (userId: string, method: string, params: unknown, timeoutMs: number): Promise<T | null> {
    const owner = await this.guard('owner', async () => await this.store.owner(userId))
    if (owner === null || owner.nodeId === '' || owner.nodeId === this.nodeId) return null
    const answer = await this.guard('forward', async () => await this.rpc.request<T>(owner.nodeId, method, params, timeoutMs))
    return answer === NO_ANSWER ? null : answer
  }

  onChange (listener: () => void): () => void {
    this.listeners.add(listener)
    return () => { this.listeners.delete(listener) }
  }

  // ---- claiming ----

  /**
   * Make this node the owner of the user (call under the user's lock). Returns the state to resume
   * from: the previous owner's, when it handed the session over or died with its state in Redis.
   */
  private async acquire (userId: string): Promise<SessionSnapshot | null> {
    // Until this node's liveness is in Redis, others would take its claims for a dead node's.
    if (!this.renewed) throw new DirectoryUnavailableError(new Error('this node is not live in Redis yet'))
    const deadline = Date.now() + this.options.handoverTimeoutMs
    for (let attempt = 0; ; attempt += 1) {
      if (attempt > 0 && Date.now() > deadline) throw new SessionMovingError('the session did not come free in time')
      const claim = await this.guard('claim', async () => await this.store.claim(userId, this.incarnation))
      if (claim.ok) return await this.granted(userId, claim.token, null)
      const owner = claim.owner
      if (!await this.isAlive(owner)) {
        const token = await this.guard('takeover', async () => await this.store.takeover(userId, this.incarnation, owner))
        if (token !== null) return await this.granted(userId, token, null)
        continue
      }
      const final = Date.now() + BUSY_RETRY_MS >= deadline
      const reply = await this.guard('handover', async () => await this.rpc.request<HandoverReply>(owner.nodeId, 'handover', { userId, final }, Math.max(50, deadline - Date.now())))
        .catch((error: unknown) => {
          // The owner failed to hand over: the user may retry, as when it is silent.
          if (error instanceof RemoteRequestError) throw new SessionMovingError(error.message)
          throw error
        })
      if (reply === NO_ANSWER) throw new SessionMovingError(`node ${owner.nodeId} holds the session and does not answer`)
      if (reply.busy === true) {
        // The owner is attaching a socket of this user right now: once it has, it hands that session over.
        await delay(BUSY_RETRY_MS)
        continue
      }
      const second = await this.guard('claim', async () => await this.store.claim(userId, this.incarnation))
      if (!second.ok) throw new SessionMovingError(`node ${second.owner.nodeId} took the session meanwhile`)
      return await this.granted(userId, second.token, reply)
    }
  }

  private async granted (userId: string, token: string, handedOver: HandoverReply | null): Promise<SessionSnapshot | null> {
    this.tokens.set(userId, token)
    const restore = handedOver !== null ? handedOver.snapshot : await this.guard('last_state', async () => await this.store.lastState(userId))
    // Another node's handover request may have taken the claim back while we awaited.
    if (this.tokens.get(userId) !== token) throw new SessionMovingError('the claim was handed to another node meanwhile')
    return restore
  }

  /**
   * True while the node named in a record runs the incarnation that wrote it. Within a lease of Redis
   * losing its data no key proves a node dead (its key is gone and, once written again, names a new
   * incarnation until its users are written again too): then every owner counts as alive, and the
   * caller asks it, which a dead node does not answer.
   */
  private async isAlive (owner: OwnerRecord): Promise<boolean> {
    if (this.livenessUnknown()) return true
    const live = await this.guard('owner', async () => await this.store.incarnation(owner.nodeId))
    if (live !== null && live === owner.incarnation) return true
    // It looks dead. A node that wakes from a pause may get here before its first renewal tells it that
    // Redis lost its data meanwhile: ask Redis now, on this rare path only.
    return await this.restartedSinceRenewal()
  }

  private livenessUnknown (): boolean { return Date.now() < this.livenessUnknownUntil }

  /** True (and no node judged dead for a lease from now) when the Redis servers' run ids changed since the last renewal. */
  private async restartedSinceRenewal (): Promise<boolean> {
    const fingerprint = await this.guard('liveness', async () => await this.store.fingerprint())
    if (this.fingerprint === null || fingerprint === this.fingerprint) return false
    // The renewal still sees the change, and writes this node's users again.
    this.livenessUnknownUntil = Date.now() + this.options.leaseTtlMs
    return true
  }

  /** The owner side of a handover: snapshot, close the glasses 4001, leave apps in place, let the user go. */
  private async giveUp (userId: string, final: boolean): Promise<HandoverReply> {
    const host = this.host
    if (host.local(userId) === undefined) {
      // An upgrade of the user is in flight here (its task may hold the user's lock while it asks us in
      // turn, so no waiting for the lock): the asker tries again until that socket has its session, and
      // then takes it over, as two sockets on one node would end. On its last try we give the claim up.
      if (!final && this.pending.has(userId)) return { snapshot: null, busy: true }
      return await this.giveUpClaim(userId)
    }
    return await host.locked(userId, async () => {
      const session = host.local(userId)
      if (session === undefined) return await this.giveUpClaim(userId)
      const snapshot = session.snapshot()
      void session.dispose('handover')
      await this.releaseNow(userId, true)
      return { snapshot }
    })
  }

  /** Give up a claim with no session behind it (the upgrade that made it claims again). */
  private async giveUpClaim (userId: string): Promise<HandoverReply> {
    this.pending.delete(userId)
    if (this.tokens.has(userId)) {
      await this.releaseNow(userId, true)
    } else {
      // A claim this node made but never learned of (its command timed out, then ran).
      const placement = await this.store.dropIdle(userId)
      if (placement !== null) await this.store.unplace(placement)
    }
    return { snapshot: await this.store.lastState(userId) }
  }

  private async releaseNow (userId: string, keepState: boolean): Promise<void> {
    const token = this.tokens.get(userId)
    if (token === undefined) return
    this.tokens.delete(userId)
    this.dirty.delete(userId)
    await this.letGo(userId, token, keepState)
  }

  private async letGo (userId: string, token: string, keepState: boolean): Promise<void> {
    const placement = await this.guard('release', async () => await this.store.release(userId, token, keepState, this.options.gracePeriodMs + this.options.leaseTtlMs))
    const work: Array<Promise<unknown>> = []
    if (placement !== null) work.push(this.store.unplace(placement))
    if (this.held.delete(userId)) work.push(this.store.dropUser(this.nodeId, userId))
    await Promise.all(work)
    this.rpc.announce()
    this.localChanged()
  }

  /** Another node asks us to give back a claim of ours that has no session behind it. */
  private async yieldIfIdle (userId: string): Promise<boolean> {
    if (this.host.local(userId) !== undefined || this.pending.has(userId)) return false
    const owner = await this.store.owner(userId)
    if (owner?.nodeId !== this.nodeId) return owner === null
    if (this.tokens.has(userId)) {
      await this.releaseNow(userId, true)
      return true
    }
    const placement = await this.store.dropIdle(userId)
    if (placement !== null) await this.store.unplace(placement)
    return placement !== null
  }

  // ---- writing on change ----

  private sessionWrite (session: UserSession, token: string): SessionWrite {
    return {
      userId: session.userId,
      token,
      state: session.state === 'grace' ? 'grace' : 'active',
      position: sessionPosition(session.startedAt, session.sessionInstanceId, session.userId),
      summary: summarize(session),
      snapshot: session.snapshot()
    }
  }

  private async flush (): Promise<void> {
    this.flushQueued = false
    const sessions = [...this.dirty.values()]
    this.dirty.clear()
    if (sessions.length === 0) return
    await inBatches(sessions, BURST_LIMIT, async session => { await this.write(session) })
    this.rpc.announce()
    this.localChanged()
  }

  private async write (session: UserSession): Promise<void> {
    const token = this.tokens.get(session.userId)
    if (token === undefined || !session.isLive) return
    const update = this.sessionWrite(session, token)
    this.writtenCounters.set(session.userId, countersOf(update))
    try {
      const written = await this.guard('write', async () => await this.store.write(update))
      if (written === null) {
        void this.contest(session.userId)
        return
      }
      const previous = written.previous
      const work: Array<Promise<unknown>> = []
      if (previous?.position !== update.position || previous.state !== update.state) work.push(this.store.place(update.position, update.state, previous))
      if (!this.held.has(session.userId)) {
        this.held.add(session.userId)
        work.push(this.store.holdUser(session.userId))
      }
      await Promise.all(work)
    } catch (error) {
      // Redis away: written again at the next renewal that reaches it.
      this.suspects.add(session.userId)
      this.options.log.debug({ err: error, userId: session.userId }, 'could not write a session yet')
    }
  }

  /**
   * Our token was refused: another node claimed the user. If that node really has the session (the
   * user connected there), our copy is stale and is dropped. A claim with no session behind it (one
   * that timed out on its node while Redis was paused, then ran) is given back, and we keep serving.
   */
  private async contest (userId: string): Promise<void> {
    await this.host.locked(userId, async () => {
      const session = this.host.local(userId)
      if (session === undefined) return
      try {
        let owner = await this.guard('owner', async () => await this.store.owner(userId))
        if (owner?.nodeId === '') {
          // Ended by an admin through another node while this one was silent: end it as a delete here
          // would (4002, apps told), not as a move.
          this.tokens.delete(userId)
          this.options.log.warn({ userId }, 'session revoked by an admin: ending the local copy')
          void session.dispose('manual')
          return
        }
        if (owner === null || owner.nodeId === this.nodeId) {
          // Nobody else holds it (Redis lost it, or it is ours under another token): ours again.
          const claim = await this.guard('claim', async () => await this.store.claim(userId, this.incarnation))
          if (claim.ok) return this.keep(session, claim.token)
          owner = claim.owner
        }
        if (!await this.isAlive(owner)) {
          const token = await this.guard('takeover', async () => await this.store.takeover(userId, this.incarnation, owner))
          if (token !== null) return this.keep(session, token)
          this.suspects.add(userId)
          return
        }
        const holder = owner.nodeId
        const answer = await this.guard('yield', async () => await this.rpc.request<boolean>(holder, 'yield', { userId }, this.options.handoverTimeoutMs))
        if (answer === NO_ANSWER) {
          // A busy or dead holder proves nothing: keep serving and ask again at the next renewal.
          this.options.log.warn({ userId, owner: holder }, 'claim refused and its holder does not answer: still serving, asking again')
          this.suspects.add(userId)
          return
        }
        if (answer) {
          const claim = await this.guard('claim', async () => await this.store.claim(userId, this.incarnation))
          if (claim.ok) return this.keep(session, claim.token)
        }
      } catch (error) {
        // Unsure (Redis away, or the holder failed the request): keep serving; the next renewal asks again.
        this.options.log.warn({ err: error, userId }, 'could not settle a refused claim yet')
        this.suspects.add(userId)
        return
      }
      this.tokens.delete(userId)
      this.held.delete(userId)
      this.options.log.warn({ userId }, 'user lost to another node: dropping the local copy')
      void session.dispose('handover')
    })
  }

  private keep (session: UserSession, token: string): void {
    this.tokens.set(session.userId, token)
    this.held.delete(session.userId)
    this.changed(session)
  }

  // ---- liveness ----

  /**
   * Renew this node's liveness. After a lapse, or when Redis restarted or failed over (its data may be gone),
   * write every user of ours again under a new incarnation, or drop those another node took meanwhile.
   */
  private async tick (): Promise<void> {
    this.tickRunning = true
    try {
      let active = 0
      let grace = 0
      for (const session of this.host.all()) {
        if (session.state === 'active') active += 1
        else if (session.state === 'grace') grace += 1
      }
      const info = JSON.stringify({ publicUrl: this.options.publicUrl(), active, grace, at: isoNow() })
      // The first renewal keeps the incarnation claims may already carry.
      const next = this.renewed ? newIncarnation() : this.incarnation
      const renewal = await this.guard('liveness', async () => await this.store.renew(this.incarnation, next, info, this.options.leaseTtlMs))
      if (renewal === 2) {
        this.options.log.warn({ nodeId: this.nodeId }, 'this NODE_ID was live under another incarnation: a restart within the lease, or two processes sharing a NODE_ID (ids must be unique)')
      }
      const fingerprint = await this.guard('liveness', async () => await this.store.fingerprint())
      const restarted = this.fingerprint !== null && fingerprint !== this.fingerprint
      this.fingerprint = fingerprint
      if (restarted) this.livenessUnknownUntil = Date.now() + this.options.leaseTtlMs
      // The renewal wrote `next` when the key had lapsed (or held another incarnation).
      if (renewal !== 0) this.incarnation = next
      if ((renewal !== 0 || restarted) && this.renewed) {
        this.options.log.warn({ lapsed: renewal !== 0, restarted }, 'liveness lapsed or Redis restarted: writing this node\'s users again')
        this.background('reasserting', async () => { await this.reassertAll() })
      }
      this.renewed = true
      for (const userId of [...this.suspects]) {
        this.suspects.delete(userId)
        const session = this.host.local(userId)
        if (session !== undefined) this.changed(session)
      }
      if (Date.now() - this.lastCountersSweep >= this.options.countersWriteMs) this.writeMovedCounters()
      if (this.ticks++ % REAP_EVERY_TICKS === 0) this.background('reaping', async () => { await this.reap() })
    } catch (error) {
      this.options.log.warn({ err: error }, 'liveness renewal failed')
    } finally {
      this.tickRunning = false
    }
  }

  /** Run a burst beside the renewals, one of each kind at a time. */
  private background (kind: 'reasserting' | 'reaping', work: () => Promise<void>): void {
    if (this[kind]) return
    this[kind] = true
    this.track(work().catch((error: unknown) => {
      this.options.log.warn({ err: error, kind }, 'cluster background work failed; retried at a later renewal')
    }).finally(() => { this[kind] = false }))
  }

  /** Sessions whose transcripts or audio moved since they were last written are written now. */
  private writeMovedCounters (): void {
    this.lastCountersSweep = Date.now()
    for (const session of this.host.all()) {
      if (!session.isLive || !this.tokens.has(session.userId)) continue
      const data = session.stats.counts()
      if (this.writtenCounters.get(session.userId) !== `${data.transcripts}:${data.audioChunks}`) this.changed(session)
    }
  }

  private async reassertAll (): Promise<void> {
    const sessions = [...this.host.all()].filter(session => session.isLive && this.tokens.has(session.userId))
    await inBatches(sessions, BURST_LIMIT, async session => {
      const update = this.sessionWrite(session, this.tokens.get(session.userId) ?? '')
      try {
        const outcome = await this.guard('reassert', async () => await this.store.reassert(update, this.incarnation))
        if (outcome === 'lost') {
          void this.contest(session.userId)
          return
        }
        // Kept or re-created: the index and the node's set of users may have gone with the data.
        this.held.add(session.userId)
        await Promise.all([this.store.place(update.position, update.state, null), this.store.holdUser(session.userId)])
      } catch {
        this.suspects.add(session.userId)
      }
    })
  }

  /** Settle the users of dead nodes (and of this node's earlier incarnations), then drop expired index entries. */
  private async reap (): Promise<void> {
    const listed = await this.guard('reap', async () => await this.store.listedNodes())
    if (!this.settledEarlier) {
      await this.settle(this.nodeId, this.incarnation)
      this.settledEarlier = true
    }
    for (const { nodeId, text } of listed) {
      if (text !== null || nodeId === this.nodeId || this.livenessUnknown()) continue
      if (!await this.store.lockReaper(nodeId, Math.max(REAPER_LOCK_MS, 3 * this.options.leaseTtlMs))) continue
      await this.settle(nodeId, '')
      await this.store.forgetNode(nodeId)
    }
    for (const position of await this.store.expired(EXPIRED_BATCH)) {
      // Still there under the same position: reconnected and taken over since; otherwise gone.
      if (await this.store.positionOf(positionUser(position)) !== position) await this.store.unplace({ position, state: '' })
      await this.store.forgetExpired(position)
    }
  }

  /** A dead incarnation's users turn to grace, kept for a reconnect elsewhere for the grace period. */
  private async settle (nodeId: string, liveIncarnation: string): Promise<void> {
    let cursor = '0'
    let settled = 0
    do {
      const [next, users] = await this.store.usersOf(nodeId, cursor)
      cursor = next
      await inBatches(users, BURST_LIMIT, async userId => {
        if (nodeId === this.nodeId && this.tokens.has(userId)) return
        const placement = await this.guard('reap', async () => await this.store.reap(userId, nodeId, liveIncarnation, this.options.gracePeriodMs))
        if (placement === null) return
        settled += 1
        await Promise.all([
          this.store.place(placement.position, 'grace', placement),
          this.store.expire(placement.position, Date.now() + this.options.gracePeriodMs),
          this.store.dropUser(nodeId, userId)
        ])
      })
    } while (cursor !== '0')
    if (settled > 0) {
      this.options.log.info({ nodeId, settled }, 'sessions of a dead node kept in grace for a reconnect elsewhere')
      this.rpc.announce()
      this.localChanged()
    }
  }

  // ---- plumbing ----

  private track (work: Promise<unknown>): void {
    this.inFlight.add(work)
    void work.finally(() => this.inFlight.delete(work))
  }

  private localChanged (): void {
    for (const listener of this.listeners) listener()
  }

  private remoteChanged (): void {
    this.remoteTimer ??= setTimeout(() => {
      this.remoteTimer = null
      this.localChanged()
    }, REMOTE_CHANGES_MS)
  }

  /** An owner that answered an admin request with its own error is treated as silent; anything else is thrown on. */
  private failedAsSilent (error: unknown, userId: string): typeof NO_ANSWER {
    if (!(error instanceof RemoteRequestError)) throw error
    this.options.log.warn({ err: error, userId }, 'the owner of a session failed an admin request: answering without it')
    return NO_ANSWER
  }

  /**
   * Run a Redis operation (or a request to another node over Redis), counted by name; a connection
   * failure marks the store unreachable and throws DirectoryUnavailableError.
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
    this.options.events.emit('directory.operation', name, outcome, (performance.now() - started) / 1000)
  }
}
