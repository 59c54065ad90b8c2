/**
 * Sessions as small as they can be while looking, to the ownership layer,
 * `summarize()`, `sessionDetail()` and `snapshot()`, like a UserSession (its id,
 * state, times, counters, running apps): a million of them fit in memory. A
 * `FakeHost` holds one simulated node's sessions and plays the registry's part:
 * it is the `OwnershipHost`, serialises each user with the real `KeyedLock`,
 * and tells the ownership layer of every lifecycle event (`changed`, once per
 * event the real session emits) and of every disposal (`released`).
 */
import { performance } from 'node:perf_hooks'
import type { SessionData } from '../../sessions/session-snapshot.js'
import { KeyedLock } from '../../sessions/keyed-lock.js'
import type { DisposeReason, LifecycleEvent, SessionState } from '../../sessions/lifecycle.js'
import type { OwnershipHost } from '../../sessions/ownership.js'
import type { AppSnapshot, SessionSnapshot } from '../../sessions/session-snapshot.js'
import type { UserSession } from '../../sessions/user-session.js'

/** What the registry tells the ownership layer (or the old design's leases) about a session. */
export interface SessionEvents {
  /** One lifecycle event of a live session (created, attached, detached, resumed...). */
  changed: (session: FakeSession) => void
  /** The session was disposed (its user ended, or it moved to another node: `handover`). */
  released: (session: FakeSession, reason: DisposeReason) => void
}

const NO_EVENTS: SessionEvents = { changed: () => {}, released: () => {} }

/** Each session runs two apps, so summaries and snapshots carry what a typical one would. */
const APPS: readonly string[] = ['com.mentra.livecaptions', 'com.mentra.notes']
const NO_MANAGERS: readonly never[] = []
const NO_EVENTS_LOG: LifecycleEvent[] = []
/** A busy session streams audio (a 20 ms chunk each) and gets a transcript every few seconds: its counters move. */
const CHUNK_MS = 20
const TRANSCRIPT_MS = 4000
const CHUNK_BYTES = 640

export class FakeSession {
  state: SessionState = 'active'
  reconnections: number
  connectedAt: number | null = null
  disconnectedAt: number | null = null
  graceExpiresAt: number | null = null
  /** Connected time before the current connection (carried over on a move, too). */
  private connectedBefore: number
  /** Where it sits in its host's list: random picks and removal in O(1). */
  slot = -1

  constructor (readonly userId: string, readonly sessionInstanceId: string, readonly startedAt: number,
    readonly nodeId: string, readonly busy: boolean, restored: SessionSnapshot | null) {
    this.reconnections = restored?.reconnections ?? 0
    this.connectedBefore = restored?.connectedMs ?? 0
  }

  get isLive (): boolean { return this.state === 'active' || this.state === 'grace' }

  get times (): { startedAt: number, connectedAt: number | null, disconnectedAt: number | null, graceExpiresAt: number | null } {
    return { startedAt: this.startedAt, connectedAt: this.connectedAt, disconnectedAt: this.disconnectedAt, graceExpiresAt: this.graceExpiresAt }
  }

  /** The session's own stats, as `summarize()` reads them: this object answers for them. */
  get stats (): this { return this }

  get managers (): readonly never[] { return NO_MANAGERS }

  connectedMs (now = Date.now()): number {
    return this.connectedBefore + (this.state === 'active' && this.connectedAt !== null ? now - this.connectedAt : 0)
  }

  /** Derived from the clock, so a busy session's counters move with no timer per session. */
  counts (): SessionData {
    const age = Date.now() - this.startedAt
    const chunks = this.busy ? Math.floor(age / CHUNK_MS) : 150
    const transcripts = this.busy ? Math.floor(age / TRANSCRIPT_MS) : 3
    return { audioBytes: chunks * CHUNK_BYTES, audioChunks: chunks, transcripts, messagesIn: 40 + chunks + transcripts, messagesOut: 25 }
  }

  view (): { activeAppSessions: string[] } { return { activeAppSessions: [...APPS] } }

  recentEvents (): LifecycleEvent[] { return NO_EVENTS_LOG }

  snapshot (): SessionSnapshot {
    const apps: AppSnapshot[] = APPS.map(packageName => ({ packageName, appSessionId: `${this.userId}-${packageName}` }))
    return {
      userId: this.userId,
      sessionInstanceId: this.sessionInstanceId,
      startedAt: this.startedAt,
      reconnections: this.reconnections,
      state: this.state === 'grace' ? 'grace' : 'active',
      data: this.counts(),
      connectedMs: this.connectedMs(),
      apps
    }
  }

  /** Ends at once, but reports it a turn later, as the real (asynchronous) disposal does. */
  async dispose (reason: DisposeReason): Promise<void> {
    if (this.state === 'disposing' || this.state === 'disposed') return
    this.state = 'disposing'
    await Promise.resolve()
    this.state = 'disposed'
    this.onDisposed?.(this, reason)
  }

  /** Set by the host that holds the session. */
  onDisposed: ((session: FakeSession, reason: DisposeReason) => void) | undefined

  /** The view the ownership layer is typed against: it only reads what this class provides. */
  asUserSession (): UserSession { return this as unknown as UserSession }
}

/** How long the host's sweeps over all its sessions (the ownership's timers iterate `all()`) took. */
export interface SweepFigures { sweeps: number, sessions: number, totalMs: number, maxMs: number }

export class FakeHost implements OwnershipHost {
  private readonly byUser = new Map<string, FakeSession>()
  private readonly list: FakeSession[] = []
  private readonly lock = new KeyedLock()
  private readonly sweepFigures: SweepFigures = { sweeps: 0, sessions: 0, totalMs: 0, maxMs: 0 }
  /** Set once the design's layer for this node exists. */
  events: SessionEvents = NO_EVENTS
  /** One function for every session of this host, rather than a closure each. */
  private readonly disposed = (session: FakeSession, reason: DisposeReason): void => { this.removed(session, reason) }

  constructor (readonly nodeId: string, private readonly gracePeriodMs: number) {}

  get size (): number { return this.list.length }

  // ---- OwnershipHost ----

  local (userId: string): UserSession | undefined {
    const session = this.byUser.get(userId)
    return session?.isLive === true ? session.asUserSession() : undefined
  }

  /**
   * Every session, timed from the first to the last one handed out (the consumers' loops are synchronous).
   * One result object serves the whole walk: a generator would make a garbage object per session per
   * sweep, and ten nodes sweeping a hundred thousand sessions each second would time the collector, not them.
   */
  all (): Iterable<UserSession> {
    const list = this.list
    const figures = this.sweepFigures
    return {
      [Symbol.iterator]: () => {
        const started = performance.now()
        const result: { done: boolean, value: UserSession | undefined } = { done: false, value: undefined }
        let index = 0
        return {
          next: (): IteratorResult<UserSession> => {
            if (index < list.length) {
              result.value = (list[index++] as FakeSession).asUserSession()
            } else if (!result.done) {
              const ms = performance.now() - started
              figures.sweeps += 1
              figures.sessions += index
              figures.totalMs += ms
              figures.maxMs = Math.max(figures.maxMs, ms)
              result.done = true
              result.value = undefined
            }
            return result as IteratorResult<UserSession>
          }
        }
      }
    }
  }

  async locked<T> (userId: string, task: () => T | Promise<T>): Promise<T> { return await this.lock.run(userId, task) }

  async end (userId: string, reason: DisposeReason): Promise<boolean> {
    const session = await this.lock.run(userId, () => this.byUser.get(userId))
    if (session === undefined || !session.isLive) return false
    await session.dispose(reason)
    return true
  }

  // ---- the registry's part ----

  /** A session for a socket that just connected here (new, or resumed from another node's snapshot): created, then attached. */
  create (userId: string, restore: SessionSnapshot | null, busy: boolean, sessionInstanceId: string): FakeSession {
    const now = Date.now()
    const session = new FakeSession(userId, restore?.sessionInstanceId ?? sessionInstanceId, restore?.startedAt ?? now, this.nodeId, busy, restore)
    session.connectedAt = now
    session.onDisposed = this.disposed
    const previous = this.byUser.get(userId)
    if (previous !== undefined) this.unlist(previous)
    this.byUser.set(userId, session)
    session.slot = this.list.length
    this.list.push(session)
    // `session.created` is emitted before the registry holds the session; `session.attached` reaches the ownership.
    this.events.changed(session)
    return session
  }

  /** The glasses dropped: grace. One event (`session.detached`). */
  drop (session: FakeSession): void {
    if (session.state !== 'active') return
    const now = Date.now()
    session.connectedAt ??= now
    session.state = 'grace'
    session.disconnectedAt = now
    session.graceExpiresAt = now + this.gracePeriodMs
    this.events.changed(session)
  }

  /** The glasses came back within grace. Two events (`session.resumed`, `session.attached`), as the real session emits. */
  resume (session: FakeSession): void {
    if (session.state !== 'grace' || this.byUser.get(session.userId) !== session) return
    session.state = 'active'
    session.reconnections += 1
    session.connectedAt = Date.now()
    session.graceExpiresAt = null
    this.events.changed(session)
    this.events.changed(session)
  }

  /** A random session of this node, live or not. */
  random (): FakeSession | undefined {
    return this.list.length === 0 ? undefined : this.list[Math.floor(Math.random() * this.list.length)]
  }

  /** A copy of the live sessions (the old design's rounds went over `all().filter(isLive)`). */
  liveSessions (): FakeSession[] { return this.list.filter(session => session.isLive) }

  holds (session: FakeSession): boolean { return this.byUser.get(session.userId) === session }

  counts (): { active: number, grace: number } {
    let active = 0
    let grace = 0
    for (const session of this.list) {
      if (session.state === 'active') active += 1
      else if (session.state === 'grace') grace += 1
    }
    return { active, grace }
  }

  /** The sweep figures since the last call. */
  takeSweeps (): SweepFigures {
    const figures = { ...this.sweepFigures }
    Object.assign(this.sweepFigures, { sweeps: 0, sessions: 0, totalMs: 0, maxMs: 0 })
    return figures
  }

  private removed (session: FakeSession, reason: DisposeReason): void {
    if (this.byUser.get(session.userId) === session) {
      this.byUser.delete(session.userId)
      this.unlist(session)
    }
    this.events.released(session, reason)
  }

  private unlist (session: FakeSession): void {
    if (this.list[session.slot] !== session) return
    const last = this.list.pop() as FakeSession
    if (last !== session) {
      this.list[session.slot] = last
      last.slot = session.slot
    }
    session.slot = -1
  }
}
