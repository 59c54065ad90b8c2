/** Messages the server sends to the glasses (docs/PROTOCOL.md 1.2, 1.3, 1.5). */
import type { MessageErrorCode } from './error-codes.js'

/** The app-facing view of a session, carried by the ack and by `app_state_change`. */
export interface UserSessionView {
  userId: string
  startTime: string
  activeAppSessions: string[]
  loadingApps: string[]
  appSubscriptions: Record<string, string[]>
}

export interface ConnectionAck {
  type: 'connection_ack'
  sessionId: string
  sessionInstanceId: string
  connectionId: string
  reconnection: boolean
  heartbeat: { pingIntervalMs: number, silenceTimeoutMs: number }
  userSession: UserSessionView
  timestamp: string
}

export interface PongMessage { type: 'pong', timestamp: string }

export interface ErrorMessage { type: 'error', code: MessageErrorCode, message: string, timestamp: string }

export type ServerMessage = ConnectionAck | PongMessage | ErrorMessage | { type: string, [key: string]: unknown }
