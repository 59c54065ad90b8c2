/**
 * WebSocket close codes the server sends (docs/PROTOCOL.md 1.6), each with its
 * reason text and what a well-behaved client does next. One table, so the session,
 * the routes, the README (test/protocol/close-codes.test.ts holds them together)
 * and the metrics all speak the same numbers.
 */

/**
 * What a client should do after a close: `reconnect` (a new or resumed session waits), `reconnect_with_jitter`
 * (many clients were closed at once), `fix_then_reconnect` (the client sent something it must not resend),
 * `do_not_reconnect` (another socket or an admin ended it on purpose).
 */
export type ReconnectAdvice = 'reconnect' | 'reconnect_with_jitter' | 'fix_then_reconnect' | 'do_not_reconnect'

export interface CloseCodeEntry {
  readonly code: number
  /** The reason sent with the code unless the sender gives a more precise one: short, human-readable, stable. */
  readonly reason: string
  readonly reconnect: ReconnectAdvice
}

export const CLOSE_CODES = {
  /** Normal end (apps: "App stopped", "User session ended", "replaced"). */
  NORMAL: { code: 1000, reason: 'normal closure', reconnect: 'do_not_reconnect' },
  /** Server shutting down. */
  GOING_AWAY: { code: 1001, reason: 'server shutting down', reconnect: 'reconnect_with_jitter' },
  /** A text frame that is not valid UTF-8 (sent by `ws` itself). */
  INVALID_PAYLOAD: { code: 1007, reason: 'invalid UTF-8', reconnect: 'fix_then_reconnect' },
  /** Policy: too many bad frames, frames before the ack, an expired token (then with a new token). */
  POLICY_VIOLATION: { code: 1008, reason: 'policy violation', reconnect: 'fix_then_reconnect' },
  /** Frame larger than MAX_MESSAGE_BYTES (sent by `ws` itself). */
  MESSAGE_TOO_BIG: { code: 1009, reason: 'message too big', reconnect: 'fix_then_reconnect' },
  /** Internal error; the session was disposed, the next connection starts a new one. */
  INTERNAL_ERROR: { code: 1011, reason: 'internal error', reconnect: 'reconnect' },
  /** Cluster: the session could not be claimed for this socket after all (a race, or Redis away). */
  TRY_AGAIN_LATER: { code: 1013, reason: 'try again later', reconnect: 'reconnect' },
  /** A newer socket of the same user took over. */
  REPLACED: { code: 4001, reason: 'replaced by a newer connection', reconnect: 'do_not_reconnect' },
  /** Session ended by an admin. */
  ADMIN_ENDED: { code: 4002, reason: 'session ended by an admin', reconnect: 'do_not_reconnect' },
  /** Outbound buffer over MAX_BUFFERED_BYTES; the session waits in grace. */
  SLOW_CONSUMER: { code: 4009, reason: 'slow consumer', reconnect: 'reconnect' }
} as const satisfies Record<string, CloseCodeEntry>

type CloseCodeName = keyof typeof CLOSE_CODES

/** The codes by name (`CloseCode.REPLACED === 4001`). */
export const CloseCode = Object.fromEntries(
  Object.entries(CLOSE_CODES).map(([name, entry]) => [name, entry.code])
) as { readonly [N in CloseCodeName]: typeof CLOSE_CODES[N]['code'] }

export type CloseCodeValue = typeof CloseCode[CloseCodeName]

/** The default reason sent with each code. */
export const CloseReason = Object.fromEntries(
  Object.values(CLOSE_CODES).map(entry => [entry.code, entry.reason])
) as Readonly<Record<CloseCodeValue, string>>
