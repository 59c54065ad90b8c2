/**
 * Opaque paging cursors for `GET /sessions`. On one node a cursor carries the
 * creation sequence of the last session on a page; in a cluster, its start time
 * and instance id (the cluster-wide order). Clients must not rely on either.
 */
const LOCAL = 'v1:'
const CLUSTER = 'c1:'

export function encodeCursor (sequence: number): string {
  return Buffer.from(`${LOCAL}${sequence}`, 'utf8').toString('base64url')
}

/** The sequence a local cursor stands for, or null when it is not one of ours. */
export function decodeCursor (cursor: string): number | null {
  const text = Buffer.from(cursor, 'base64url').toString('utf8')
  if (!text.startsWith(LOCAL)) return null
  const sequence = Number(text.slice(LOCAL.length))
  return Number.isSafeInteger(sequence) && sequence >= 0 ? sequence : null
}

/** A cluster position: sessions sort by start time, then instance id. */
export interface ClusterPosition { startedAt: number, sessionInstanceId: string }

export function encodeClusterCursor (position: ClusterPosition): string {
  return Buffer.from(`${CLUSTER}${position.startedAt}|${position.sessionInstanceId}`, 'utf8').toString('base64url')
}

export function decodeClusterCursor (cursor: string): ClusterPosition | null {
  const text = Buffer.from(cursor, 'base64url').toString('utf8')
  if (!text.startsWith(CLUSTER)) return null
  const [time = '', id = ''] = text.slice(CLUSTER.length).split('|')
  const startedAt = Number(time)
  return Number.isSafeInteger(startedAt) && id !== '' ? { startedAt, sessionInstanceId: id } : null
}

/** Strict order of cluster positions. */
export function comparePositions (a: ClusterPosition, b: ClusterPosition): number {
  return a.startedAt - b.startedAt || (a.sessionInstanceId < b.sessionInstanceId ? -1 : a.sessionInstanceId > b.sessionInstanceId ? 1 : 0)
}
