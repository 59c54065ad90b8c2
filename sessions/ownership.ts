/**
 * The ownership seam (docs/ARCHITECTURE.md "Cluster mode"): which node holds each
 * user's session, and the views and requests that reach across nodes. One node
 * alone uses `LocalOwnership` (everything in memory, nothing written); a cluster
 * uses the Redis implementation in `cluster/`. The registry, the routes and the
 * plugins talk to this interface only, never to a mode.
 */
import type { SessionCounts, Summary } from '../protocol/admin.js'
import type { DisposeReason } from './lifecycle.js'
import type { UserStore } from './user-store.js'
import type { SessionSnapshot } from './session-snapshot.js'
import type { SessionDetail } from './summary.js'
import type { UserSession } from './user-session.js'

/** The owner did not hand the session over yet: the client should retry shortly (503 SESSION_MOVING). */
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

/** What ownership needs from the registry: this node's sessions, serialised per user. */
export interface OwnershipHost {
  /** The user's live session on this node. */
  local: (userId: string) => UserSession | undefined
  /** Every session of this node, live or not yet removed. */
  all: () => Iterable<UserSession>
  /** Run under the user's lock. */
  locked: <T>(userId: string, task: () => T | Promise<T>) => Promise<T>
  /** End a local session (an admin's delete routed here). */
  end: (userId: string, reason: DisposeReason) => Promise<boolean>
}

/** A node of the cluster as the admin API shows it. */
export interface NodeInfo { nodeId: string, publicUrl: string, active: number, grace: number, at: string }

export interface SessionPageQuery {
  state?: 'active' | 'grace'
  /** The position of the last session of the previous page (from its cursor), or null for the first page. */
  after: string | null
  limit: number
}

export interface SessionPage {
  sessions: Summary[]
  /** The position to continue after, or null on the last page. */
  next: string | null
  counts: SessionCounts
}

/** A handler for a kind of request other nodes forward to the owner of a session. */
export type RequestHandler = (params: unknown) => Promise<unknown>

export interface Ownership {
  readonly nodeId: string
  /** False while the shared store cannot be reached: /ready says so and new claims fail closed. */
  readonly healthy: boolean
  /** What outlives a session of a user (running apps, settings, blocks), where every node sees it. */
  readonly userStore: UserStore
  /** Begin serving: other nodes' requests, this node's liveness. */
  start: (host: OwnershipHost) => Promise<void>
  /** Stop serving and let go of this node's users. */
  stop: () => Promise<void>
  /**
   * Before an upgrade: make sure this node may hold the user, so a session that cannot move yet is an
   * HTTP answer. Throws (or rejects with) SessionMovingError or DirectoryUnavailableError. Returns
   * nothing when nothing needs asking (one node), so the upgrade does not wait a turn for it.
   */
  prepare: (userId: string) => Promise<void> | undefined
  /**
   * Under the user's lock, before creating its session here: take the user for this node. Returns the
   * state to resume from (another node's session), or null for a new session. Synchronous when nothing
   * needs asking, so one node's connect path never waits.
   */
  claim: (userId: string) => SessionSnapshot | null | Promise<SessionSnapshot | null>
  /** A local session changed in a way another node would need to resume it (state, apps). */
  changed: (session: UserSession) => void
  /** A local session was disposed: let its user go (keeping its state when it moved to another node). */
  released: (session: UserSession, reason: DisposeReason) => void
  /** One page of the sessions of every node, in start order, with the counts. */
  page: (query: SessionPageQuery) => Promise<SessionPage>
  /** One session's detail, from whichever node holds it; null when there is none. */
  detail: (userId: string) => Promise<SessionDetail | null>
  /** End a session wherever it lives (an admin's delete). True when there was one. */
  end: (userId: string) => Promise<boolean>
  nodes: () => Promise<NodeInfo[]>
  /** Serve a kind of request other nodes forward to the owner of a session. */
  serve: (method: string, handler: RequestHandler) => void
  /** Have the node that owns the user's session run a request; null when no other node owns it or it is silent. */
  forward: <T>(userId: string, method: string, params: unknown, timeoutMs: number) => Promise<T | null>
  /** Call `listener` (coalesced) whenever a session changed on any node: the admin page's feed. */
  onChange: (listener: () => void) => () => void
}
