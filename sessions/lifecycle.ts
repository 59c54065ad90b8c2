/** States, reasons and lifecycle events of a user session: the string unions live here and nowhere else. */
import type { Static } from 'typebox'
import type { SessionStateSchema } from '../protocol/admin.js'
import { CloseCode, type CloseCodeValue } from '../protocol/close-codes.js'

/** The states, as the admin API's schema lists them (one union, written once). */
export type SessionState = Static<typeof SessionStateSchema>

/** The state machine's legal moves (docs/ARCHITECTURE.md "The session state machine"): anything else is a bug. */
export const TRANSITIONS: Readonly<Record<SessionState, readonly SessionState[]>> = {
  // active -> active: a newer socket replaced the live one.
  active: ['active', 'grace', 'disposing'],
  grace: ['active', 'disposing'],
  disposing: ['disposed'],
  disposed: []
}

/** `handover`: the session moved to another node of the cluster (this copy is dropped; apps move, not end). */
export type DisposeReason = 'grace_expired' | 'manual' | 'shutdown' | 'fatal_error' | 'handover'

/** A manager that failed or timed out while its session was disposed. */
export interface DisposeFailure { manager: string, kind: 'error' | 'timeout', error?: unknown }

/** What ending a session for a reason means, in one place (counted in metrics by the reason itself). */
export interface DisposePolicy {
  /** The close code the phone's socket gets, or null to terminate it (it is gone already, in grace). */
  closeCode: CloseCodeValue | null
  /** Apps are sent `app_stopped` and closed; false when they move to another node with the session. */
  appsTold: boolean
  /** In a cluster, the session's saved state is kept for the node it moved to. */
  stateKept: boolean
}

export const DISPOSE_POLICY: Readonly<Record<DisposeReason, DisposePolicy>> = {
  grace_expired: { closeCode: null, appsTold: true, stateKept: false },
  manual: { closeCode: CloseCode.ADMIN_ENDED, appsTold: true, stateKept: false },
  shutdown: { closeCode: CloseCode.GOING_AWAY, appsTold: true, stateKept: false },
  fatal_error: { closeCode: CloseCode.INTERNAL_ERROR, appsTold: true, stateKept: false },
  // The user's newer socket is on another node: the old one is closed as a replacement on one node would be.
  handover: { closeCode: CloseCode.REPLACED, appsTold: false, stateKept: true }
}

/** How a socket came to be attached: a new session, a resumed grace period, or a live socket taken over. */
export type AttachOutcome = 'created' | 'resumed' | 'replaced'

export type LifecycleEventName =
  | 'session.created' | 'session.attached' | 'session.detached'
  | 'session.resumed' | 'session.replaced' | 'session.disposed'
  /** Sockets of the user kept replacing each other: the holder keeps the session for a cool-down. */
  | 'session.contested'

export interface LifecycleEvent {
  event: LifecycleEventName
  at: string
  userId: string
  sessionInstanceId: string
  nodeId: string
  connectionId?: string
  reason?: string
  closeCode?: number
  reconnections: number
  /** session.disposed: the session's whole life. */
  durationMs?: number
  /** session.resumed: how long the glasses were away. */
  downtimeMs?: number
  /** session.detached: time since the last inbound frame when the socket dropped. */
  silenceMs?: number
  /** session.attached: time from the socket's upgrade to its ack. */
  ackMs?: number
  /** session.disposed: managers that failed or timed out. */
  failures?: Array<{ manager: string, kind: 'error' | 'timeout' }>
}

/** The most recent events of one session, oldest first; bounded so a flapping client cannot grow it. */
export class EventLog {
  private items: readonly LifecycleEvent[] = []
  constructor (private readonly capacity = 50) {}

  /**
   * Copies into an array of exactly the new length (`concat`; `push` and spread would give the few
   * events of a typical session a backing store of 17 or more slots), and events are rare.
   */
  push (event: LifecycleEvent): void {
    const kept = this.items.length < this.capacity ? this.items : this.items.slice(1)
    this.items = kept.concat([event])
  }

  list (): LifecycleEvent[] { return [...this.items] }
}
