/** `code` values of `connection_error` (HTTP answers to a refused upgrade, docs/PROTOCOL.md 1.1). */
export type ConnectionErrorCode =
  | 'NO_TOKEN' | 'INVALID_TOKEN' | 'RATE_LIMITED' | 'ORIGIN_NOT_ALLOWED' | 'SHUTTING_DOWN' | 'SESSION_MOVING'
  | 'DIRECTORY_UNAVAILABLE' | 'USER_BLOCKED' | 'SESSION_IN_USE'

/** `code` of `tpa_connection_error`, the answer to a refused app init (docs/PROTOCOL.md 2.2). */
export type AppConnectionErrorCode = 'INVALID_API_KEY' | 'SESSION_NOT_FOUND' | 'APP_NOT_STARTED' | 'INVALID_INIT'

/** `code` values of `error` messages sent on an open glasses socket (docs/PROTOCOL.md 1.4). */
export type MessageErrorCode = 'MALFORMED_MESSAGE' | 'UNKNOWN_TYPE' | 'INVALID_MESSAGE' | 'UNKNOWN_APP'
