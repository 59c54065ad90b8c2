/**
 * One user's session: the lifecycle state machine of DESIGN.md, composing the
 * managers. Transitions are the only place state changes, and each emits one
 * lifecycle event. No Fastify here: the session only knows sockets, managers
 * and the hooks its registry gives it.
 */
import { randomUUID } from 'node:crypto'
import { CloseCode } from '../protocol/close-codes.js'
import type { MessageErrorCode } from '../protocol/error-codes.js'
import type { GlassesMessage } from '../protocol/glasses-messages.js'
import { parseGlassesFrame } from '../protocol/parse-frame.js'
import type { ConnectionAck, ServerMessage, UserSessionView } from '../protocol/server-messages.js'
import { SessionStats } from './session-stats.js'
import { disposeManagers } from './dispose-managers.js'
import type { ConnectionSink, GlassesConnection } from './glasses-connection.js'
import {
  DISPOSE_POLICY, EventLog, TRANSITIONS, type AttachOutcome, type DisposeFailure, type DisposeReason, type LifecycleEvent, type LifecycleEventName, type SessionState
} from './lifecycle.js'
import type { Log } from './log.js'
import type { NodeEvents } from './node-events.js'
import type { AppsFacet, AttachContext, Manager, ManagerFactory, SessionContext, StandIn } from './manager.js'
import { Resources } from './resources.js'
import type { SessionConfig } from './session-config.js'
import type { SessionSnapshot } from './session-snapshot.js'
import { isoNow } from '../protocol/timestamp.js'

/** What the registry lends a session: serialised entry points and the node's events. */
export interface SessionHooks {
  /** The grace timer fired; the registry re-checks under the user's lock and disposes. */
  graceTimerFired: (session: UserSession, graceEpoch: number) => void
  /** A manager failed while handling a message; the registry disposes the session with `fatal_error`. */
  fatalError: (session: UserSession, error: unknown) => void
  /** The session finished disposing: remove it if the registry still points at it. */
  disposed: (session: UserSession, reason: DisposeReason) => void
  /** What another node would need to resume the session changed (its running apps). */
  changed: (session: UserSession) => void
  /** Where lifecycle events, traffic and dispose failures are told (logs, metrics). */
  events: NodeEvents
}

export interface UserSessionOptions {
  userId: string
  config: SessionConfig
  log: Log
  hooks: SessionHooks
  /** The session's managers (the recipe `app.ts` composes), in dispatch order; the session's own stats go first. */
  managerFactories: readonly ManagerFactory[]
  /** Resume a session another node held (same instance id, counters and apps). */
  restore?: SessionSnapshot
}

export interface DisposeOutcome { reason: DisposeReason, failures: DisposeFailure[] }

/** Thrown when something tries to attach to a session that is already going away. */
export class SessionGoneError extends Error {
  override readonly name = 'SessionGoneError'
}

/**
 * The session is its managers' SessionContext itself (typed down to that interface
 * for them): one object per session rather than a context object and its closures.
 */
export class UserSession implements ConnectionSink, SessionContext {
  readonly userId: string
  readonly sessionInstanceId: string
  readonly startedAt: number
  /** `startedAt` as the wire writes it, made on first use (every ack and app state change carries it). */
  private startTime: string | null = null
  /** The session's own counters and connected time. */
  readonly stats: SessionStats
  /** The managers built so far, in dispatch order. */
  private built: readonly Manager[]
  /** The factories the session was composed from; those from `deferredFrom` on are built on first need. */
  private readonly factories: readonly ManagerFactory[]
  private deferredFrom: number
  /** In place of the deferred managers at reconnections until they are built (their factory's `standIn`). */
  private standIn: StandIn | null = null
  private childLog: Log | null = null
  private currentState: SessionState = 'active'
  private connection: GlassesConnection | null = null
  private connectedAt: number | null = null
  private disconnectedAt: number | null = null
  private graceExpiresAt: number | null = null
  /** Bumped on every grace entry, so a timer from an earlier grace period can never end a later one. */
  private graceEpoch = 0
  private reconnectionCount = 0
  private everAttached = false
  /** When recent takeovers of the live socket happened (made at the first; most sessions never see one). */
  private takeovers: number[] | null = null
  private cooldownUntil = 0
  private refusedTakeovers = 0
  private disposal: Promise<DisposeOutcome> | null = null
  private readonly timers = new Resources()
  private readonly events = new EventLog()
  /** The apps facet, given by the manager that runs apps (a session built without one has no apps). */
  private apps: AppsFacet | null = null
  readonly config: SessionConfig
  /** The state this session was resumed from on another node, or null for a new session. */
  readonly restored: SessionSnapshot | null
  private readonly parentLog: Log
  private readonly hooks: SessionHooks

  constructor (options: UserSessionOptions) {
    this.userId = options.userId
    this.config = options.config
    this.parentLog = options.log
    this.hooks = options.hooks
    const restored = options.restore ?? null
    this.sessionInstanceId = restored?.sessionInstanceId ?? randomUUID()
    this.startedAt = restored?.startedAt ?? Date.now()
    this.stats = new SessionStats(restored ?? undefined)
    this.reconnectionCount = restored?.reconnections ?? 0
    this.restored = restored
    this.factories = options.managerFactories
    // A session moved here has apps to take over at once: only a fresh one defers anything.
    const deferred = restored === null ? this.factories.findIndex(factory => factory.neededAtStart !== undefined) : -1
    this.deferredFrom = deferred < 0 ? this.factories.length : deferred
    this.built = this.buildManagers(0, this.deferredFrom)
    this.emit('session.created', restored === null ? {} : { reason: 'handover' })
  }

  /** This session's logger (userId and sessionInstanceId bound), made on first use: most sessions never log. */
  get log (): Log {
    this.childLog ??= this.parentLog.child({ userId: this.userId, sessionInstanceId: this.sessionInstanceId })
    return this.childLog
  }

  get state (): SessionState { return this.currentState }

  get nodeId (): string { return this.config.nodeId }

  /** True while the session can take a socket: active or in its grace period. */
  get isLive (): boolean { return this.currentState === 'active' || this.currentState === 'grace' }

  get reconnections (): number { return this.reconnectionCount }

  get currentConnection (): GlassesConnection | null { return this.connection }

  get phoneConnected (): boolean { return this.connection !== null }

  /** Every manager, in dispatch order; deferred ones are built now (while the session is live). */
  get managers (): readonly Manager[] {
    if (this.deferredFrom < this.factories.length && this.isLive) this.buildDeferred(this.connection)
    return this.built
  }

  /** This session's manager of a given class (the app side's facets, for the phone's REST calls). */
  find<M extends Manager> (type: abstract new (...args: never[]) => M): M | undefined {
    for (const manager of this.managers) if (manager instanceof type) return manager
    return undefined
  }

  /** Timestamps of the connection state, for the admin views. */
  get times (): { startedAt: number, connectedAt: number | null, disconnectedAt: number | null, graceExpiresAt: number | null } {
    return {
      startedAt: this.startedAt,
      connectedAt: this.connectedAt,
      disconnectedAt: this.disconnectedAt,
      graceExpiresAt: this.graceExpiresAt
    }
  }

  recentEvents (): LifecycleEvent[] { return this.events.list() }

  changed (): void { this.hooks.changed(this) }

  provideApps (apps: AppsFacet): void { this.apps = apps }

  /** While in the future, a new socket of this user is refused rather than taking the live one over. */
  get takeoverCooldownUntil (): number { return this.cooldownUntil }

  /** A takeover was refused during the cool-down (the registry's admission). */
  takeoverRefused (): void { this.refusedTakeovers += 1 }

  get takeoversRefused (): number { return this.refusedTakeovers }

  /**
   * Two devices of one user that both reconnect after being replaced would take over from each
   * other forever: TAKEOVER_LIMIT takeovers within TAKEOVER_WINDOW_MS start a cool-down in
   * which the socket holding the session keeps it.
   */
  private countTakeover (now: number): void {
    const since = now - this.config.takeoverWindowMs
    this.takeovers = (this.takeovers ?? []).filter(at => at > since).concat([now])
    if (this.takeovers.length < this.config.takeoverLimit) return
    this.takeovers = null
    this.cooldownUntil = now + this.config.takeoverCooldownMs
    this.emit('session.contested', {
      reason: `${this.config.takeoverLimit} takeovers within ${this.config.takeoverWindowMs} ms: the holder keeps the session for ${this.config.takeoverCooldownMs} ms`
    })
  }

  /**
   * Attach a socket: the first one, one that resumes the grace period, or a newer
   * one that replaces a live socket. Sends the ack before anything else.
   */
  attach (connection: GlassesConnection): AttachOutcome {
    if (!this.isLive) throw new SessionGoneError(`session ${this.sessionInstanceId} is ${this.currentState}`)
    const now = Date.now()
    const previous = this.connection
    let outcome: AttachOutcome
    let downtimeMs: number | undefined
    if (this.currentState === 'grace') {
      outcome = 'resumed'
      downtimeMs = now - (this.disconnectedAt ?? now)
      this.cancelGrace()
    } else if (previous !== null) {
      outcome = 'replaced'
      // Deaf first, then closed: its late close event must not start a grace period.
      previous.unbind()
      previous.close(CloseCode.REPLACED)
      this.countTakeover(now)
    } else if (this.restored !== null && !this.everAttached) {
      // Moved from another node: for the glasses this is a reconnection of the same session.
      outcome = this.restored.state === 'grace' ? 'resumed' : 'replaced'
    } else {
      outcome = 'created'
    }
    this.everAttached = true
    const reconnection = outcome !== 'created'
    if (reconnection) this.reconnectionCount += 1
    this.connection = connection
    this.connectedAt = now
    this.transition('active')

    connection.ackedAsReconnection = reconnection
    this.sendAck(connection)
    this.stats.onAttach()
    // A reconnection resends state to the phone: deferred managers are built for that, or their stand-in
    // does it. A fresh session's are built once their factory says it needs them (a user with apps to restart).
    if (reconnection) this.reattachDeferred()
    else this.checkDeferred(connection)
    this.runManagers(manager => { manager.onAttach?.({ connection, reconnection }); return false }, this.built)
    if (this.standIn !== null) this.tellStandIn(this.standIn, { connection, reconnection })
    connection.bind(this)

    if (outcome === 'resumed') this.emit('session.resumed', { connectionId: connection.id, downtimeMs })
    if (outcome === 'replaced') {
      this.emit('session.replaced', { connectionId: connection.id, reason: `replaced ${previous?.id ?? ''}`.trim() })
    }
    this.emit('session.attached', { connectionId: connection.id, reason: outcome, ackMs: now - connection.openedAt })
    return outcome
  }

  /** The app-facing view carried by the ack and `app_state_change`. */
  view (): UserSessionView {
    const apps = this.apps?.view()
    this.startTime ??= new Date(this.startedAt).toISOString()
    return {
      userId: this.userId,
      startTime: this.startTime,
      activeAppSessions: apps?.activeAppSessions ?? [],
      loadingApps: apps?.loadingApps ?? [],
      appSubscriptions: apps?.appSubscriptions ?? {}
    }
  }

  /** Everything another node needs to resume this session. */
  snapshot (): SessionSnapshot {
    return {
      userId: this.userId,
      sessionInstanceId: this.sessionInstanceId,
      startedAt: this.startedAt,
      reconnections: this.reconnectionCount,
      state: this.currentState === 'grace' ? 'grace' : 'active',
      data: this.stats.counts(),
      connectedMs: this.stats.connectedMs(),
      apps: this.apps?.running() ?? []
    }
  }

  /** Send to the glasses; false while detached. */
  send (message: ServerMessage): boolean {
    const connection = this.connection
    if (connection === null) return false
    const bytes = connection.send(message)
    if (bytes === 0) return false
    this.stats.recordOutbound()
    this.hooks.events.emit('glasses.traffic', 'out', message.type, bytes)
    return true
  }

  // ---- ConnectionSink: events from the bound socket ----

  onText (connection: GlassesConnection, text: string, bytes: number): void {
    if (connection !== this.connection) return
    const parsed = parseGlassesFrame(text, this.config.maxJsonDepth)
    if (!parsed.ok) {
      this.hooks.events.emit('glasses.traffic', 'in', 'invalid', bytes)
      this.stats.recordUntypedFrame()
      this.rejectFrame(connection, parsed.code, parsed.message)
      return
    }
    if (!parsed.listed) {
      // A well-formed message of a type without a schema: relayed, never a bad frame, and
      // counted under one label so that clients cannot create metric series.
      this.hooks.events.emit('glasses.traffic', 'in', 'other', bytes)
      this.stats.recordUntypedFrame()
      if (connection.firstOfUnlistedType(parsed.message.type)) {
        this.send({ type: 'error', code: 'UNKNOWN_TYPE', message: `type "${parsed.message.type}" is relayed to apps only`, timestamp: isoNow() })
      }
      this.runManagers(manager => { manager.handleUnlisted?.(parsed.message); return false })
      return
    }
    this.hooks.events.emit('glasses.traffic', 'in', parsed.message.type, bytes)
    this.stats.recordInbound(parsed.message)
    this.dispatch(connection, parsed.message)
  }

  onBinary (connection: GlassesConnection, data: Buffer): void {
    if (connection !== this.connection) return
    this.stats.recordAudio(data.length)
    this.hooks.events.emit('glasses.traffic', 'in', 'audio', data.length)
    this.runManagers(manager => { manager.handleBinary?.(data); return false })
  }

  onClose (connection: GlassesConnection, code: number): void {
    if (connection !== this.connection || this.currentState !== 'active') return
    const now = Date.now()
    this.connection = null
    this.connectedAt = null
    this.transition('grace')
    this.disconnectedAt = now
    this.graceExpiresAt = now + this.config.gracePeriodMs
    const epoch = ++this.graceEpoch
    this.timers.timeout(() => this.hooks.graceTimerFired(this, epoch), this.config.gracePeriodMs)
    this.stats.onDetach()
    for (const manager of this.built) {
      try {
        manager.onDetach?.({ connectionId: connection.id, closeCode: code })
      } catch (error) {
        this.log.error({ err: error, manager: manager.name }, 'manager failed on detach')
      }
    }
    this.emit('session.detached', {
      connectionId: connection.id,
      closeCode: connection.closeCodeSent ?? code,
      reason: connection.cause === 'silence' ? 'silence' : connection.cause === 'server' ? 'server_closed' : 'client_closed',
      silenceMs: now - connection.lastInboundAt
    })
  }

  /** Called by the registry under the user's lock when a grace timer fires. */
  expireGrace (epoch: number): Promise<DisposeOutcome> | null {
    if (this.currentState !== 'grace' || epoch !== this.graceEpoch) return null
    return this.dispose('grace_expired')
  }

  /**
   * End the session: idempotent (every caller gets the same promise), bounded
   * (each manager has MANAGER_DISPOSE_TIMEOUT_MS), and complete (a failing
   * manager never stops the others). The state turns `disposing` synchronously,
   * so from this call on a new connection of the user starts a fresh session.
   */
  dispose (reason: DisposeReason): Promise<DisposeOutcome> {
    if (this.disposal !== null) return this.disposal
    this.transition('disposing')
    this.disposal = this.runDisposal(reason)
    return this.disposal
  }

  private async runDisposal (reason: DisposeReason): Promise<DisposeOutcome> {
    this.timers.dispose()
    this.graceExpiresAt = null
    const connection = this.connection
    this.connection = null
    if (connection !== null) {
      connection.unbind()
      const code = DISPOSE_POLICY[reason].closeCode
      if (code !== null) connection.close(code)
      else connection.terminate()
      this.connectedAt = null
    }
    this.stats.dispose()
    this.dropStandIn()
    const failures = await disposeManagers(this.built, this.config.managerDisposeTimeoutMs, reason)
    for (const failure of failures) {
      this.log.error({ err: failure.error, manager: failure.manager, kind: failure.kind }, 'manager failed to dispose')
      this.hooks.events.emit('session.dispose_failed', failure)
    }
    this.transition('disposed')
    this.hooks.disposed(this, reason)
    this.emit('session.disposed', {
      reason,
      closeCode: connection?.closeCodeSent ?? undefined,
      durationMs: Date.now() - this.startedAt,
      failures: failures.map(({ manager, kind }) => ({ manager, kind }))
    })
    return { reason, failures }
  }

  private dispatch (connection: GlassesConnection, message: GlassesMessage): void {
    switch (message.type) {
      case 'connection_init':
        this.sendAck(connection)
        return
      case 'ping':
        this.send({ type: 'pong', timestamp: isoNow() })
        return
      case 'pong':
        return
      default:
        this.runManagers(manager => manager.handle?.(message) ?? false)
    }
  }

  /** Offer work to each manager in order; a throw is fatal for this session and only this session (1011). */
  private runManagers (work: (manager: Manager) => boolean, managers = this.managers): void {
    for (const manager of managers) {
      try {
        if (work(manager)) return
      } catch (error) {
        this.log.error({ err: error, manager: manager.name }, 'manager failed: disposing the session')
        this.hooks.fatalError(this, error)
        return
      }
    }
  }

  private rejectFrame (connection: GlassesConnection, code: MessageErrorCode, message: string): void {
    this.send({ type: 'error', code, message, timestamp: isoNow() })
    if (connection.recordBadFrame()) connection.close(CloseCode.POLICY_VIOLATION, 'too many bad frames')
  }

  private buildManagers (from: number, to: number): readonly Manager[] {
    // slice(): flatMap's result keeps spare capacity, held for the session's whole life.
    return this.factories.slice(from, to).flatMap(factory => factory(this)).slice()
  }

  /**
   * Build the deferred managers (once) after the ones built at creation, keeping the dispatch order.
   * `attached`: the socket they hear of as they would have at its attach. It can only be a fresh
   * session's first socket, since a reconnection builds them before its own attach.
   */
  private buildDeferred (attached: GlassesConnection | null): void {
    if (this.deferredFrom === this.factories.length) return
    const added = this.buildManagers(this.deferredFrom, this.factories.length)
    this.deferredFrom = this.factories.length
    this.built = this.built.concat(added)
    // Built, they took over whatever the stand-in had to hand over.
    this.dropStandIn()
    if (attached !== null) {
      this.runManagers(manager => { manager.onAttach?.({ connection: attached, reconnection: false }); return false }, added)
    }
  }

  /** A reconnection while managers are deferred: their factory's stand-in, made once, else the managers themselves. */
  private reattachDeferred (): void {
    if (this.deferredFrom === this.factories.length) return
    const standIn = this.factories[this.deferredFrom]?.standIn
    if (standIn === undefined) this.buildDeferred(null)
    else this.standIn ??= standIn(this)
  }

  /** The stand-in hears of an attach as a manager would; its failure is the session's, as a manager's is. */
  private tellStandIn (standIn: StandIn, ctx: AttachContext): void {
    try {
      standIn.onAttach(ctx)
    } catch (error) {
      this.log.error({ err: error }, 'the managers\' stand-in failed: disposing the session')
      this.hooks.fatalError(this, error)
    }
  }

  private dropStandIn (): void {
    const standIn = this.standIn
    if (standIn === null) return
    this.standIn = null
    try {
      standIn.dispose()
    } catch (error) {
      this.log.error({ err: error }, 'the managers\' stand-in failed to dispose')
    }
  }

  /**
   * A fresh session's first attach: the first deferred factory says whether its managers are needed
   * now (a failed answer means yes). An answer given at once builds them here, before the attach's
   * managers hear of it (so they hear of it with the rest); a later one builds them then, and they hear
   * of this attach even if its socket left meanwhile.
   */
  private checkDeferred (connection: GlassesConnection): void {
    const needed = this.factories[this.deferredFrom]?.neededAtStart
    if (needed === undefined) return
    let need: boolean | Promise<boolean>
    try {
      need = needed(this)
    } catch {
      need = true
    }
    if (typeof need === 'boolean') {
      if (need) this.buildDeferredOrEnd(null)
      return
    }
    // Cannot reject: a failed answer means yes, and a failed build ends the session inside buildDeferredOrEnd.
    void need.catch(() => true).then(later => { if (later && this.isLive) this.buildDeferredOrEnd(connection) })
  }

  /** buildDeferred, where a manager that fails to build ends the session (1011) rather than the caller. */
  private buildDeferredOrEnd (attached: GlassesConnection | null): void {
    try {
      this.buildDeferred(attached)
    } catch (error) {
      this.log.error({ err: error }, 'could not build the session\'s managers: disposing the session')
      this.hooks.fatalError(this, error)
    }
  }

  private sendAck (connection: GlassesConnection): void {
    // Only the current socket is ever acked, so `send` reaches exactly this connection.
    const ack: ConnectionAck = {
      type: 'connection_ack',
      sessionId: this.userId,
      sessionInstanceId: this.sessionInstanceId,
      connectionId: connection.id,
      reconnection: connection.ackedAsReconnection,
      heartbeat: {
        pingIntervalMs: this.config.pingIntervalMs,
        silenceTimeoutMs: this.config.silenceTimeoutMs
      },
      userSession: this.view(),
      timestamp: isoNow()
    }
    this.send(ack)
  }

  private cancelGrace (): void {
    this.timers.clear()
    this.disconnectedAt = null
    this.graceExpiresAt = null
  }

  /** Every change of state goes through here, checked against the state machine's table. */
  private transition (to: SessionState): void {
    if (!TRANSITIONS[this.currentState].includes(to)) throw new Error(`illegal session transition ${this.currentState} -> ${to}`)
    this.currentState = to
  }

  private emit (event: LifecycleEventName, fields: Partial<LifecycleEvent>): void {
    const full: LifecycleEvent = {
      event,
      at: isoNow(),
      userId: this.userId,
      sessionInstanceId: this.sessionInstanceId,
      nodeId: this.config.nodeId,
      reconnections: this.reconnectionCount,
      ...fields
    }
    this.events.push(full)
    this.hooks.events.emit('session.lifecycle', full)
  }
}
