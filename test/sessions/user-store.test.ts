import t from 'tap'
import { MAX_FAILED_STARTS, MemoryUserStore } from '../../sessions/user-store.js'

t.test('running apps are remembered per user, forgotten on stop or after three failed starts in a row', async t => {
  const d = new MemoryUserStore()
  await d.appStarted('u', 'a')
  await d.appStarted('u', 'b')
  await d.appStarted('u', 'a')
  t.same(await d.runningApps('u'), ['a', 'b'])
  t.same(await d.runningApps('someone else'), [])
  await d.appStopped('u', 'b')
  t.same(await d.runningApps('u'), ['a'])
  t.equal(await d.appStartFailed('u', 'a'), 1)
  t.equal(await d.appStartFailed('u', 'a'), 2)
  await d.appStarted('u', 'a')
  t.equal(await d.appStartFailed('u', 'a'), 1, 'a success resets the count')
  for (let i = 1; i < MAX_FAILED_STARTS; i++) await d.appStartFailed('u', 'a')
  t.same(await d.runningApps('u'), [], 'three in a row: forgotten')
})
