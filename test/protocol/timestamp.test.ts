/**
 * The wire's timestamps: what `toISOString` writes for the current millisecond, reused
 * within it and never stale across one.
 */
import t from 'tap'
import { isoNow } from '../../protocol/timestamp.js'

t.test('isoNow writes the current time as toISOString does', async t => {
  const before = Date.now()
  const text = isoNow()
  const after = Date.now()
  t.match(text, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/)
  const at = Date.parse(text)
  t.ok(at >= before && at <= after, `${text} lies between ${before} and ${after}`)
  t.equal(new Date(at).toISOString(), text)
})

t.test('a later millisecond gets a later timestamp', async t => {
  const first = isoNow()
  const start = Date.now()
  // Spin rather than sleep: the point is the next millisecond, not a timer.
  while (Date.now() < start + 2) { /* wait out the millisecond */ }
  const second = isoNow()
  t.ok(Date.parse(second) >= start + 2, `${second} is not the ${first} of an earlier millisecond`)
  t.ok(second > first)
})
