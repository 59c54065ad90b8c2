/** The display manager without a socket server: throttling, expiry, the dashboard, and glasses that are away. */
import t from 'tap'
import { DisplayManager } from '../../managers/display-manager.js'
import { delay, eventually, type Teardown } from '../helper.js'
import { FakeSession } from './fake-session.js'

function setup (t: Teardown, intervalMs = 100) {
  const session = new FakeSession()
  const display = new DisplayManager(session, {
    intervalMs,
    isSystemDashboard: packageName => packageName === 'system.dashboard'
  })
  t.teardown(() => display.dispose())
  const shown = (): Array<{ packageName: unknown, view: unknown, text: unknown }> => session.of('display_event')
    .map(m => ({ packageName: m.packageName, view: m.view, text: (m.layout as { text?: unknown }).text }))
  return { session, display, shown }
}

const wall = (text: string, extra: Record<string, unknown> = {}) =>
  ({ type: 'display_event' as const, view: 'main', layout: { layoutType: 'text_wall', text }, ...extra })

t.test('one display per view per interval; the latest waiting layout wins', async t => {
  const { display, shown } = setup(t)
  display.show('com.a', wall('1'))
  display.show('com.a', wall('2'))
  display.show('com.a', wall('3'))
  t.same(shown().map(s => s.text), ['1'], 'the first at once, the rest held')
  await eventually(() => shown().length === 2, 'the next after the interval')
  t.same(shown().map(s => s.text), ['1', '3'], '2 was replaced by 3 before it could go out')
  display.show('com.a', { ...wall('dash'), view: 'dashboard' })
  t.equal(shown().length, 2, 'dashboard from an ordinary app goes to main, so it waits its turn there')
  await eventually(() => shown().length === 3, 'main again')
  t.match(shown()[2], { view: 'main', text: 'dash' })
})

t.test('views are throttled apart; the system dashboard keeps its view', async t => {
  const { display, shown } = setup(t)
  display.show('com.a', wall('main'))
  display.show('system.dashboard', { ...wall('dash'), view: 'dashboard' })
  t.same(shown(), [{ packageName: 'com.a', view: 'main', text: 'main' }, { packageName: 'system.dashboard', view: 'dashboard', text: 'dash' }])
})

t.test('durationMs: when it passes, the layout below comes back, then the view is cleared', async t => {
  const { display, shown } = setup(t, 10)
  display.show('com.a', wall('base'))
  await delay(20)
  display.show('com.b', wall('toast', { durationMs: 120 }))
  await eventually(() => shown().length === 2, 'toast shown')
  await delay(60)
  t.equal(shown().length, 2, 'not before the duration')
  await eventually(() => shown().length === 3, 'expired', 1000)
  t.match(shown()[2], { packageName: 'com.a', text: 'base' }, 'the layout below is shown again')

  display.show('com.a', wall('brief', { durationMs: 50 }))
  await eventually(() => shown().length === 5, 'brief, then cleared', 1000)
  t.match(shown()[4], { view: 'main', text: '' }, 'nothing below: an empty text_wall clears the view')
})

t.test('held while the glasses are not connected; the latest goes out when they connect', async t => {
  const { display, shown } = setup(t)
  display.glassesConnection(false)
  display.show('com.a', wall('1'))
  display.show('com.a', wall('2'))
  await delay(150)
  t.same(shown(), [], 'nothing sent to glasses that are away')
  display.glassesConnection(true)
  t.same(shown().map(s => s.text), ['2'])
})

t.test('a reconnected phone sees each view again; a forgotten app\'s layouts are not resent', async t => {
  const { session, display, shown } = setup(t, 10)
  display.show('com.a', wall('keep'))
  display.show('com.b', { ...wall('dash'), view: 'dashboard' })
  await eventually(() => shown().length === 1, 'shown')
  await delay(20)
  session.phoneConnected = false
  display.show('com.a', wall('while away'))
  session.phoneConnected = true
  display.onAttach({ reconnection: true, connection: null as never })
  await eventually(() => shown().some(s => s.text === 'while away'), 'resent')
  display.forget('com.a')
  const before = shown().length
  await delay(20)
  display.onAttach({ reconnection: true, connection: null as never })
  await eventually(() => shown().length > before, 'resent again')
  t.same(shown().slice(before).map(s => s.packageName), ['com.b'], 'only the app still there')
})
