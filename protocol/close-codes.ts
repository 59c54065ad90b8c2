/**
 * WebSocket close codes the server sends (docs/PROTOCOL.md 1.6). One table so that the
 * session, the routes, the README and the metrics all speak the same numbers.
 */
export const CloseCode = {
  /** Normal end (apps: "App stopped", "User session ended", "replaced"). */
  NORMAL: 1000,
  /** Server shutting down: reconnect with jitter. */
  GOING_AWAY: 1001,
  /** A text frame that is not valid UTF-8 (sent by `ws` itself). */
  INVALID_PAYLOAD: 1007,
  /** Policy: too many bad frames, token expired. */
  POLICY_VIOLATION: 1008,
  /** Frame larger than MAX_MESSAGE_BYTES (sent by `ws` itself). */
  MESSAGE_TOO_BIG: 1009,
  /** Internal error; the session was disposed. */
  INTERNAL_ERROR: 1011,
  /** Cluster: the session could not be claimed for this socket after all (a race, or Redis away): reconnect. */
  TRY_AGAIN_LATER: 1013,
  /** A newer socket of the same user took over. */
  REPLACED: 4001,
  /** Session ended by an admin. */
  ADMIN_ENDED: 4002,
  /** Outbound buffer over MAX_BUFFERED_BYTES. */
  SLOW_CONSUMER: 4009
} as const

export type CloseCodeValue = typeof CloseCode[keyof typeof CloseCode]

/** Close reasons sent with each code: short, human-readable, stable. */
export const CloseReason: Record<CloseCodeValue, string> = {
  1000: 'normal closure',
  1001: 'server shutting down',
  1007: 'invalid UTF-8',
  1008: 'policy violation',
  1009: 'message too big',
  1011: 'internal error',
  1013: 'try again later',
  4001: 'replaced by a newer connection',
  4002: 'session ended by an admin',
  4009: 'slow consumer'
}
