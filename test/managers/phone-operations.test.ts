/**
 * What the phone's REST calls do to a session (managers/phone-operations.ts),
 * without an HTTP server: the app side of a FakeSession built by the recipe, a
 * real AppsService, and app sockets that are FakeSockets accepted by the app
 * lifecycle manager as /app-ws would hand them over.
 */
import { createServer } from 'node:http'
import t from 'tap'
import { AppLifecycleManager } from '../../managers/app-lifecycle-manager.js'
import { AudioManager } from '../../managers/audio-manager.js'
import { DeviceStateManager } from '../../managers/device-state-manager.js'
import {
  isPhoneOperation, runPhoneOperation, type PhoneAnswer, type PhoneOperation, type PhoneOperationInput, type PhoneSession
} from '../../managers/phone-operations.js'
import { PhoneRelayManager } from '../../managers/phone-relay-manager.js'
import { appManagers } from '../../managers/session-recipe.js'
import { SubscriptionManager } from '../../managers/subscription-manager.js'
import type { AppEntry } from '../../protocol/apps-catalogue.js'
import { AppConnection } from '../../sessions/app-connection.js'
import type { Manager } from '../../sessions/manager.js'
import { FakeSocket } from '../fake-socket.js'
import { eventually, listenOnLoopback, type Teardown } from '../helper.js'
import { appEntry, appsService } from './apps-fixture.js'
import { FakeSession } from './fake-session.js'

const OPERATIONS: PhoneOperation[] = [
  'device_state', 'apps', 'start_app', 'stop_app', 'audio_configure', 'location', 'calendar', 'notification',
  'notification_dismissed', 'photo_response'
]

const APP_SOCKET_LIMITS = { maxBufferedBytes: 1 << 20, maxBadFrames: 5 }

/** A webhook endpoint on loopback that takes requests and never answers: an app that is slow to start. */
async function silentWebhook (t: Teardown): Promise<string> {
  const server = createServer(() => {}).listen(0, '127.0.0.1')
  const port = await listenOnLoopback(t, server)
  return `http://127.0.0.1:${port}/webhook`
}

/** A session with the recipe's app side, the phone's view of it, and a way to connect apps over FakeSockets. */
function world (t: Teardown, entries: readonly AppEntry[], managersOf: (all: Manager[]) => Manager[] = all => all) {
  const fixture = appsService(t, entries, { appStartTimeoutMs: 5000, micDebounceMs: 10, displayIntervalMs: 0 })
  const session = new FakeSession()
  const all = ([] as Manager[]).concat(appManagers(fixture.service)(session))
  t.teardown(() => { for (const manager of all) void manager.dispose('manual') })
  const managers = managersOf(all)
  const phone: PhoneSession = {
    get phoneConnected () { return session.phoneConnected },
    find<M extends Manager> (type: abstract new (...args: never[]) => M): M | undefined {
      return managers.find((manager): manager is M => manager instanceof type)
    }
  }
  const get = <M extends Manager>(type: abstract new (...args: never[]) => M): M => {
    const found = phone.find(type)
    if (found === undefined) throw new Error(`no ${type.name}`)
    return found
  }
  const run = async <K extends PhoneOperation>(operation: K, input: PhoneOperationInput[K]): Promise<PhoneAnswer> =>
    await runPhoneOperation(phone, fixture.service.catalogue, operation, input)
  /** The app's socket arrives and its init is accepted; returns the socket as the app sees it. */
  const connectApp = (packageName: string): FakeSocket => {
    const socket = new FakeSocket()
    const accepted = get(AppLifecycleManager).accept(packageName, new AppConnection(socket, APP_SOCKET_LIMITS))
    if (!accepted) throw new Error(`${packageName} was not starting`)
    return socket
  }
  /** Start an app through the phone and have it connect at once; resolves with the answer and its socket. */
  const startConnected = async (packageName: string): Promise<{ answer: PhoneAnswer, socket: FakeSocket }> => {
    const answer = run('start_app', { packageName, replyWithinMs: 1000 })
    const socket = connectApp(packageName)
    return { answer: await answer, socket }
  }
  return { ...fixture, session, phone, run, get, connectApp, startConnected }
}

/** What an app socket received of a kind: `data_stream` by stream type, anything else by type. */
function received (socket: FakeSocket, kind: string): Array<Record<string, unknown>> {
  return socket.messages().filter(m => m.type === kind || (m.type === 'data_stream' && m.streamType === kind))
}

t.test('isPhoneOperation: the operations, and nothing an object inherits', async t => {
  for (const name of OPERATIONS) t.ok(isPhoneOperation(name), name)
  for (const name of ['toString', '__proto__', 'constructor', 'hasOwnProperty', 'start', '', 1, null]) {
    t.notOk(isPhoneOperation(name), String(name))
  }
})

t.test('device_state: applied, relayed to every app, and answered with what is known now', async t => {
  const w = world(t, [appEntry('com.a')])
  const { socket } = await w.startConnected('com.a')
  const answer = await w.run('device_state', { state: { connected: true, modelName: 'Even G1', batteryLevel: 80 } })
  t.match(answer, { status: 200, body: { success: true, appliedState: { isGlassesConnected: true, isPhoneConnected: true, modelName: 'Even G1' } } })
  t.match(received(socket, 'device_state_update'), [{ state: { connected: true, modelName: 'Even G1', batteryLevel: 80 } }])

  w.session.phoneConnected = false
  const later = await w.run('device_state', { state: { connected: false, batteryLevel: 80 } })
  t.match(later.body.appliedState, { isGlassesConnected: false, isPhoneConnected: false, modelName: 'Even G1' },
    'the phone socket comes from the session, the model from what was applied before')
  t.match(received(socket, 'device_state_update')[1], { state: { connected: false } })
  t.notMatch(received(socket, 'device_state_update')[1], { state: { batteryLevel: 80 } }, 'only keys that changed are relayed')
})

t.test('apps: every catalogue app with its fields, running only when it runs or loads here', async t => {
  const w = world(t, [appEntry('com.a', { name: 'A', logoUrl: 'https://a/logo.png' }), appEntry('com.b', { type: 'background' })])
  const before = await w.run('apps', {})
  t.match(before, { status: 200, body: { success: true } })
  t.same((before.body.data as Array<Record<string, unknown>>).map(a => [a.packageName, a.running, a.type]),
    [['com.a', false, 'standard'], ['com.b', false, 'background']])
  t.match((before.body.data as unknown[])[0], { name: 'A', logoUrl: 'https://a/logo.png', healthy: true, permissions: [], hardwareRequirements: [] })
  await w.startConnected('com.b')
  const after = await w.run('apps', {})
  t.same((after.body.data as Array<Record<string, unknown>>).map(a => a.running), [false, true])
})

t.test('start_app: isRunning once the app connected; a standard app stops the other standard apps only', async t => {
  const w = world(t, [appEntry('com.one'), appEntry('com.two'), appEntry('com.bg', { type: 'background' })])
  const apps = w.get(AppLifecycleManager)
  const one = await w.startConnected('com.one')
  t.match(one.answer, { status: 200, body: { success: true, data: { status: 'started', isRunning: true } } })
  const bg = await w.startConnected('com.bg')
  t.equal(bg.answer.body.data !== undefined && (bg.answer.body.data as { isRunning: boolean }).isRunning, true)
  t.equal(apps.isRunning('com.one'), true, 'a background app stops no one')

  const two = await w.startConnected('com.two')
  t.match(two.answer.body, { data: { isRunning: true } })
  t.equal(apps.isRunning('com.one'), false, 'the other standard app is stopped')
  t.equal(apps.isRunning('com.bg'), true, 'the background app keeps running')
  t.equal(apps.isRunning('com.two'), true)
  t.equal(await one.socket.closed(), 1000, 'the stopped app\'s socket is closed 1000')
  t.match(one.socket.closeSent, { reason: 'App stopped' })
  t.match(received(one.socket, 'app_stopped'), [{ reason: 'App stopped' }])
})

t.test('start_app answers within replyWithinMs; the start goes on behind the answer', async t => {
  const webhookUrl = await silentWebhook(t)
  const w = world(t, [appEntry('com.slow', { webhookUrl })])
  const started = Date.now()
  const answer = await w.run('start_app', { packageName: 'com.slow', replyWithinMs: 40 })
  t.ok(Date.now() - started < 1000, 'answered without waiting for the app')
  t.match(answer, { status: 200, body: { data: { status: 'started', isRunning: false } } })
  t.equal(w.get(AppLifecycleManager).isRunning('com.slow'), true, 'still loading')
  const socket = w.connectApp('com.slow')
  t.match(socket.messages()[0], { type: 'tpa_connection_ack' }, 'and it can still connect')
})

t.test('start_app of an app the catalogue lacks: not running, and the glasses are told', async t => {
  const w = world(t, [appEntry('com.a')])
  const answer = await w.run('start_app', { packageName: 'com.nope', replyWithinMs: 100 })
  t.match(answer.body, { data: { isRunning: false } })
  t.match(w.session.of('error'), [{ code: 'UNKNOWN_APP' }])
})

t.test('stop_app: the app is stopped, its socket told and closed; the answer says not running', async t => {
  const w = world(t, [appEntry('com.a')])
  const { socket } = await w.startConnected('com.a')
  const answer = await w.run('stop_app', { packageName: 'com.a' })
  t.match(answer, { status: 200, body: { success: true, data: { status: 'stopped', isRunning: false } } })
  t.equal(w.get(AppLifecycleManager).isRunning('com.a'), false)
  t.match(received(socket, 'app_stopped'), [{ reason: 'App stopped' }])
  t.equal(await socket.closed(), 1000)
  t.match(await w.run('stop_app', { packageName: 'com.a' }), { status: 200 }, 'stopping what is not running is no error')
})

t.test('audio_configure: the session\'s audio format, with the LC3 parameters for lc3 and none for pcm', async t => {
  const w = world(t, [])
  const lc3 = await w.run('audio_configure', { format: { format: 'lc3', frameSizeBytes: 60 } })
  t.match(lc3, { status: 200, body: { success: true, format: 'lc3', lc3Config: { sampleRate: 16000, frameDurationMs: 10, frameSizeBytes: 60 } } })
  t.match(w.get(AudioManager).snapshot(), { format: { format: 'lc3', frameSizeBytes: 60 } })
  const pcm = await w.run('audio_configure', { format: { format: 'pcm' } })
  t.match(pcm.body, { format: 'pcm', lc3Config: null })
  t.match(w.get(AudioManager).snapshot(), { format: { format: 'pcm' } })
})

t.test('location: 400 without coordinates; with them, relayed to the apps that subscribed', async t => {
  const w = world(t, [appEntry('com.a')])
  const { socket } = await w.startConnected('com.a')
  w.get(SubscriptionManager).set('com.a', ['location_update'])
  const refused = await w.run('location', { body: { coords: { latitude: 'north' } } })
  t.match(refused, { status: 400, body: { success: false, error: 'BAD_REQUEST' } })
  t.same(received(socket, 'location_update'), [], 'nothing relayed for a refused fix')
  const ok = await w.run('location', { body: { location: { coords: { latitude: 52.5, longitude: 13.4 } } } })
  t.match(ok, { status: 200, body: { success: true } })
  t.match(received(socket, 'location_update'), [{ data: { type: 'location_update', lat: 52.5, lng: 13.4 } }])
})

t.test('calendar: answers how many events were usable, and relays those', async t => {
  const w = world(t, [appEntry('com.a')])
  const { socket } = await w.startConnected('com.a')
  w.get(SubscriptionManager).set('com.a', ['calendar_event'])
  const answer = await w.run('calendar', {
    events: [{ id: 'e1', title: 'Standup', startDate: '2026-12-01T10:00:00Z' }, { title: 'no id', startDate: '2026-12-01T10:00:00Z' }, 'junk']
  })
  t.match(answer, { status: 200, body: { success: true, events: 1 } })
  t.match(received(socket, 'calendar_event'), [{ data: { eventId: 'e1', title: 'Standup' } }])
})

t.test('notifications and their dismissals reach the apps subscribed to each, in the phone\'s words', async t => {
  const w = world(t, [appEntry('com.a'), appEntry('com.b', { type: 'background' })])
  const a = await w.startConnected('com.a')
  const b = await w.startConnected('com.b')
  w.get(SubscriptionManager).set('com.a', ['phone_notification'])
  w.get(SubscriptionManager).set('com.b', ['phone_notification_dismissed'])
  t.match(await w.run('notification', { body: { notificationId: 'n1', app: 'Mail', title: 'Hi' } }), { status: 200, body: { success: true } })
  t.match(await w.run('notification_dismissed', { body: { notificationId: 'n1' } }), { status: 200, body: { success: true } })
  t.match(received(a.socket, 'phone_notification'), [{ data: { type: 'phone_notification', notificationId: 'n1', title: 'Hi' } }])
  t.same(received(a.socket, 'phone_notification_dismissed'), [])
  t.match(received(b.socket, 'phone_notification_dismissed'), [{ data: { notificationId: 'n1' } }])
  t.same(received(b.socket, 'phone_notification'), [])
})

t.test('photo_response: delivered to the app that asked, not for an unknown request', async t => {
  const w = world(t, [appEntry('com.cam')])
  const { socket } = await w.startConnected('com.cam')
  t.match(await w.run('photo_response', { body: { requestId: 'nobody', success: true } }), { status: 200, body: { delivered: false } })
  socket.peerSends({ type: 'photo_request', requestId: 'ph1', sessionId: 'x' })
  await eventually(() => w.session.of('photo_request').length === 1, 'the request reached the phone')
  const answer = await w.run('photo_response', { body: { requestId: 'ph1', success: true, photoUrl: 'https://p/1.jpg' } })
  t.match(answer, { status: 200, body: { success: true, delivered: true } })
  t.match(received(socket, 'photo_response'), [{ requestId: 'ph1', photoUrl: 'https://p/1.jpg' }])
})

t.test('a session without the manager an operation needs: an error naming it; the app list needs none', async t => {
  const w = world(t, [appEntry('com.a')], all => all.filter(m => !(m instanceof DeviceStateManager) && !(m instanceof AppLifecycleManager) && !(m instanceof PhoneRelayManager)))
  await t.rejects(w.run('device_state', { state: {} }), { message: 'this session has no DeviceStateManager' })
  await t.rejects(w.run('stop_app', { packageName: 'com.a' }), { message: 'this session has no AppLifecycleManager' })
  await t.rejects(w.run('calendar', { events: [] }), { message: 'this session has no PhoneRelayManager' })
  const listing = await w.run('apps', {})
  t.match(listing, { status: 200, body: { data: [{ packageName: 'com.a', running: false }] } })
})
