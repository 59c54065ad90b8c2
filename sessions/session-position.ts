/**
 * Where a session sorts in the admin list, on one node and across a cluster:
 * by start time, then instance id, then user. The same string orders the Redis
 * index (lexically, so the time is zero-padded) and the cursors of `GET /sessions`.
 */

/** Wide enough for any epoch millisecond until the year 33658. */
const TIME_DIGITS = 15

export function sessionPosition (startedAt: number, sessionInstanceId: string, userId: string): string {
  return `${String(startedAt).padStart(TIME_DIGITS, '0')}|${sessionInstanceId}|${userId}`
}

/** The start time a position names (its first part). */
export function positionTime (position: string): number {
  return Number(position.slice(0, TIME_DIGITS))
}

/** The user a position names. */
export function positionUser (position: string): string {
  const first = position.indexOf('|')
  const second = position.indexOf('|', first + 1)
  return second < 0 ? '' : position.slice(second + 1)
}

/** A well-formed position: a padded time, then two non-empty parts. */
export function isPosition (text: string): boolean {
  const first = text.indexOf('|')
  const second = text.indexOf('|', first + 1)
  return first === TIME_DIGITS && /^\d+$/.test(text.slice(0, first)) && second > first + 1 && second < text.length - 1
}
