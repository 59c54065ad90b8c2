/**
 * Random ids (sessions, sockets, app sessions) as flat strings. Node writes
 * `randomUUID()`'s text by joining its pieces one by one, and V8 keeps such a
 * string as a tree of those pieces until something reads it whole: held for a
 * session's life, each costs about 480 bytes of heap instead of about 50
 * (test/sessions/ids.test.ts measures it). Reading one character makes V8
 * flatten the string in place, and the tree becomes garbage.
 */
import { randomUUID } from 'node:crypto'

export function newId (): string {
  const id = randomUUID()
  id.charCodeAt(0)
  return id
}
