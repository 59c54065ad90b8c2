/** A burst of Redis work keeps at most its limit in flight, and does every item once. */
import t from 'tap'
import { inBatches } from '../../cluster/bounded.js'

t.test('every item once, never more than the limit in flight', async t => {
  let inFlight = 0
  let most = 0
  const done: number[] = []
  await inBatches(Array.from({ length: 1000 }, (_, i) => i), 16, async item => {
    inFlight += 1
    most = Math.max(most, inFlight)
    await new Promise(resolve => setImmediate(resolve))
    done.push(item)
    inFlight -= 1
  })
  t.equal(most, 16, 'the limit is reached and kept')
  t.same([...done].sort((a, b) => a - b), Array.from({ length: 1000 }, (_, i) => i))
})

t.test('fewer items than the limit, and none', async t => {
  const seen: string[] = []
  await inBatches(['a', 'b'], 256, async item => { seen.push(item) })
  t.same(seen.sort(), ['a', 'b'])
  await inBatches([], 4, async () => { t.fail('no item') })
})
