/**
 * The wire's timestamps (ISO 8601, UTC, milliseconds). Formatting a Date costs about
 * half a microsecond, and a connect, a pong or a message relayed to an app each
 * stamp one or more; within one millisecond the text is the same, so the last one
 * is kept and reused.
 */
let lastMs = Number.NaN
let lastText = ''

/** The current time as `Date.prototype.toISOString` writes it. */
export function isoNow (): string {
  const now = Date.now()
  if (now !== lastMs) {
    lastMs = now
    lastText = new Date(now).toISOString()
  }
  return lastText
}
