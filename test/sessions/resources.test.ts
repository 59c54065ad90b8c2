import { EventEmitter } from 'node:events'
import t from 'tap'
import { KeyedLock } from '../../sessions/keyed-lock.js'
import { Resources } from '../../sessions/resources.js'
import { delay } from '../helper.js'

t.test('Resources releases timers, intervals and listeners', async t => {
  const res = new Resources()
  const emitter = new EventEmitter()
  let fired = 0
  res.timeout(() => { fired += 1 }, 10)
  res.interval(() => { fired += 1 }, 5)
  res.listen(emitter, 'x', () => { fired += 1 })
  let cleaned = false
  res.add(() => { cleaned = true })
  t.equal(res.size, 4)
  res.dispose()
  t.equal(res.size, 0)
  t.ok(cleaned)
  emitter.emit('x')
  await delay(30)
  t.equal(fired, 0, 'nothing fired after dispose')
  t.equal(emitter.listenerCount('x'), 0)
  res.timeout(() => { fired += 1 }, 1)
  t.equal(res.size, 0, 'a disposed tracker takes nothing new')
  res.dispose()
})

t.test('a fired timeout leaves the tracker; clear keeps it usable', async t => {
  const res = new Resources()
  res.timeout(() => {}, 1)
  await delay(10)
  t.equal(res.size, 0)
  res.interval(() => {}, 1000)
  res.clear()
  t.equal(res.size, 0)
  let ran = false
  res.timeout(() => { ran = true }, 1)
  await delay(10)
  t.ok(ran)
})

t.test('KeyedLock serialises per key, in order, and survives a failing task', async t => {
  const lock = new KeyedLock()
  const order: string[] = []
  const a = lock.run('k', async () => { await delay(20); order.push('a') })
  const b = lock.run('k', () => { order.push('b'); throw new Error('fail') })
  const c = lock.run('k', () => { order.push('c') })
  const other = lock.run('other', () => { order.push('other') })
  await Promise.allSettled([a, b, c, other])
  t.same(order, ['other', 'a', 'b', 'c'])
  await t.rejects(b)
  await delay(1)
  t.equal(lock.size, 0, 'no keys left behind')
})
