/**
 * Opaque paging cursors for `GET /sessions`. Today a cursor carries the creation
 * sequence of the last session on a page; clients must not rely on that.
 */
const PREFIX = 'v1:'

export function encodeCursor (sequence: number): string {
  return Buffer.from(`${PREFIX}${sequence}`, 'utf8').toString('base64url')
}

/** The sequence a cursor stands for, or null when it is not one of ours. */
export function decodeCursor (cursor: string): number | null {
  const text = Buffer.from(cursor, 'base64url').toString('utf8')
  if (!text.startsWith(PREFIX)) return null
  const sequence = Number(text.slice(PREFIX.length))
  return Number.isSafeInteger(sequence) && sequence >= 0 ? sequence : null
}
