/**
 * Which apps of one session run (docs/PROTOCOL.md 2): start by webhook, keep an app
 * through its own drops (app grace), restart it, stop it, and end every app when the
 * session ends. Apps keep running while the glasses are away. The app sockets
 * themselves are managers/app-sockets.ts's: this manager owns them (it builds and
 * disposes its AppSockets) and decides what their arrival and loss mean.
 *
 * An app is `loading` from its start until its init is acknowledged, `running`
 * while its socket is up, and `reconnecting` during its own grace period after
 * an unrequested close; then it is restarted by webhook. A start, restart or
 * stop is one in-flight operation per app: a second `start_app` joins the first.
 */
import { randomUUID } from 'node:crypto'
import type { AppEntry } from '../protocol/apps-catalogue.js'
import type { GlassesMessage } from '../protocol/glasses-messages.js'
import type { AppChannel } from '../sessions/app-connection.js'
import { LazyMap } from '../sessions/lazy-map.js'
import type { DisposeReason } from '../sessions/lifecycle.js'
import type { AppsView, AttachContext, Manager, SessionContext } from '../sessions/manager.js'
import { Resources } from '../sessions/resources.js'
import type { AppSnapshot } from '../sessions/session-snapshot.js'
import type { AppInbox } from './app-message-router.js'
import { AppSockets, type AppSocketEvents } from './app-sockets.js'
import { publishAppState } from './app-state.js'
import type { AppEndpoint, AppsService } from './apps-service.js'
import type { StartFailure, StartReason } from '../sessions/node-events.js'
import type { DisplayManager } from './display-manager.js'
import type { SubscriptionManager } from './subscription-manager.js'
import { postWebhook } from './webhook.js'
import { isoNow } from '../protocol/timestamp.js'

export type AppStatus = 'loading' | 'running' | 'reconnecting'

/** How long a stop waits for the app's `stop_request` answer before closing its socket anyway. */
const STOP_WEBHOOK_TIMEOUT_MS = 2000

interface PendingStart {
  readonly promise: Promise<boolean>
  readonly settle: (started: boolean) => void
  readonly cancelTimer: () => void
  readonly reason: StartReason
}

interface AppRecord {
  readonly entry: AppEntry
  status: AppStatus
  pending: PendingStart | null
  cancelGrace: (() => void) | null
  startedAt: number | null
  restarts: number
}

/** Why a session's webhook calls were cancelled. */
const SESSION_ENDED = new Error('the user session ended')
const ENDED = AbortSignal.abort(SESSION_ENDED)

export class AppLifecycleManager implements Manager, AppEndpoint, AppSocketEvents {
  readonly name = 'apps'
  /** The session's app sockets: what the relays, the audio and the device state send to apps through. */
  readonly sockets: AppSockets
  private readonly apps = new LazyMap<string, AppRecord>()
  /** One opaque id per app for the life of this session, so a restart is the same app session to the SDK. */
  private readonly appSessionIds = new LazyMap<string, string>()
  private readonly res = new Resources()
  /** Cancels this session's webhook calls at dispose; made with the first call (most sessions never make one). */
  private aborts: AbortController | null = null
  private restored = false
  private disposed = false

  constructor (
    private readonly session: SessionContext,
    private readonly service: AppsService,
    private readonly subscriptions: SubscriptionManager,
    private readonly display: DisplayManager,
    inbox: AppInbox
  ) {
    this.sockets = new AppSockets(session, service, inbox, this)
    session.provideApps({ view: () => this.appsView(), running: () => this.runningApps() })
  }

  // ---- Manager ----

  onAttach (ctx: AttachContext): void {
    if (this.restored) return
    this.restored = true
    // Moved from another node: the same apps, asked by webhook to connect here ("switching clouds").
    const moved = this.session.restored
    if (moved !== null) {
      for (const app of moved.apps) {
        this.appSessionIds.set(app.packageName, app.appSessionId)
        this.service.slots.set(app.appSessionId, { packageName: app.packageName, endpoint: this })
        void this.start(app.packageName, 'handover')
      }
      return
    }
    // A fresh session restarts the apps its user had running; a resumed one restarts nothing.
    if (!ctx.reconnection) this.inBackground(this.restoreRunningApps(), 'restoring running apps')
  }

  private runningApps (): AppSnapshot[] {
    return [...this.apps.keys()].map(packageName => ({ packageName, appSessionId: this.appSessionId(packageName) }))
  }

  handle (message: GlassesMessage): boolean {
    if (message.type === 'start_app') {
      void this.start(message.packageName, 'user')
      return true
    }
    if (message.type === 'stop_app') {
      void this.stop(message.packageName)
      return true
    }
    return false
  }

  private appsView (): AppsView {
    const activeAppSessions: string[] = []
    const loadingApps: string[] = []
    for (const [packageName, record] of this.apps) {
      if (record.status === 'loading') loadingApps.push(packageName)
      else activeAppSessions.push(packageName)
    }
    return { activeAppSessions, loadingApps, appSubscriptions: this.subscriptions.all() }
  }

  snapshot (): unknown {
    return Object.fromEntries([...this.apps].map(([packageName, record]) => [packageName, {
      status: record.status,
      connected: this.sockets.isConnected(packageName),
      startedAt: record.startedAt === null ? null : new Date(record.startedAt).toISOString(),
      restarts: record.restarts
    }]))
  }

  /**
   * Session end: every start settled, no webhook, and the app sockets ended as the
   * reason says (told `app_stopped` and closed, or left to move on `handover`).
   */
  dispose (reason?: DisposeReason): void {
    if (this.disposed) return
    this.disposed = true
    // A shared reason: abort() without one builds a DOMException with a stack for every session.
    this.aborts?.abort(SESSION_ENDED)
    for (const [packageName, record] of this.apps) {
      this.settle(record, false)
      this.subscriptions.remove(packageName)
    }
    this.apps.clear()
    this.sockets.dispose(reason)
    for (const id of this.appSessionIds.values()) this.service.slots.delete(id)
    this.appSessionIds.clear()
    this.res.dispose()
  }

  // ---- starting and stopping ----

  private webhookSignal (): AbortSignal {
    // Defensive: start and stop refuse once disposed, but should a webhook be asked for after dispose,
    // it is cancelled before it starts, as it was when one controller was made with the manager.
    if (this.disposed) return ENDED
    this.aborts ??= new AbortController()
    return this.aborts.signal
  }

  /** Start an app for this session; resolves true once its init is acknowledged. */
  async start (packageName: string, reason: StartReason): Promise<boolean> {
    if (this.disposed) return false
    const entry = this.service.catalogue.get(packageName)
    if (entry === undefined) {
      this.session.send({
        type: 'error', code: 'UNKNOWN_APP', message: 'no such app in the catalogue', timestamp: isoNow()
      })
      return false
    }
    const existing = this.apps.get(packageName)
    if (existing !== undefined) return await (existing.pending?.promise ?? Promise.resolve(true))
    const record: AppRecord = { entry, status: 'loading', pending: null, cancelGrace: null, startedAt: null, restarts: 0 }
    this.apps.set(packageName, record)
    return await this.begin(record, reason)
  }

  /** Stop an app on the user's request: `stop_request` webhook, then `app_stopped` and close 1000 "App stopped". */
  async stop (packageName: string): Promise<void> {
    const record = this.apps.get(packageName)
    if (record === undefined || this.disposed) return
    this.apps.delete(packageName)
    // Deaf and mute from now on, closed once the app had its say.
    const connection = this.sockets.detach(packageName)
    this.settle(record, false)
    record.cancelGrace?.()
    this.subscriptions.remove(packageName)
    this.display.forget(packageName)
    publishAppState(this.session)
    this.inBackground(this.service.userStore.appStopped(this.session.userId, packageName), 'forgetting a stopped app')
    await postWebhook(record.entry.webhookUrl, {
      type: 'stop_request',
      sessionId: this.appSessionId(packageName),
      userId: this.session.userId,
      reason: 'user_stopped',
      timestamp: isoNow()
    }, { deadline: Date.now() + STOP_WEBHOOK_TIMEOUT_MS, retries: 0, signal: this.webhookSignal() })
    if (connection !== null) this.sockets.end(connection, 'App stopped')
    this.service.events.emit('app.stopped', packageName)
  }

  /** `running` for the phone's app list: running or loading in this session. */
  isRunning (packageName: string): boolean { return this.apps.has(packageName) }

  /** Apps of this session in the catalogue's `standard` type, other than the one named. */
  otherStandardApps (packageName: string): string[] {
    return [...this.apps].filter(([name, record]) => name !== packageName && record.entry.type === 'standard').map(([name]) => name)
  }

  private async restoreRunningApps (): Promise<void> {
    const running = await this.service.userStore.runningApps(this.session.userId)
    await Promise.all(running.map(async packageName => await this.start(packageName, 'restore')))
  }

  /** Send the webhook and wait for the app's init, bounded by APP_START_TIMEOUT_MS (a retry does not extend it). */
  private async begin (record: AppRecord, reason: StartReason): Promise<boolean> {
    const packageName = record.entry.packageName
    let settle: (started: boolean) => void = () => {}
    const promise = new Promise<boolean>(resolve => { settle = resolve })
    const { appStartTimeoutMs } = this.service.config
    const cancelTimer = this.res.timeout(() => this.failStart(record, 'timeout'), appStartTimeoutMs)
    const pending: PendingStart = { promise, settle, cancelTimer, reason }
    record.pending = pending
    record.status = 'loading'
    publishAppState(this.session)
    this.service.events.emit('app.start_requested', packageName, reason)

    const url = this.service.websocketUrl()
    const result = await postWebhook(record.entry.webhookUrl, {
      type: 'session_request',
      sessionId: this.appSessionId(packageName),
      userId: this.session.userId,
      timestamp: isoNow(),
      mentraOSWebsocketUrl: url,
      augmentOSWebsocketUrl: url
    }, { deadline: Date.now() + appStartTimeoutMs, signal: this.webhookSignal() })
    // The SDK answers its webhook only after its socket is acknowledged, so an answer
    // (good or bad) may come after the start succeeded: only a still-pending start fails here.
    if (!result.ok && record.pending === pending) {
      this.session.log.warn({ packageName, status: result.status, error: result.error }, 'app webhook failed')
      this.failStart(record, 'webhook')
    }
    return await promise
  }

  private failStart (record: AppRecord, failure: StartFailure): void {
    const packageName = record.entry.packageName
    if (this.apps.get(packageName) !== record || record.status !== 'loading') return
    this.apps.delete(packageName)
    this.settle(record, false)
    this.subscriptions.remove(packageName)
    publishAppState(this.session)
    this.inBackground(this.service.userStore.appStartFailed(this.session.userId, packageName), 'counting a failed start')
    this.service.events.emit('app.start_failed', packageName, failure)
    this.session.log.warn({ packageName, failure }, 'app start failed')
  }

  private settle (record: AppRecord, started: boolean): void {
    const pending = record.pending
    if (pending === null) return
    record.pending = null
    pending.cancelTimer()
    pending.settle(started)
  }

  // ---- AppEndpoint: what /app-ws hands over ----

  accept (packageName: string, connection: AppChannel): boolean {
    const record = this.apps.get(packageName)
    if (record === undefined || this.disposed) return false
    record.cancelGrace?.()
    record.cancelGrace = null
    this.sockets.attach(packageName, this.appSessionId(packageName), connection)
    const pending = record.pending
    record.status = 'running'
    if (pending !== null) {
      record.startedAt = Date.now()
      this.settle(record, true)
      this.inBackground(this.service.userStore.appStarted(this.session.userId, packageName), 'remembering a running app')
      this.service.events.emit('app.started', packageName, pending.reason)
      publishAppState(this.session)
    }
    return true
  }

  refused (packageName: string): void {
    const record = this.apps.get(packageName)
    if (record !== undefined) this.failStart(record, 'refused')
  }

  // ---- AppSocketEvents ----

  /** The app's socket dropped: it has APP_GRACE_PERIOD_MS to come back, then it is restarted by webhook. */
  dropped (packageName: string): void {
    const record = this.apps.get(packageName)
    if (record === undefined) return
    record.status = 'reconnecting'
    record.cancelGrace = this.res.timeout(() => {
      record.cancelGrace = null
      if (this.apps.get(packageName) !== record || record.status !== 'reconnecting') return
      record.restarts += 1
      void this.begin(record, 'restart')
    }, this.service.config.appGracePeriodMs)
  }

  private appSessionId (packageName: string): string {
    let id = this.appSessionIds.get(packageName)
    if (id === undefined) {
      id = randomUUID()
      this.appSessionIds.set(packageName, id)
      this.service.slots.set(id, { packageName, endpoint: this })
    }
    return id
  }

  /** Directory writes run beside the session; in cluster mode Redis may be away, which must not hurt it. */
  private inBackground (work: Promise<unknown>, what: string): void {
    work.catch((error: unknown) => { this.session.log.warn({ err: error }, `${what} failed`) })
  }
}
