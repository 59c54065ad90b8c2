/**
 * What a session is, written down: enough for another node to resume it (cluster
 * handover, or a dead owner's last refresh) with the same sessionInstanceId,
 * counters and running apps.
 */

/** A session's counters, as the admin Summary's `data` shows them. */
export interface SessionData {
  audioBytes: number
  audioChunks: number
  transcripts: number
  messagesIn: number
  messagesOut: number
}

export interface AppSnapshot {
  packageName: string
  /** The opaque id the app knows its session by; reused so the SDK switches clouds rather than starting anew. */
  appSessionId: string
}

export interface SessionSnapshot {
  userId: string
  sessionInstanceId: string
  startedAt: number
  reconnections: number
  /** active: a socket was live when written; grace: the glasses were away. */
  state: 'active' | 'grace'
  data: SessionData
  connectedMs: number
  apps: AppSnapshot[]
}
