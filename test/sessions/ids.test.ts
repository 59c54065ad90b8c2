import { randomUUID } from 'node:crypto'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import t, { type Test } from 'tap'
import { newId } from '../../sessions/ids.js'

setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc') as () => void

/** Heap bytes each of `count` strings from `make` holds while kept. */
function heldBytes (t: Test, make: () => string, count = 20_000): number {
  const kept = new Array<string>(count)
  gc()
  const before = process.memoryUsage().heapUsed
  for (let i = 0; i < count; i++) kept[i] = make()
  gc()
  const bytes = (process.memoryUsage().heapUsed - before) / count
  t.equal(new Set(kept).size, count, 'every id differs')
  return bytes
}

t.test('an id is a UUID', async t => {
  t.match(newId(), /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/)
})

t.test('a held id costs the heap a flat string, not the pieces randomUUID joined', async t => {
  const flat = heldBytes(t, newId)
  t.ok(flat < 120, `about 50 bytes an id (${flat.toFixed(0)})`)
  // What the id would cost as node writes it: the reason for sessions/ids.ts. If a node release makes this
  // flat itself, this check fails and sessions/ids.ts can go.
  const joined = heldBytes(t, randomUUID)
  t.ok(joined > 3 * flat, `randomUUID() as it comes: ${joined.toFixed(0)} bytes an id`)
})
