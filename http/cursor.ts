/**
 * Opaque paging cursors for `GET /sessions`: the position of the last session
 * of a page (start time, instance id, user), the same on one node and across a
 * cluster. Clients must not rely on what is inside.
 */
import { isPosition } from '../sessions/session-position.js'

const VERSION = 'p1:'

export function encodeCursor (position: string): string {
  return Buffer.from(`${VERSION}${position}`, 'utf8').toString('base64url')
}

/** The position a cursor stands for, or null when it is not one of ours. */
export function decodeCursor (cursor: string): string | null {
  const text = Buffer.from(cursor, 'base64url').toString('utf8')
  if (!text.startsWith(VERSION)) return null
  const position = text.slice(VERSION.length)
  return isPosition(position) ? position : null
}
