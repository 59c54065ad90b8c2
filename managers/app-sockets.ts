/**
 * The app sockets of one session, at most one per app. A socket is attached once
 * its app's init is accepted (answered with `tpa_connection_ack`); its frames are
 * parsed here and handed to the app inbox; whatever the session sends to apps goes
 * out here (AppOutlet, AppBroadcast). A socket ended on purpose (stop, session end,
 * replacement) is unbound first, so only a close the app chose is reported as a drop.
 * Which apps run, and what a drop means, is managers/app-lifecycle-manager.ts's job.
 */
import { CloseCode } from '../protocol/close-codes.js'
import { parseAppFrame } from '../protocol/parse-frame.js'
import type { AppChannel, AppChannelSink } from '../sessions/app-connection.js'
import { LazyMap } from '../sessions/lazy-map.js'
import { DISPOSE_POLICY, type DisposeReason } from '../sessions/lifecycle.js'
import type { SessionContext } from '../sessions/manager.js'
import type { AppInbox } from './app-message-router.js'
import type { AppsService } from './apps-service.js'
import type { AppBroadcast } from './device-state-manager.js'
import type { AppOutlet } from './subscription-manager.js'
import { isoNow } from '../protocol/timestamp.js'

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

/** Why an app's socket is ended on purpose, as its `app_stopped` and close frame say it (docs/PROTOCOL.md 2.6). */
export type AppEndReason = 'App stopped' | 'User session ended'

/** What the sockets tell whoever runs the apps. */
export interface AppSocketEvents {
  /** An app's socket closed without being ended here: a drop, or a close for misbehaving (1008, 1009, 4009...). */
  dropped: (packageName: string) => void
}

export class AppSockets implements AppOutlet, AppBroadcast {
  // Lazy: most sessions never run an app.
  private readonly connections = new LazyMap<string, AppChannel>()
  /** One sink for every app socket of the session (each frame names its channel), made with the first. */
  private sink: AppChannelSink | null = null

  constructor (
    private readonly session: SessionContext,
    private readonly service: AppsService,
    private readonly inbox: AppInbox,
    private readonly events: AppSocketEvents
  ) {}

  /**
   * Take the socket of an app whose init was accepted: acknowledge it, then deliver
   * its frames (any sent before the ack first). A socket the app had already (the
   * SDK reconnecting with the same init) is made deaf, then closed.
   */
  attach (packageName: string, appSessionId: string, connection: AppChannel): void {
    const previous = this.connections.get(packageName)
    if (previous !== undefined && previous !== connection) {
      previous.unbind()
      previous.close(CloseCode.NORMAL, 'replaced')
    }
    this.connections.set(packageName, connection)
    connection.packageName = packageName
    connection.appSessionId = appSessionId
    connection.send({
      type: 'tpa_connection_ack',
      sessionId: appSessionId,
      settings: [],
      mentraosSettings: {},
      capabilities: CAPABILITIES,
      timestamp: isoNow()
    })
    this.sink ??= {
      onText: (channel, text) => this.guarded(channel, () => this.receive(channel, text)),
      onBinary: (channel) => this.reject(channel, 'INVALID_MESSAGE', 'apps send no binary frames'),
      onClose: (channel) => this.closed(channel)
    }
    connection.bind(this.sink)
  }

  /** True while the app's socket is attached and open. */
  isConnected (packageName: string): boolean { return this.connections.get(packageName)?.isOpen === true }

  /**
   * Stop listening to an app's socket and sending to it, without closing it: a
   * stopping app's last words change nothing. The caller ends it with `end`.
   */
  detach (packageName: string): AppChannel | null {
    const connection = this.connections.get(packageName)
    if (connection === undefined) return null
    this.connections.delete(packageName)
    connection.unbind()
    return connection
  }

  /** Tell the app it is over and close its socket with 1000 and the reason. */
  end (connection: AppChannel, reason: AppEndReason): void {
    connection.unbind()
    connection.send({ type: 'app_stopped', reason, timestamp: isoNow() })
    connection.close(CloseCode.NORMAL, reason)
  }

  /**
   * Session end: every socket told and closed, except on `handover`, where the apps
   * move with the session: their sockets are left for the SDK to release when the
   * new node's webhook reaches it, and ended only if it has not after APP_START_TIMEOUT_MS.
   */
  dispose (reason?: DisposeReason): void {
    for (const connection of this.connections.values()) {
      if (reason !== undefined && !DISPOSE_POLICY[reason].appsTold) this.leaveForHandover(connection)
      else this.end(connection, 'User session ended')
    }
    this.connections.clear()
  }

  // ---- sending to apps ----

  /** Send one `data_stream`; true when it went out (counted as relayed). */
  sendData (packageName: string, streamType: string, data: unknown): boolean {
    const connection = this.connections.get(packageName)
    if (connection === undefined) return false
    return connection.send({
      type: 'data_stream',
      sessionId: connection.appSessionId,
      streamType,
      data,
      timestamp: isoNow()
    }) > 0
  }

  /** Send one message of its own type to an app (answers to its requests); false when it is not connected. */
  sendMessage (packageName: string, message: { type: string, [key: string]: unknown }): boolean {
    const connection = this.connections.get(packageName)
    if (connection === undefined) return false
    return connection.send({ ...message, sessionId: connection.appSessionId, timestamp: isoNow() }) > 0
  }

  /** Send one message to every connected app of the session (device state: no subscription needed). */
  broadcast (message: { type: string, [key: string]: unknown }): void {
    for (const packageName of this.connections.keys()) this.sendMessage(packageName, message)
  }

  sendAudio (packageName: string, data: Buffer): void {
    const connection = this.connections.get(packageName)
    if (connection === undefined) return
    if (!connection.sendDroppable(data)) this.service.events.emit('app.audio_dropped', packageName)
  }

  // ---- from apps ----

  private receive (connection: AppChannel, text: string): void {
    const packageName = connection.packageName
    // Only the socket attached for its app speaks for it. Replaced and detached sockets are unbound
    // already; this is the second line, so a socket bound by mistake still cannot act for an app.
    if (packageName === null || this.connections.get(packageName) !== connection) return
    const parsed = parseAppFrame(text, this.service.config.maxJsonDepth)
    if (!parsed.ok) {
      this.reject(connection, parsed.code, parsed.message)
      return
    }
    const rejection = this.inbox.route(packageName, parsed.message)
    if (rejection !== null) this.reject(connection, rejection.code, rejection.message)
  }

  /** An error while handling an app's message ends that app's socket (1011), never the session or the process. */
  private guarded (connection: AppChannel, work: () => void): void {
    try {
      work()
    } catch (error) {
      this.session.log.error({ err: error, packageName: connection.packageName }, 'app message handling failed')
      connection.close(CloseCode.INTERNAL_ERROR)
    }
  }

  private reject (connection: AppChannel, code: string, message: string): void {
    connection.send({ type: 'error', code, message, timestamp: isoNow() })
    if (connection.recordBadFrame()) connection.close(CloseCode.POLICY_VIOLATION, 'too many bad frames')
  }

  /** Sockets ended on purpose are unbound first: a close that reaches here is the app's (or its misbehaviour's). */
  private closed (connection: AppChannel): void {
    const packageName = connection.packageName
    if (packageName === null || this.connections.get(packageName) !== connection) return
    this.connections.delete(packageName)
    this.events.dropped(packageName)
  }

  private leaveForHandover (connection: AppChannel): void {
    connection.unbind()
    // Not tracked by a resource tracker: it must outlive the (disposed) session, briefly.
    setTimeout(() => connection.terminate(), this.service.config.appStartTimeoutMs).unref()
  }
}
