/** Admin views of a session (docs/PROTOCOL.md 3 `Summary` and detail), built from the session itself. */
import type { SessionCounts, Summary } from '../protocol/admin.js'
import type { LifecycleEvent } from './lifecycle.js'
import type { UserSession } from './user-session.js'

/** Sessions by state: a node's gauges and its own figure in the admin views. */
export function countByState (sessions: Iterable<UserSession>): SessionCounts {
  let active = 0
  let grace = 0
  for (const session of sessions) {
    if (session.state === 'active') active += 1
    else if (session.state === 'grace') grace += 1
  }
  return { active, grace, total: active + grace }
}

const iso = (ms: number | null): string | null => ms === null ? null : new Date(ms).toISOString()

export function summarize (session: UserSession, now = Date.now()): Summary {
  const times = session.times
  return {
    userId: session.userId,
    sessionInstanceId: session.sessionInstanceId,
    state: session.state,
    nodeId: session.nodeId,
    startedAt: new Date(times.startedAt).toISOString(),
    connectedAt: iso(times.connectedAt),
    disconnectedAt: iso(times.disconnectedAt),
    graceExpiresAt: iso(times.graceExpiresAt),
    reconnections: session.reconnections,
    connectedMs: session.stats.connectedMs(now),
    activeApps: session.view().activeAppSessions,
    data: session.stats.counts()
  }
}

export interface SessionDetail extends Summary {
  managers: Record<string, unknown>
  events: LifecycleEvent[]
}

export function sessionDetail (session: UserSession): SessionDetail {
  // The session's own stats stand beside its managers' snapshots, under the name they always had.
  const managers: Record<string, unknown> = { metrics: session.stats.snapshot() }
  for (const manager of session.managers) {
    try {
      managers[manager.name] = manager.snapshot()
    } catch (error) {
      managers[manager.name] = { error: (error as Error).message }
    }
  }
  return { ...summarize(session), managers, events: session.recentEvents() }
}
