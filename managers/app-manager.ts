/**
 * The apps of one session (docs/PROTOCOL.md 2): start by webhook, accept the app's
 * socket, keep it through app-side drops (app grace), stop it, and end every
 * app when the session ends. Apps keep running while the glasses are away.
 *
 * An app is `loading` from its start until its init is acknowledged, `running`
 * while its socket is up, and `reconnecting` during its own grace period after
 * an unrequested close; then it is restarted by webhook. A start, restart or
 * stop is one in-flight operation per app: a second `start_app` joins the first.
 */
import { randomUUID } from 'node:crypto'
import { CloseCode } from '../protocol/close-codes.js'
import type { AppDisplayEvent } from '../protocol/app-messages.js'
import type { GlassesMessage } from '../protocol/glasses-messages.js'
import { parseAppFrame } from '../protocol/parse-frame.js'
import type { AppEntry } from '../protocol/apps-catalogue.js'
import type { AppConnection, AppConnectionSink } from '../sessions/app-connection.js'
import { DISPOSE_POLICY, type DisposeReason } from '../sessions/lifecycle.js'
import type { AppsView, AttachContext, Manager, SessionContext } from '../sessions/manager.js'
import type { AppSnapshot } from '../sessions/session-snapshot.js'
import { Resources } from '../sessions/resources.js'
import { LazyMap } from '../sessions/lazy-map.js'
import type { AppEndpoint, AppsService } from './apps-service.js'
import type { StartFailure, StartReason } from '../sessions/node-events.js'
import type { DisplayManager } from './display-manager.js'
import type { AppBroadcast } from './device-state-manager.js'
import type { PhoneRelayManager } from './phone-relay-manager.js'
import type { AppOutlet, SubscriptionManager } from './subscription-manager.js'
import { postWebhook } from './webhook.js'

export type AppStatus = 'loading' | 'running' | 'reconnecting'

/** What the SDK reads from an ack's `capabilities`; Tether does not know the glasses model. */
const CAPABILITIES = {
  modelName: 'unknown',
  hasCamera: false,
  hasDisplay: true,
  hasMicrophone: true,
  hasSpeaker: false,
  hasIMU: false,
  hasButton: true,
  hasLight: false,
  hasWifi: false
}

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
  connection: AppConnection | null
  pending: PendingStart | null
  cancelGrace: (() => void) | null
  startedAt: number | null
  restarts: number
}

/** Why a session's webhook calls were cancelled. */
const SESSION_ENDED = new Error('the user session ended')
const ENDED = AbortSignal.abort(SESSION_ENDED)

export class AppManager implements Manager, AppEndpoint, AppOutlet, AppBroadcast {
  readonly name = 'apps'
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
    private readonly phone: PhoneRelayManager
  ) {
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
      connected: record.connection?.isOpen === true,
      startedAt: record.startedAt === null ? null : new Date(record.startedAt).toISOString(),
      restarts: record.restarts
    }]))
  }

  /**
   * Session end: every app told (`app_stopped`, close 1000 "User session ended"),
   * no webhook, every start settled. On `handover` the apps are moving with the
   * session: their sockets are left for the SDK to release when the new node's
   * webhook reaches it, and ended only if it has not after APP_START_TIMEOUT_MS.
   */
  dispose (reason?: DisposeReason): void {
    if (this.disposed) return
    this.disposed = true
    // A shared reason: abort() without one builds a DOMException with a stack for every session.
    this.aborts?.abort(SESSION_ENDED)
    for (const [packageName, record] of this.apps) {
      this.settle(record, false)
      if (reason !== undefined && !DISPOSE_POLICY[reason].appsTold) this.leaveForHandover(record)
      else this.endSocket(record, 'User session ended')
      this.subscriptions.remove(packageName)
    }
    this.apps.clear()
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
        type: 'error', code: 'UNKNOWN_APP', message: 'no such app in the catalogue', timestamp: new Date().toISOString()
      })
      return false
    }
    const existing = this.apps.get(packageName)
    if (existing !== undefined) return await (existing.pending?.promise ?? Promise.resolve(true))
    const record: AppRecord = {
      entry, status: 'loading', connection: null, pending: null, cancelGrace: null, startedAt: null, restarts: 0
    }
    this.apps.set(packageName, record)
    return await this.begin(record, reason)
  }

  /** Stop an app on the user's request: `stop_request` webhook, then `app_stopped` and close 1000 "App stopped". */
  async stop (packageName: string): Promise<void> {
    const record = this.apps.get(packageName)
    if (record === undefined || this.disposed) return
    this.apps.delete(packageName)
    this.settle(record, false)
    record.cancelGrace?.()
    this.subscriptions.remove(packageName)
    this.display.forget(packageName)
    this.publishState()
    this.inBackground(this.service.userStore.appStopped(this.session.userId, packageName), 'forgetting a stopped app')
    await postWebhook(record.entry.webhookUrl, {
      type: 'stop_request',
      sessionId: this.appSessionId(packageName),
      userId: this.session.userId,
      reason: 'user_stopped',
      timestamp: new Date().toISOString()
    }, { deadline: Date.now() + STOP_WEBHOOK_TIMEOUT_MS, retries: 0, signal: this.webhookSignal() })
    this.endSocket(record, 'App stopped')
    this.service.events.emit('app.stopped', packageName)
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
    this.publishState()
    this.service.events.emit('app.start_requested', packageName, reason)

    const url = this.service.websocketUrl()
    const result = await postWebhook(record.entry.webhookUrl, {
      type: 'session_request',
      sessionId: this.appSessionId(packageName),
      userId: this.session.userId,
      timestamp: new Date().toISOString(),
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
    this.publishState()
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

  // ---- app sockets ----

  accept (packageName: string, connection: AppConnection): boolean {
    const record = this.apps.get(packageName)
    if (record === undefined || this.disposed) return false
    const previous = record.connection
    if (previous !== null && previous !== connection) {
      // The same init on a new socket (the SDK reconnecting): the old one is deaf, then closed.
      previous.unbind()
      previous.close(CloseCode.NORMAL, 'replaced')
    }
    record.cancelGrace?.()
    record.cancelGrace = null
    record.connection = connection
    connection.packageName = packageName
    connection.appSessionId = this.appSessionId(packageName)
    connection.send({
      type: 'tpa_connection_ack',
      sessionId: connection.appSessionId,
      settings: [],
      mentraosSettings: {},
      capabilities: CAPABILITIES,
      timestamp: new Date().toISOString()
    })
    connection.bind(this.sinkFor(record))
    const pending = record.pending
    record.status = 'running'
    if (pending !== null) {
      record.startedAt = Date.now()
      this.settle(record, true)
      this.inBackground(this.service.userStore.appStarted(this.session.userId, packageName), 'remembering a running app')
      this.service.events.emit('app.started', packageName, pending.reason)
      this.publishState()
    }
    return true
  }

  refused (packageName: string): void {
    const record = this.apps.get(packageName)
    if (record !== undefined) this.failStart(record, 'refused')
  }

  /** Send one `data_stream`; true when it went out (counted as relayed). */
  sendData (packageName: string, streamType: string, data: unknown): boolean {
    const connection = this.apps.get(packageName)?.connection
    if (connection == null) return false
    return connection.send({
      type: 'data_stream',
      sessionId: connection.appSessionId,
      streamType,
      data,
      timestamp: new Date().toISOString()
    }) > 0
  }

  /** Send one message of its own type to an app (answers to its requests); false when it is not connected. */
  sendMessage (packageName: string, message: { type: string, [key: string]: unknown }): boolean {
    const connection = this.apps.get(packageName)?.connection
    if (connection == null) return false
    return connection.send({ ...message, sessionId: connection.appSessionId, timestamp: new Date().toISOString() }) > 0
  }

  /** Send one message to every connected app of the session (device state: no subscription needed). */
  broadcast (message: { type: string, [key: string]: unknown }): void {
    for (const packageName of this.apps.keys()) this.sendMessage(packageName, message)
  }

  /** `running` for the phone's app list: running or loading in this session. */
  isRunning (packageName: string): boolean { return this.apps.has(packageName) }

  /** Apps of this session in the catalogue's `standard` type, other than the one named. */
  otherStandardApps (packageName: string): string[] {
    return [...this.apps].filter(([name, record]) => name !== packageName && record.entry.type === 'standard').map(([name]) => name)
  }

  sendAudio (packageName: string, data: Buffer): void {
    const connection = this.apps.get(packageName)?.connection
    if (connection == null) return
    if (!connection.sendDroppable(data)) this.service.events.emit('app.audio_dropped', packageName)
  }

  private sinkFor (record: AppRecord): AppConnectionSink {
    return {
      onText: (connection, text) => this.guarded(connection, () => this.onAppText(record, connection, text)),
      onBinary: (connection) => this.reject(connection, 'INVALID_MESSAGE', 'apps send no binary frames'),
      onClose: (connection) => this.onAppClosed(record, connection)
    }
  }

  private onAppText (record: AppRecord, connection: AppConnection, text: string): void {
    const packageName = record.entry.packageName
    // A stopping app's last words change nothing.
    if (this.apps.get(packageName) !== record) return
    const parsed = parseAppFrame(text, this.service.config.maxJsonDepth)
    if (!parsed.ok) {
      this.reject(connection, parsed.code, parsed.message)
      return
    }
    const message = parsed.message
    switch (message.type) {
      case 'tpa_connection_init':
        this.reject(connection, 'INVALID_MESSAGE', 'already initialised')
        return
      case 'subscription_update':
        if (message.packageName !== undefined && message.packageName !== packageName) {
          this.reject(connection, 'INVALID_MESSAGE', 'packageName does not match this connection')
          return
        }
        this.subscriptions.set(packageName, message.subscriptions)
        this.publishState()
        return
      case 'display_event':
        this.display.show(packageName, message as AppDisplayEvent)
        return
      default:
        // Requests for the phone (audio, LED, location, photos, Wi-Fi) go there; other MentraOS
        // app messages Tether does not act on (streams, dashboard, app-to-app) are accepted and ignored.
        if (!this.phone.fromApp(packageName, message)) {
          this.session.log.debug({ packageName, type: message.type }, 'app message ignored')
        }
    }
  }

  /** An error while handling an app's message ends that app's socket (1011), never the session or the process. */
  private guarded (connection: AppConnection, work: () => void): void {
    try {
      work()
    } catch (error) {
      this.session.log.error({ err: error, packageName: connection.packageName }, 'app message handling failed')
      connection.close(CloseCode.INTERNAL_ERROR)
    }
  }

  private reject (connection: AppConnection, code: string, message: string): void {
    connection.send({ type: 'error', code, message, timestamp: new Date().toISOString() })
    if (connection.recordBadFrame()) connection.close(CloseCode.POLICY_VIOLATION, 'too many bad frames')
  }

  /**
   * An app socket closed without being ended on purpose (stop, session end and
   * replacement unbind it first): a drop, or a close for misbehaving (1008, 1009,
   * 4009...). Either way the app has APP_GRACE_PERIOD_MS to come back, then it is
   * restarted by webhook.
   */
  private onAppClosed (record: AppRecord, connection: AppConnection): void {
    if (record.connection !== connection) return
    record.connection = null
    if (this.apps.get(record.entry.packageName) !== record) return
    record.status = 'reconnecting'
    record.cancelGrace = this.res.timeout(() => {
      record.cancelGrace = null
      if (this.apps.get(record.entry.packageName) !== record || record.status !== 'reconnecting') return
      record.restarts += 1
      void this.begin(record, 'restart')
    }, this.service.config.appGracePeriodMs)
  }

  private leaveForHandover (record: AppRecord): void {
    const connection = record.connection
    record.connection = null
    if (connection === null) return
    connection.unbind()
    // Not tracked by this (disposed) manager's resources: it must outlive it, briefly.
    setTimeout(() => connection.terminate(), this.service.config.appStartTimeoutMs).unref()
  }

  /** Tell the app it is over and close its socket with 1000 and the reason. */
  private endSocket (record: AppRecord, reason: 'App stopped' | 'User session ended'): void {
    const connection = record.connection
    record.connection = null
    if (connection === null) return
    connection.unbind()
    connection.send({ type: 'app_stopped', reason, timestamp: new Date().toISOString() })
    connection.close(CloseCode.NORMAL, reason)
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

  /** Tell the phone, and have the session written down for another node (the running apps are part of it). */
  private publishState (): void {
    this.session.send({ type: 'app_state_change', userSession: this.session.view(), timestamp: new Date().toISOString() })
    this.session.changed()
  }
}
