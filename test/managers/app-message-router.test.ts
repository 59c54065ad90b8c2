/**
 * What an app's valid messages do to its session, without a socket: subscriptions
 * replace the app's list and are published, display events reach the display, phone
 * requests the phone, ignored types nothing, and misplaced messages are rejected.
 */
import t from 'tap'
import { AppMessageRouter } from '../../managers/app-message-router.js'
import { DisplayManager } from '../../managers/display-manager.js'
import { PhoneRelayManager } from '../../managers/phone-relay-manager.js'
import { SubscriptionManager } from '../../managers/subscription-manager.js'
import type { AppMessage } from '../../protocol/app-messages.js'
import type { Teardown } from '../helper.js'
import { FakeSession } from './fake-session.js'

function setup (t: Teardown) {
  const session = new FakeSession()
  const subscriptions = new SubscriptionManager()
  const display = new DisplayManager(session, { intervalMs: 1, isSystemDashboard: () => false })
  const phone = new PhoneRelayManager(session, subscriptions, { appEntry: () => undefined })
  t.teardown(() => { display.dispose(); phone.dispose() })
  const router = new AppMessageRouter(session, subscriptions, display, phone)
  return { session, subscriptions, router }
}

t.test('subscription_update replaces the app\'s list and tells the phone', async t => {
  const { session, subscriptions, router } = setup(t)
  t.equal(router.route('com.a', { type: 'subscription_update', subscriptions: ['button_press', 'transcription:en-US'] }), null)
  t.same(subscriptions.all(), { 'com.a': ['button_press', 'transcription:en-US'] })
  t.equal(router.route('com.a', { type: 'subscription_update', packageName: 'com.a', subscriptions: ['head_position'] }), null)
  t.same(subscriptions.all(), { 'com.a': ['head_position'] }, 'replaced whole, not merged')
  t.equal(session.of('app_state_change').length, 2, 'each change published')
  t.equal(session.changes, 2, 'and written down for another node')
})

t.test('a subscription_update naming another app is rejected and changes nothing', async t => {
  const { session, subscriptions, router } = setup(t)
  router.route('com.a', { type: 'subscription_update', subscriptions: ['button_press'] })
  const rejection = router.route('com.a', { type: 'subscription_update', packageName: 'com.b', subscriptions: ['audio_chunk'] })
  t.match(rejection, { code: 'INVALID_MESSAGE', message: /packageName/ })
  t.same(subscriptions.all(), { 'com.a': ['button_press'] })
  t.equal(session.of('app_state_change').length, 1, 'nothing published for it')
})

t.test('display_event goes to the display, as the app\'s', async t => {
  const { session, router } = setup(t)
  t.equal(router.route('com.a', { type: 'display_event', layout: { layoutType: 'text_wall', text: 'hi' } }), null)
  t.match(session.of('display_event'), [{ packageName: 'com.a', view: 'main', layout: { text: 'hi' } }])
})

t.test('requests for the phone go to the phone relay; ignored types do nothing', async t => {
  const { session, router } = setup(t)
  t.equal(router.route('com.a', { type: 'request_wifi_setup' } as AppMessage), null)
  t.match(session.of('show_wifi_setup'), [{ appPackageName: 'com.a' }])
  const before = session.sent.length
  t.equal(router.route('com.a', { type: 'dashboard_content_update' }), null, 'accepted: SDK apps run clean')
  t.equal(session.sent.length, before, 'and nothing sent for it')
})

t.test('a second tpa_connection_init is rejected', async t => {
  const { router } = setup(t)
  t.match(router.route('com.a', { type: 'tpa_connection_init', sessionId: 's', packageName: 'com.a', apiKey: 'k' }),
    { code: 'INVALID_MESSAGE', message: 'already initialised' })
})
