/**
 * The contract every manager keeps (docs/ARCHITECTURE.md "Managers, and who talks to whom"). A manager is created by
 * its session, lives exactly as long as it, owns its resources, and talks to the
 * rest of the session only through `SessionContext`.
 */
import type { GlassesMessage, UnlistedGlassesMessage } from '../protocol/glasses-messages.js'
import type { ServerMessage, UserSessionView } from '../protocol/server-messages.js'
import type { GlassesConnection } from './glasses-connection.js'
import type { SessionConfig } from './session-config.js'
import type { Log } from './log.js'
import type { DisposeReason } from './lifecycle.js'
import type { AppSnapshot, SessionSnapshot } from './session-snapshot.js'

/** What a manager may see and do of its session. */
export interface SessionContext {
  readonly userId: string
  readonly sessionInstanceId: string
  readonly config: SessionConfig
  readonly log: Log
  /** True while a phone socket is attached (false in grace). */
  readonly phoneConnected: boolean
  /** Send to the glasses if a socket is attached; false when there is none (grace). */
  send: (message: ServerMessage) => boolean
  /** The app-facing view of the session, as carried by the ack and `app_state_change`. */
  view: () => UserSessionView
  /** The state this session was resumed from on another node, or null for a new session. */
  readonly restored: SessionSnapshot | null
  /** What another node would need to resume the session changed (apps started or stopped): write it down. */
  changed: () => void
  /** The one manager that runs apps hands the session its apps facet (the view's app part, the apps to move). */
  provideApps: (apps: AppsFacet) => void
}

/** The session's apps, as the manager that runs them shows them: the only app vocabulary the session knows. */
export interface AppsFacet {
  /** The apps part of the session view (ack, `app_state_change`). */
  view: () => AppsView
  /** The running apps, for a snapshot another node resumes from. */
  running: () => AppSnapshot[]
}

/** The app part of the session view, contributed by the manager that runs apps. */
export type AppsView = Pick<UserSessionView, 'activeAppSessions' | 'loadingApps' | 'appSubscriptions'>

export interface AttachContext {
  readonly connection: GlassesConnection
  /** True when this socket resumed a grace period or replaced a live socket. */
  readonly reconnection: boolean
}

export interface DetachContext {
  readonly connectionId: string
  readonly closeCode: number
}

export interface Manager {
  readonly name: string
  /** A socket (re)attached: resend state, (re)start per-socket work. Called on every attach, replacements included. */
  onAttach?: (ctx: AttachContext) => void
  /** The socket is gone and the grace period started: pause, keep state. */
  onDetach?: (ctx: DetachContext) => void
  /** A validated glasses message; return true when this manager owns it (dispatch stops there). */
  handle?: (message: GlassesMessage) => boolean
  /** A well-formed glasses message of a type without a schema; offered to every manager. */
  handleUnlisted?: (message: UnlistedGlassesMessage) => void
  /** A binary (audio) frame from the glasses. */
  handleBinary?: (data: Buffer) => void
  /** A JSON-safe view for GET /sessions/:userId. */
  snapshot: () => unknown
  /**
   * Release everything; idempotent. May be async; the session bounds it with a
   * timeout. On `handover` the session moves to another node: apps are not told.
   */
  dispose: (reason?: DisposeReason) => Promise<void> | void
}

/** Builds a session's manager, or a group of managers wired to each other; the app is composed from a list of these. */
export interface ManagerFactory {
  (session: SessionContext): Manager | readonly Manager[]
  /**
   * Present on a factory whose managers a fresh session may build on first need (a message for them, a
   * lookup, a resume) rather than at creation: most sessions never need them, and they cost kilobytes
   * per idle session. Says whether a fresh session needs them at its first attach all the same; a plain
   * answer (a store in memory) builds them within that attach, with no promise.
   */
  readonly neededAtStart?: (session: SessionContext) => boolean | Promise<boolean>
  /**
   * With `neededAtStart`: what a reconnection gets in place of these managers while they are unbuilt, when all it
   * needs of them is what their untouched state would resend. Made at the first such reconnection, told of every
   * attach from then until they are built (the factory may hand its state over to them), disposed then or with the
   * session. Without it, a reconnection builds them.
   */
  readonly standIn?: (session: SessionContext) => StandIn
}

/** Stands in for a factory's unbuilt managers at reconnections (`ManagerFactory.standIn`). */
export interface StandIn {
  onAttach: (ctx: AttachContext) => void
  /** Release everything; idempotent. */
  dispose: () => void
}
