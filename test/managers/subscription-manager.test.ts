/**
 * The subscription manager without a socket server: each app's list, which glasses
 * messages match which subscriptions, and what is relayed to which app (and counted).
 */
import t from 'tap'
import { SubscriptionManager, type SubscriptionWatcher } from '../../managers/subscription-manager.js'
import type { GlassesMessage } from '../../protocol/glasses-messages.js'
import { silentLog } from '../../sessions/log.js'
import { NodeEvents } from '../../sessions/node-events.js'
import { appsService } from './apps-fixture.js'
import { RecordingOutlet } from './fake-session.js'

/** An outlet where some apps have no socket: their data does not go out. */
class Outlet extends RecordingOutlet {
  readonly offline = new Set<string>()

  override sendData (packageName: string, streamType: string, data: unknown): boolean {
    if (this.offline.has(packageName)) return false
    return super.sendData(packageName, streamType, data)
  }
}

function setup () {
  const counted: string[] = []
  const events = new NodeEvents(silentLog)
  events.on('app.relayed', stream => { counted.push(stream) })
  const subscriptions = new SubscriptionManager(events)
  const outlet = new Outlet()
  subscriptions.outlet = outlet
  /** Who got what: [app, the subscription string it receives the data under]. */
  const delivered = (): Array<[string, string]> => outlet.data.map(d => [d.packageName, d.streamType])
  return { subscriptions, outlet, counted, delivered }
}

const button: GlassesMessage = { type: 'button_press', buttonId: 'main', pressType: 'short' }
const transcript = (extra: { language?: string, transcribeLanguage?: string }): GlassesMessage =>
  ({ type: 'local_transcription', text: 'hallo', isFinal: true, ...extra })

t.test('an app\'s list is replaced whole, kept as the app wrote it, without duplicates', async t => {
  const { subscriptions } = setup()
  t.same(subscriptions.set('com.a', ['Button_Press', { stream: 'location_stream', rate: 'high' }, 'Button_Press']),
    ['Button_Press', 'location_stream'])
  subscriptions.set('com.b', ['button_press'])
  t.same(subscriptions.all(), { 'com.a': ['Button_Press', 'location_stream'], 'com.b': ['button_press'] })
  t.same(subscriptions.subscribersOf('button_press'), [
    { packageName: 'com.a', streamType: 'Button_Press' }, { packageName: 'com.b', streamType: 'button_press' }
  ], 'indexed by key, with the string each app wrote')
  subscriptions.set('com.a', ['head_position'])
  t.same(subscriptions.subscribersOf('button_press'), [{ packageName: 'com.b', streamType: 'button_press' }], 'the old list is gone')
  t.same([...subscriptions.keys()].sort(), ['button_press', 'head_position'])
  t.same(subscriptions.snapshot(), { apps: { 'com.a': ['head_position'], 'com.b': ['button_press'] }, streams: ['button_press', 'head_position'] })
  subscriptions.set('com.a', [])
  t.same(subscriptions.all(), { 'com.b': ['button_press'] }, 'an empty list forgets the app')
  t.equal(subscriptions.set('com.c', Array.from({ length: 300 }, (_, i) => `custom_${i}`)).length, 256, 'at most 256 per app')
})

t.test('matching is on the key: case and any ?query do not matter; the app gets its own string', async t => {
  const { subscriptions, delivered, outlet } = setup()
  subscriptions.set('com.a', ['Button_Press'])
  subscriptions.set('com.b', ['button_press?debounce=1'])
  subscriptions.set('com.c', ['head_position'])
  t.ok(subscriptions.handle(button), 'owned')
  t.same(delivered(), [['com.a', 'Button_Press'], ['com.b', 'button_press?debounce=1']])
  t.equal(outlet.data[0]?.data, button, 'the message as the phone sent it')
})

t.test('transcription streams are per language: a bare `transcription` is en-US', async t => {
  const { subscriptions, delivered, outlet } = setup()
  subscriptions.set('com.en', ['transcription'])
  subscriptions.set('com.us', ['transcription:en-US'])
  subscriptions.set('com.de', ['transcription:DE-de'])
  subscriptions.set('com.tr', ['translation:de-DE-to-en-US'])

  subscriptions.handle(transcript({ language: 'de-DE' }))
  t.same(delivered(), [['com.de', 'transcription:DE-de']], 'Android names it `language`')
  outlet.data.length = 0
  subscriptions.handle(transcript({ transcribeLanguage: 'en-US', language: 'de-DE' }))
  t.same(delivered(), [['com.en', 'transcription'], ['com.us', 'transcription:en-US']], 'iOS\'s `transcribeLanguage` wins')
  outlet.data.length = 0
  subscriptions.handle(transcript({}))
  t.same(delivered(), [['com.en', 'transcription'], ['com.us', 'transcription:en-US']], 'no language: en-US')
  outlet.data.length = 0
  subscriptions.handle(transcript({ language: 'fr-FR' }))
  t.same(delivered(), [], 'nobody wants French; a translation subscription is not fed by transcripts')
})

t.test('touch events go to the bare type and to the gesture; once per matching subscription string', async t => {
  const { subscriptions, delivered, outlet } = setup()
  subscriptions.set('com.any', ['touch_event'])
  subscriptions.set('com.swipe', ['touch_event:Forward_Swipe'])
  subscriptions.set('com.both', ['touch_event', 'touch_event:forward_swipe'])
  subscriptions.handle({ type: 'touch_event', gesture_name: 'FORWARD_SWIPE' })
  t.same(delivered().sort(), [
    ['com.any', 'touch_event'], ['com.both', 'touch_event'], ['com.both', 'touch_event:forward_swipe'], ['com.swipe', 'touch_event:Forward_Swipe']
  ])
  outlet.data.length = 0
  subscriptions.handle({ type: 'touch_event', gesture_name: 'single_tap' })
  t.same(delivered(), [['com.any', 'touch_event'], ['com.both', 'touch_event']], 'another gesture: the bare type only')
})

t.test('control messages are never relayed nor owned; other listed types are owned even with no subscriber', async t => {
  const { subscriptions, outlet } = setup()
  subscriptions.set('com.a', ['connection_init', 'ping', 'pong', 'start_app', 'stop_app'])
  for (const message of [
    { type: 'connection_init' }, { type: 'ping' }, { type: 'pong' },
    { type: 'start_app', packageName: 'com.a' }, { type: 'stop_app', packageName: 'com.a' }
  ] satisfies GlassesMessage[]) {
    t.notOk(subscriptions.handle(message), `${message.type} is not the relay's`)
  }
  t.same(outlet.data, [])
  t.ok(subscriptions.handle({ type: 'glasses_battery_update' }), 'relayable, though nobody listens')
  t.same(outlet.data, [])
})

t.test('VAD: both spellings reach `vad` subscribers, the status as a boolean', async t => {
  const { subscriptions, outlet } = setup()
  subscriptions.set('com.v', ['VAD'])
  const sent: GlassesMessage = { type: 'VAD', status: 'true' }
  subscriptions.handle(sent)
  subscriptions.handle({ type: 'vad', status: 'false' })
  subscriptions.handle({ type: 'vad', status: true })
  t.same(outlet.data.map(d => d.data), [{ type: 'VAD', status: true }, { type: 'vad', status: false }, { type: 'vad', status: true }])
  t.same(sent, { type: 'VAD', status: 'true' }, 'the phone\'s message is not changed in place')
})

t.test('unlisted types go to subscribers of that exact type, counted as `other`', async t => {
  const { subscriptions, delivered, outlet, counted } = setup()
  subscriptions.set('com.x', ['custom_sensor'])
  const message = { type: 'Custom_Sensor', value: 3 }
  subscriptions.handleUnlisted(message)
  subscriptions.handleUnlisted({ type: 'custom_sensor_2' })
  t.same(delivered(), [['com.x', 'custom_sensor']])
  t.equal(outlet.data[0]?.data, message, 'as sent')
  t.same(counted, ['other'])
})

t.test('only what went out is counted, by base stream; no outlet yet means nothing goes out', async t => {
  const { subscriptions, outlet, counted, delivered } = setup()
  subscriptions.set('com.a', ['transcription:fr-FR'])
  subscriptions.set('com.b', ['transcription:fr-FR'])
  outlet.offline.add('com.b')
  t.equal(subscriptions.relay(['transcription:fr-fr'], { text: 'salut' }), 1, 'one app had a socket')
  t.same(delivered(), [['com.a', 'transcription:fr-FR']])
  t.same(counted, ['transcription'], 'the label is the base stream, not the language')

  const quiet = new NodeEvents(silentLog)
  quiet.on('app.relayed', () => t.fail('nothing was relayed'))
  const unwired = new SubscriptionManager(quiet)
  unwired.set('com.a', ['button_press'])
  t.ok(unwired.handle(button))
  t.equal(unwired.relay(['button_press'], {}), 0)
})

t.test('the node\'s events hear each relay, labelled by base stream', async t => {
  const { service } = appsService(t)
  const relayed: string[] = []
  service.events.on('app.relayed', stream => { relayed.push(stream) })
  const subscriptions = new SubscriptionManager(service.events)
  subscriptions.outlet = new RecordingOutlet()
  subscriptions.set('com.a', ['button_press', 'touch_event:single_tap'])
  subscriptions.handle(button)
  subscriptions.handle({ type: 'touch_event', gesture_name: 'single_tap' })
  t.same(relayed, ['button_press', 'touch_event'])
})

t.test('watchers hear each change with the streams newly held', async t => {
  const { subscriptions } = setup()
  const changes: Array<[string, readonly string[]]> = []
  const watcher: SubscriptionWatcher = { subscriptionsChanged: (packageName, added) => { changes.push([packageName, added]) } }
  subscriptions.watch(watcher)
  subscriptions.set('com.a', ['button_press'])
  subscriptions.set('com.a', ['BUTTON_PRESS', 'transcription'])
  subscriptions.set('com.a', ['BUTTON_PRESS', 'transcription:en-US?x=1'])
  subscriptions.remove('com.a')
  subscriptions.remove('com.a')
  subscriptions.remove('com.never')
  t.same(changes, [
    ['com.a', ['button_press']],
    ['com.a', ['transcription']],
    ['com.a', []],
    ['com.a', []]
  ], 'a key already held is not new, whatever its spelling; removing an app without subscriptions is no change')
})

t.test('rates are kept per app and key, and go with the subscription', async t => {
  const { subscriptions } = setup()
  subscriptions.set('com.a', [{ stream: 'Location_Stream', rate: 'realtime' }, 'button_press'])
  subscriptions.set('com.b', [{ stream: 'location_stream' }])
  t.equal(subscriptions.rateOf('com.a', 'location_stream'), 'realtime')
  t.equal(subscriptions.rateOf('com.b', 'location_stream'), undefined, 'no rate given')
  subscriptions.set('com.a', ['location_stream'])
  t.equal(subscriptions.rateOf('com.a', 'location_stream'), undefined, 'replaced by a plain string')
  subscriptions.set('com.a', [{ stream: 'location_stream', rate: 'standard' }])
  subscriptions.remove('com.a')
  t.equal(subscriptions.rateOf('com.a', 'location_stream'), undefined, 'removed with the app')
})

t.test('after remove or dispose nothing is delivered', async t => {
  const { subscriptions, outlet } = setup()
  subscriptions.set('com.a', ['button_press'])
  subscriptions.set('com.b', ['button_press'])
  subscriptions.remove('com.a')
  subscriptions.handle(button)
  t.same(outlet.data.map(d => d.packageName), ['com.b'])
  subscriptions.dispose()
  subscriptions.handle(button)
  t.equal(outlet.data.length, 1)
  t.same(subscriptions.snapshot(), { apps: {}, streams: [] })
})
