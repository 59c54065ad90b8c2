import t from 'tap'
import { KeyedLock } from '../../sessions/keyed-lock.js'

const tick = async (): Promise<void> => await new Promise(resolve => setImmediate(resolve))

t.test('tasks of one key run one at a time, in call order; other keys do not wait', async t => {
  const lock = new KeyedLock()
  const seen: string[] = []
  let releaseFirst: () => void = () => {}
  const first = lock.run('a', async () => {
    seen.push('a1 start')
    await new Promise<void>(resolve => { releaseFirst = resolve })
    seen.push('a1 end')
    return 1
  })
  const second = lock.run('a', () => { seen.push('a2'); return 2 })
  const other = lock.run('b', () => { seen.push('b1'); return 3 })
  t.equal(await other, 3)
  t.same(seen, ['a1 start', 'b1'], 'the second task of a waits for the first; b ran meanwhile')
  releaseFirst()
  t.same(await Promise.all([first, second]), [1, 2])
  t.same(seen, ['a1 start', 'b1', 'a1 end', 'a2'])
})

t.test('a task that fails hands its error to its caller only; the next task of the key runs', async t => {
  const lock = new KeyedLock()
  const failed = lock.run('a', () => { throw new Error('boom') })
  const next = lock.run('a', () => 'ran')
  await t.rejects(failed, { message: 'boom' })
  t.equal(await next, 'ran')
})

t.test('a key is forgotten once its last task settled, also after a failure', async t => {
  const lock = new KeyedLock()
  const done = lock.run('a', () => 'ok')
  const failed = lock.run('b', async () => { throw new Error('boom') })
  t.equal(lock.size, 2, 'both keys held while their tasks are queued')
  await done
  await failed.catch(() => {})
  await tick()
  t.equal(lock.size, 0, 'nothing left behind')
  // A key queued behind a settled task stays held until its own task settles.
  let release: () => void = () => {}
  const held = lock.run('c', async () => await new Promise<void>(resolve => { release = resolve }))
  const behind = lock.run('c', () => 'after')
  await tick()
  t.equal(lock.size, 1, 'c is held while its first task runs')
  release()
  await held
  t.equal(await behind, 'after')
  await tick()
  t.equal(lock.size, 0)
})
