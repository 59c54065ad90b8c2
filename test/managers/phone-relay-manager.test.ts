/** App requests to the phone and the phone's REST data, without a socket server. */
import t from 'tap'
import { PhoneRelayManager, calendarEventOf, fixOf } from '../../managers/phone-relay-manager.js'
import { SubscriptionManager } from '../../managers/subscription-manager.js'
import type { AppEntry } from '../../protocol/apps-catalogue.js'
import type { Teardown } from '../helper.js'
import { FakeSession, RecordingOutlet } from './fake-session.js'

function setup (t: Teardown) {
  const session = new FakeSession()
  const subscriptions = new SubscriptionManager()
  const outlet = new RecordingOutlet()
  subscriptions.outlet = outlet
  const entry = { packageName: 'com.cam', publicUrl: 'https://cam.example' } as AppEntry
  const relay = new PhoneRelayManager(session, subscriptions, { appEntry: name => name === 'com.cam' ? entry : undefined })
  t.teardown(() => relay.dispose())
  return { session, subscriptions, outlet, relay }
}

t.test('audio play: to the phone in its shape, the answer to the asking app only', async t => {
  const { session, outlet, relay } = setup(t)
  t.ok(relay.fromApp('com.a', { type: 'audio_play_request', requestId: 'r1', audioUrl: 'https://x/a.mp3', volume: 0.5, stopOtherAudio: false }))
  t.match(session.of('audio_play_request')[0], {
    sessionId: 'unit@example.com', requestId: 'r1', packageName: 'com.a', audioUrl: 'https://x/a.mp3', volume: 0.5, stopOtherAudio: false
  })
  t.ok(relay.handle({ type: 'audio_play_response', requestId: 'r1', success: true, duration: 1.5 } as never))
  t.same(outlet.messages.map(m => m.packageName), ['com.a'])
  t.match(outlet.messages[0]?.message, { type: 'audio_play_response', requestId: 'r1', success: true, duration: 1.5 })
  relay.handle({ type: 'audio_play_response', requestId: 'r1', success: true } as never)
  t.equal(outlet.messages.length, 1, 'an answered request is forgotten')
  relay.fromApp('com.a', { type: 'audio_stop_request' })
  t.match(session.of('audio_stop_request')[0], { appId: 'com.a' })
})

t.test('with no phone attached, requests that expect an answer fail at once', async t => {
  const { session, outlet, relay } = setup(t)
  session.phoneConnected = false
  relay.fromApp('com.a', { type: 'audio_play_request', requestId: 'p', audioUrl: 'u' })
  relay.fromApp('com.a', { type: 'rgb_led_control', requestId: 'l', action: 'on' })
  relay.fromApp('com.cam', { type: 'photo_request', requestId: 'ph' })
  relay.fromApp('com.a', { type: 'location_poll_request', correlationId: 'c', accuracy: 'high' })
  t.same(outlet.messages.map(m => [m.message.type, m.message.success]), [
    ['audio_play_response', false], ['rgb_led_control_response', false], ['photo_response', false]
  ])
  t.match(outlet.data[0], { packageName: 'com.a', streamType: 'location_update', data: { correlationId: 'c', error: /not connected/ } })
})

t.test('LED, Wi-Fi setup and photos reach the phone in its shapes; a photo answer goes to its app', async t => {
  const { session, outlet, relay } = setup(t)
  relay.fromApp('com.a', { type: 'rgb_led_control', requestId: 'l1', action: 'on', color: 'red', ontime: 100, sessionId: 'x' })
  t.match(session.of('rgb_led_control')[0], { requestId: 'l1', action: 'on', color: 'red', ontime: 100, packageName: 'com.a', sessionId: 'unit@example.com' })
  relay.fromApp('com.a', { type: 'request_wifi_setup', reason: 'upload' })
  t.match(session.of('show_wifi_setup')[0], { reason: 'upload', appPackageName: 'com.a' })
  relay.fromApp('com.cam', { type: 'photo_request', requestId: 'ph1', size: 'large', saveToGallery: true })
  t.match(session.of('photo_request')[0], { requestId: 'ph1', appId: 'com.cam', webhookUrl: 'https://cam.example/photo-upload', size: 'large' })
  relay.fromApp('com.cam', { type: 'photo_request', requestId: 'ph2', customWebhookUrl: 'https://elsewhere/up' })
  t.match(session.of('photo_request')[1], { webhookUrl: 'https://elsewhere/up' })
  t.notOk(relay.photoResponse({ requestId: 'unknown', success: true }), 'an unknown request id is ignored')
  t.ok(relay.photoResponse({ type: 'photo_response', requestId: 'ph1', success: true, photoUrl: 'https://p/1.jpg' }))
  t.match(outlet.messages, [{ packageName: 'com.cam', message: { type: 'photo_response', requestId: 'ph1', photoUrl: 'https://p/1.jpg' } }])
})

t.test('location: tier from subscriptions, polls answered from a fresh fix or by the phone, to the poller only', async t => {
  const { session, subscriptions, outlet, relay } = setup(t)
  subscriptions.set('com.walk', [{ stream: 'location_stream', rate: 'standard' }])
  subscriptions.set('com.nav', [{ stream: 'location_stream', rate: 'realtime' }])
  t.same(session.of('set_location_tier').map(m => m.tier), ['standard', 'realtime'])
  subscriptions.remove('com.nav')
  subscriptions.remove('com.walk')
  t.same(session.of('set_location_tier').map(m => m.tier), ['standard', 'realtime', 'standard', 'reduced'])

  relay.fromApp('com.a', { type: 'location_poll_request', correlationId: 'c1', accuracy: 'high' })
  t.match(session.of('request_single_location')[0], { correlationId: 'c1', accuracy: 'high' })
  t.ok(relay.handle({ type: 'location_update', correlationId: 'c1', lat: 52.5, lng: 13.4, accuracy: 5 } as never))
  t.match(outlet.data, [{ packageName: 'com.a', streamType: 'location_update', data: { lat: 52.5, lng: 13.4, correlationId: 'c1' } }])
  relay.fromApp('com.b', { type: 'location_poll_request', correlationId: 'c2', accuracy: 'kilometer' })
  t.equal(session.of('request_single_location').length, 1, 'a fresh enough fix answers without the phone')
  t.match(outlet.data[1], { packageName: 'com.b', data: { lat: 52.5, correlationId: 'c2' } })
  t.notOk(relay.handle({ type: 'location_update', lat: 1, lng: 2 } as never), 'a fix that answers no poll goes to subscribers as usual')
})

t.test('REST data reaches subscribers; latecomers get the last fix and the kept events', async t => {
  const { subscriptions, outlet, relay } = setup(t)
  subscriptions.set('com.map', ['location_update'])
  t.notOk(relay.location({ coords: { latitude: 'x' } }), 'no coordinates: refused')
  t.ok(relay.location({ coords: { latitude: 48.1, longitude: 11.5, accuracy: 9 }, timestamp: 1_700_000_000_000 }))
  t.match(outlet.data, [{ packageName: 'com.map', streamType: 'location_update', data: { type: 'location_update', lat: 48.1, lng: 11.5, accuracy: 9 } }])
  relay.calendar([
    { id: 'e2', title: 'Later', startDate: '2030-01-02T10:00:00Z', endDate: '2030-01-02T11:00:00Z', timeZone: 'UTC', allDay: false },
    { id: 'e1', title: 'Sooner', startDate: '2030-01-01T10:00:00Z' },
    { title: 'no id', startDate: '2030-01-01T10:00:00Z' }
  ])
  subscriptions.set('com.late', [{ stream: 'location_stream', rate: 'high' }, 'calendar_event'])
  const late = outlet.data.filter(d => d.packageName === 'com.late')
  t.match(late[0], { streamType: 'location_stream', data: { lat: 48.1 } })
  t.same(late.slice(1).map(d => (d.data as { eventId: string }).eventId), ['e1', 'e2'], 'kept events, soonest first')
  relay.notification('phone_notification', { notificationId: 'n1', app: 'Mail', title: 'Hi', content: 'there', priority: 'normal' })
  t.equal(outlet.data.filter(d => d.streamType === 'phone_notification').length, 0, 'no subscriber, nothing sent')
})

t.test('shapes: fixes and calendar events', async t => {
  t.same(fixOf({ location: 1 }), null)
  t.match(fixOf({ lat: 1, lng: 2 }), { lat: 1, lng: 2, accuracy: null })
  t.same(fixOf({ coords: { latitude: 91, longitude: 0 } }), null, 'out of range')
  t.match(calendarEventOf({ id: 7, title: 'T', startDate: 1_700_000_000_000, allDay: true }), {
    type: 'calendar_event', eventId: '7', title: 'T', dtStart: '2023-11-14T22:13:20.000Z', dtEnd: null, allDay: true
  })
  t.same(calendarEventOf({ id: 'x', title: 'T', startDate: 'not a date' }), null)
})
