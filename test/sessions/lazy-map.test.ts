import fc from 'fast-check'
import t from 'tap'
import { LazyMap } from '../../sessions/lazy-map.js'

type Op = { kind: 'set', key: number, value: string } | { kind: 'delete', key: number } | { kind: 'clear' }

const op: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ kind: fc.constant('set' as const), key: fc.integer({ min: 0, max: 5 }), value: fc.string() }),
  fc.record({ kind: fc.constant('delete' as const), key: fc.integer({ min: 0, max: 5 }) }),
  fc.constant({ kind: 'clear' as const })
)

t.test('a LazyMap answers exactly as a Map after any sequence of writes', async t => {
  fc.assert(fc.property(fc.array(op, { maxLength: 40 }), ops => {
    const lazy = new LazyMap<number, string>()
    const map = new Map<number, string>()
    for (const o of ops) {
      if (o.kind === 'set') {
        lazy.set(o.key, o.value)
        map.set(o.key, o.value)
      } else if (o.kind === 'delete') {
        if (lazy.delete(o.key) !== map.delete(o.key)) return false
      } else {
        lazy.clear()
        map.clear()
      }
      if (lazy.size !== map.size) return false
      for (let key = 0; key <= 5; key += 1) {
        if (lazy.has(key) !== map.has(key) || lazy.get(key) !== map.get(key)) return false
      }
      if (JSON.stringify([...lazy]) !== JSON.stringify([...map])) return false
      if (JSON.stringify([...lazy.keys()]) !== JSON.stringify([...map.keys()])) return false
      if (JSON.stringify([...lazy.values()]) !== JSON.stringify([...map.values()])) return false
    }
    return true
  }), { numRuns: 200 })
  t.pass('200 random sequences agreed')
})

t.test('a never-written LazyMap is empty and iterates nothing', async t => {
  const lazy = new LazyMap<string, number>()
  t.equal(lazy.size, 0)
  t.equal(lazy.get('a'), undefined)
  t.equal(lazy.delete('a'), false)
  t.same([...lazy.entries()], [])
  lazy.set('a', 1)
  t.same([...lazy], [['a', 1]], 'and works once written')
})
