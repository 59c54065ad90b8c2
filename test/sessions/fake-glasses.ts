/**
 * Glasses for session unit tests: a GlassesConnection over an in-memory FakeSocket,
 * and a session configuration with short timers. No server.
 */
import { GlassesConnection } from '../../sessions/glasses-connection.js'
import type { SessionConfig } from '../../sessions/session-config.js'
import { FakeSocket } from '../fake-socket.js'

export const sessionConfig: SessionConfig = {
  gracePeriodMs: 60,
  pingIntervalMs: 10_000,
  silenceTimeoutMs: 30_000,
  maxBadFrames: 3,
  maxBufferedBytes: 1 << 16,
  maxJsonDepth: 32,
  tokenClockToleranceMs: 0,
  managerDisposeTimeoutMs: 50,
  nodeId: 'unit',
  takeoverLimit: 3,
  takeoverWindowMs: 30_000,
  takeoverCooldownMs: 300_000
}

/** How long a peer has to answer a close frame in these tests. */
const CLOSE_HANDSHAKE_MS = 50

export interface FakeGlasses { socket: FakeSocket, connection: GlassesConnection }

/** A freshly upgraded glasses socket of `userId`, authenticated, not yet given to a session. */
export function fakeGlasses (userId: string, config: SessionConfig = sessionConfig, options: { answersClose?: boolean } = {}): FakeGlasses {
  const socket = new FakeSocket(options)
  const identity = { userId, subject: `sub-${userId}`, expiresAt: null }
  const connection = new GlassesConnection(socket, identity, { ...config, closeHandshakeMs: CLOSE_HANDSHAKE_MS })
  return { socket, connection }
}
