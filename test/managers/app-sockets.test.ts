/**
 * A session's app sockets without a socket server: in-memory app channels
 * (fake-app-channel.ts), a recording inbox in place of the message router, and a
 * record of the drops reported to whoever runs the apps.
 */
import t from 'tap'
import type { AppInbox, AppMessageRejection } from '../../managers/app-message-router.js'
import { AppSockets } from '../../managers/app-sockets.js'
import type { Config } from '../../config.js'
import type { AppMessage } from '../../protocol/app-messages.js'
import { delay, eventually, type Teardown } from '../helper.js'
import { appsService } from './apps-fixture.js'
import { FakeAppChannel } from './fake-app-channel.js'
import { FakeSession } from './fake-session.js'

/** The inbox as a test plays it: records what it was handed, answers as told. */
class RecordingInbox implements AppInbox {
  readonly routed: Array<{ packageName: string, message: AppMessage, sentBefore: number }> = []
  answer: (message: AppMessage) => AppMessageRejection | null = () => null
  constructor (private readonly channels: () => FakeAppChannel[]) {}
  route (packageName: string, message: AppMessage): AppMessageRejection | null {
    const sentBefore = this.channels().find(c => c.packageName === packageName)?.sent.length ?? 0
    this.routed.push({ packageName, message, sentBefore })
    return this.answer(message)
  }
}

function setup (t: Teardown, config: Partial<Config> = {}) {
  const { service } = appsService(t, [], config)
  const session = new FakeSession()
  const channels: FakeAppChannel[] = []
  const inbox = new RecordingInbox(() => channels)
  const dropped: string[] = []
  const sockets = new AppSockets(session, service, inbox, { dropped: packageName => { dropped.push(packageName) } })
  t.teardown(() => { sockets.dispose('manual') })
  /** A new app socket, attached for the app as an accepted init would. */
  const connect = (packageName: string, channel = new FakeAppChannel()): FakeAppChannel => {
    channels.push(channel)
    sockets.attach(packageName, `session-of-${packageName}`, channel)
    return channel
  }
  return { service, session, sockets, inbox, dropped, channels, connect }
}

const subscribe = (...subscriptions: string[]) => ({ type: 'subscription_update', subscriptions })

t.test('an attached socket is acknowledged with its app session id, then its frames reach the inbox, early ones first', async t => {
  const { sockets, inbox, connect } = setup(t)
  const channel = new FakeAppChannel()
  channel.receive(subscribe('button_press'))
  connect('com.a', channel)
  t.match(channel.sent, [{ type: 'tpa_connection_ack', sessionId: 'session-of-com.a', capabilities: { hasDisplay: true } }])
  t.equal(channel.packageName, 'com.a')
  t.equal(channel.appSessionId, 'session-of-com.a')
  t.match(inbox.routed, [{ packageName: 'com.a', message: { type: 'subscription_update' }, sentBefore: 1 }],
    'the frame sent before the ack, delivered after it')
  channel.receive(subscribe('head_position'))
  t.equal(inbox.routed.length, 2, 'and live frames after')
  t.ok(sockets.isConnected('com.a'))
  t.notOk(sockets.isConnected('com.b'))
})

t.test('bad frames are answered with an error and counted; past the limit the socket closes 1008', async t => {
  const { inbox, dropped, connect } = setup(t)
  const channel = connect('com.a', new FakeAppChannel(2))
  channel.receive('{not json')
  t.match(channel.of('error'), [{ code: 'MALFORMED_MESSAGE' }])
  channel.receiveBinary(Buffer.from([1, 2]))
  t.match(channel.of('error')[1], { code: 'INVALID_MESSAGE', message: 'apps send no binary frames' })
  t.equal(channel.closedWith, null, 'two are tolerated')
  inbox.answer = () => ({ code: 'INVALID_MESSAGE', message: 'already initialised' })
  channel.receive({ type: 'tpa_connection_init', sessionId: 's', packageName: 'com.a', apiKey: 'k' })
  t.match(channel.of('error')[2], { code: 'INVALID_MESSAGE', message: 'already initialised' }, 'the inbox\'s rejection, sent back')
  t.same(channel.closedWith, { code: 1008, reason: 'too many bad frames' }, 'and counted: the third closes it')
  t.same(dropped, ['com.a'], 'a close for misbehaving is a drop like any other: the app gets its grace')
})

t.test('an error while routing closes only that app\'s socket, with 1011', async t => {
  const { inbox, dropped, connect, sockets } = setup(t)
  const a = connect('com.a')
  const b = connect('com.b')
  inbox.answer = () => { throw new Error('boom') }
  t.doesNotThrow(() => { a.receive(subscribe('button_press')) })
  t.equal(a.closedWith?.code, 1011)
  t.equal(b.closedWith, null)
  t.ok(sockets.isConnected('com.b'))
  t.same(dropped, ['com.a'])
})

t.test('a second socket for the app replaces the first: the old one is deaf, closed 1000 "replaced", and no drop', async t => {
  const { inbox, dropped, connect, sockets } = setup(t)
  const first = connect('com.a')
  const second = connect('com.a')
  t.same(first.closedWith, { code: 1000, reason: 'replaced' })
  t.notOk(first.bound, 'unbound before it was closed')
  first.receive(subscribe('button_press'))
  t.equal(inbox.routed.length, 0, 'the old socket is not heard')
  t.same(dropped, [], 'its close is not the app\'s drop')
  t.ok(sockets.sendMessage('com.a', { type: 'hello' }))
  t.equal(second.of('hello').length, 1, 'sending goes to the new one')
  t.equal(first.of('hello').length, 0)
})

t.test('the app\'s own close is reported once as a drop, and nothing more is sent to it', async t => {
  const { dropped, connect, sockets } = setup(t)
  const channel = connect('com.a')
  channel.drop(1006)
  t.same(dropped, ['com.a'])
  t.notOk(sockets.isConnected('com.a'))
  t.notOk(sockets.sendData('com.a', 'button_press', {}), 'not connected: not relayed')
  sockets.dispose('manual')
  t.equal(channel.of('app_stopped').length, 0, 'a dropped socket is not ended again')
  t.same(dropped, ['com.a'])
})

t.test('sending: data streams and messages carry the app session id; broadcasts reach every connected app', async t => {
  const { connect, sockets } = setup(t)
  const a = connect('com.a')
  const b = connect('com.b')
  t.ok(sockets.sendData('com.a', 'button_press', { pressType: 'short' }))
  t.match(a.of('data_stream'), [{ sessionId: 'session-of-com.a', streamType: 'button_press', data: { pressType: 'short' } }])
  t.ok(sockets.sendMessage('com.b', { type: 'photo_response', requestId: 'r' }))
  t.match(b.of('photo_response'), [{ sessionId: 'session-of-com.b', requestId: 'r' }])
  t.notOk(sockets.sendMessage('com.c', { type: 'photo_response' }), 'an app without a socket: false')
  sockets.broadcast({ type: 'device_state_update', connected: true })
  t.equal(a.of('device_state_update').length, 1)
  t.equal(b.of('device_state_update').length, 1)
})

t.test('audio goes out as binary frames, and is dropped for an app that is behind', async t => {
  const { connect, sockets, service } = setup(t)
  const dropped: string[] = []
  service.events.on('app.audio_dropped', packageName => { dropped.push(packageName) })
  const channel = connect('com.a')
  sockets.sendAudio('com.a', Buffer.from([1]))
  channel.behind = true
  sockets.sendAudio('com.a', Buffer.from([2]))
  t.same(channel.binary, [Buffer.from([1])])
  t.same(dropped, ['com.a'], 'the drop is reported')
})

t.test('detach: the app is no longer heard nor sent to; end tells it and closes 1000 with the reason', async t => {
  const { inbox, dropped, connect, sockets } = setup(t)
  const channel = connect('com.a')
  const detached = sockets.detach('com.a')
  t.equal(detached, channel)
  t.equal(sockets.detach('com.a'), null, 'once')
  channel.receive(subscribe('button_press'))
  t.equal(inbox.routed.length, 0, 'a stopping app\'s last words change nothing')
  t.notOk(sockets.sendData('com.a', 'button_press', {}))
  t.equal(channel.closedWith, null, 'left open until ended')
  sockets.end(channel, 'App stopped')
  t.match(channel.of('app_stopped'), [{ reason: 'App stopped' }])
  t.same(channel.closedWith, { code: 1000, reason: 'App stopped' })
  t.same(dropped, [], 'an end is not a drop')
})

t.test('dispose tells every app the session ended and closes each socket 1000', async t => {
  const { dropped, connect, sockets } = setup(t)
  const apps = [connect('com.a'), connect('com.b')]
  sockets.dispose('grace_expired')
  for (const channel of apps) {
    t.match(channel.of('app_stopped'), [{ reason: 'User session ended' }], `${channel.packageName ?? ''} told`)
    t.same(channel.closedWith, { code: 1000, reason: 'User session ended' })
  }
  t.same(dropped, [], 'ends are not drops')
  t.notOk(sockets.isConnected('com.a'))
  sockets.dispose('grace_expired')
  t.equal(apps[0]?.of('app_stopped').length, 1, 'idempotent')
})

t.test('on handover the sockets are left untold and unbound, and dropped after APP_START_TIMEOUT_MS', async t => {
  const { dropped, connect, sockets } = setup(t, { appStartTimeoutMs: 30 })
  const channel = connect('com.a')
  sockets.dispose('handover')
  t.equal(channel.of('app_stopped').length, 0, 'not told: the app moves with the session')
  t.equal(channel.closedWith, null)
  t.notOk(channel.bound)
  await delay(5)
  t.notOk(channel.terminated, 'left for the SDK to release')
  await eventually(() => channel.terminated, 'terminated once the new node had its time')
  t.same(dropped, [])
})
