/**
 * PROTOCOL 2 details the SDK never exercises: init refusals in order, start
 * timeouts and retries, app grace and restart, replacement of an app socket,
 * stream matching, and bad input from apps.
 */
import t from 'tap'
import { adminToken, connectAcked, delay, eventually, startServer, type Client, type Server, type Teardown } from '../helper.js'
import { connectApp, rawAppIdentity, startWebhookReceiver, type RawAppIdentity, type WebhookReceiver } from '../raw-app.js'
import { writeCatalogue } from '../sdk-app.js'

interface TestWithDir extends Teardown { testdir: () => string }

interface World { server: Server, hooks: WebhookReceiver, app: RawAppIdentity, other: RawAppIdentity }

async function world (t: TestWithDir, overrides = {}): Promise<World> {
  const hooks = await startWebhookReceiver(t)
  const app = rawAppIdentity('com.example.raw', hooks.url)
  const other = rawAppIdentity('com.example.other', hooks.url)
  const appsFile = writeCatalogue(t.testdir(), [app, other])
  const server = await startServer(t, { appsFile, appStartTimeoutMs: 1000, appGracePeriodMs: 200, appInitTimeoutMs: 300, ...overrides })
  return { server, hooks, app, other }
}

/** Start an app from the glasses and connect it as the webhook asks; resolves with the acked app socket. */
async function startRaw (t: Teardown, w: World, glasses: Client, app: RawAppIdentity, user: string): Promise<{ client: Client, sessionId: string }> {
  const before = w.hooks.received.length
  glasses.send({ type: 'start_app', packageName: app.packageName })
  const hook = await eventually(() => w.hooks.received.slice(before).find(h => h.type === 'session_request' && h.userId === user), 'webhook')
  const client = await connectApp(t, w.server, { sessionId: hook.sessionId, packageName: app.packageName, apiKey: app.apiKey })
  await client.next('tpa_connection_ack')
  return { client, sessionId: hook.sessionId }
}

t.test('the webhook carries both URL fields, PUBLIC_URL-based, and an opaque session id', async t => {
  const w = await world(t)
  const { client: glasses } = await connectAcked(t, w.server, 'hook@example.com')
  glasses.send({ type: 'start_app', packageName: w.app.packageName })
  const hook = await eventually(() => w.hooks.received[0], 'webhook')
  t.match(hook, {
    type: 'session_request',
    userId: 'hook@example.com',
    timestamp: String,
    mentraOSWebsocketUrl: `${w.server.wsUrl}/app-ws`,
    augmentOSWebsocketUrl: `${w.server.wsUrl}/app-ws`
  })
  t.notOk(hook.sessionId.includes('hook@example.com'))
})

t.test('PUBLIC_URL https becomes wss', async t => {
  const w = await world(t, { publicUrl: 'https://tether.example.com' })
  const { client: glasses } = await connectAcked(t, w.server, 'tls@example.com')
  glasses.send({ type: 'start_app', packageName: w.app.packageName })
  const hook = await eventually(() => w.hooks.received[0], 'webhook')
  t.equal(hook.mentraOSWebsocketUrl, 'wss://tether.example.com/app-ws')
})

t.test('init refusals, in the documented order, then 1008', async t => {
  const w = await world(t)
  const { client: glasses } = await connectAcked(t, w.server, 'order@example.com')
  glasses.send({ type: 'start_app', packageName: w.app.packageName })
  const hook = await eventually(() => w.hooks.received[0], 'webhook')
  const cases: Array<[string, Record<string, unknown> | string, string]> = [
    ['wrong key', { sessionId: hook.sessionId, packageName: w.app.packageName, apiKey: 'nope' }, 'INVALID_API_KEY'],
    ['unknown package', { sessionId: hook.sessionId, packageName: 'com.unknown', apiKey: w.app.apiKey }, 'INVALID_API_KEY'],
    ['bad key and unknown session: the key is checked first', { sessionId: 'nope', packageName: w.app.packageName, apiKey: 'nope' }, 'INVALID_API_KEY'],
    ['unknown session', { sessionId: 'no-such-session', packageName: w.app.packageName, apiKey: w.app.apiKey }, 'SESSION_NOT_FOUND'],
    ['another app of the catalogue, not started for that session', { sessionId: hook.sessionId, packageName: w.other.packageName, apiKey: w.other.apiKey }, 'APP_NOT_STARTED'],
    ['not an init', '{"type":"subscription_update","subscriptions":[]}', 'INVALID_INIT'],
    ['not JSON', 'hello', 'INVALID_INIT']
  ]
  for (const [name, first, code] of cases) {
    const app = await connectApp(t, w.server, false)
    app.send(typeof first === 'string' ? first : { type: 'tpa_connection_init', ...first })
    const error = await app.next('tpa_connection_error')
    t.equal(error.code, code, name)
    t.equal(await app.waitClosed(), 1008, `${name}: closed 1008`)
  }
  const silent = await connectApp(t, w.server, false)
  t.equal(await silent.waitClosed(1000), 1008, 'no init in time: 1008')
  t.equal(silent.closeReason, 'no tpa_connection_init in time')
  t.equal(glasses.closeCode, null, 'the glasses never noticed')
})

t.test('a second start_app joins the first: one webhook; an unknown app gets UNKNOWN_APP', async t => {
  const w = await world(t)
  const { client: glasses } = await connectAcked(t, w.server, 'twice@example.com')
  glasses.send({ type: 'start_app', packageName: w.app.packageName })
  glasses.send({ type: 'start_app', packageName: w.app.packageName })
  glasses.send({ type: 'start_app', packageName: 'com.not.in.catalogue' })
  const error = await glasses.next('error')
  t.equal(error.code, 'UNKNOWN_APP')
  await delay(100)
  t.equal(w.hooks.received.length, 1, 'one webhook')
})

t.test('a start that times out removes the app from loadingApps and tells the glasses', async t => {
  const w = await world(t, { appStartTimeoutMs: 150 })
  const { client: glasses } = await connectAcked(t, w.server, 'slow@example.com')
  glasses.send({ type: 'start_app', packageName: w.app.packageName })
  await eventually(() => w.hooks.received.length === 1, 'webhook')
  await eventually(() => {
    const states = glasses.messages.filter(m => m.type === 'app_state_change')
    const last = states.at(-1)?.userSession as { loadingApps: string[], activeAppSessions: string[] } | undefined
    return states.length >= 2 && last?.loadingApps.length === 0 && last.activeAppSessions.length === 0
  }, 'failure published', 2000)
  const metrics = await (await fetch(`${w.server.httpUrl}/metrics`)).text()
  t.match(metrics, /tether_app_start_failures_total\{package="com.example.raw",failure="timeout"\} 1/)
  const late = await connectApp(t, w.server, { sessionId: w.hooks.received[0]?.sessionId, packageName: w.app.packageName, apiKey: w.app.apiKey })
  t.equal((await late.next('tpa_connection_error')).code, 'APP_NOT_STARTED', 'a late app is refused')
})

t.test('the webhook is retried once on a 5xx; a 4xx fails the start at once', async t => {
  const w = await world(t)
  w.hooks.statuses.push(503)
  const { client: glasses } = await connectAcked(t, w.server, 'retry@example.com')
  glasses.send({ type: 'start_app', packageName: w.app.packageName })
  await eventually(() => w.hooks.received.length === 2, 'retried')
  t.equal(w.hooks.received[0]?.sessionId, w.hooks.received[1]?.sessionId, 'same session id')
  w.hooks.statuses.push(404)
  glasses.send({ type: 'start_app', packageName: w.other.packageName })
  await eventually(() => w.hooks.received.length === 3, 'other webhook')
  await delay(100)
  t.equal(w.hooks.received.length, 3, 'no retry after a 4xx')
  const metrics = await (await fetch(`${w.server.httpUrl}/metrics`)).text()
  t.match(metrics, /tether_app_start_failures_total\{package="com.example.other",failure="webhook"\} 1/)
})

t.test('an app that does not come back within its grace period is restarted by webhook', async t => {
  const w = await world(t)
  const { client: glasses } = await connectAcked(t, w.server, 'restart@example.com')
  const { client: app, sessionId } = await startRaw(t, w, glasses, w.app, 'restart@example.com')
  app.terminate()
  await eventually(() => w.hooks.received.length === 2, 'restart webhook', 2000)
  t.match(w.hooks.received[1], { type: 'session_request', sessionId }, 'same opaque session id')
  const again = await connectApp(t, w.server, { sessionId, packageName: w.app.packageName, apiKey: w.app.apiKey })
  await again.next('tpa_connection_ack')
  const metrics = await (await fetch(`${w.server.httpUrl}/metrics`)).text()
  t.match(metrics, /tether_app_restarts_total\{package="com.example.raw"\} 1/)
})

t.test('an app that reconnects within its grace period is not restarted; its old socket is replaced', async t => {
  const w = await world(t, { appGracePeriodMs: 2000 })
  const { client: glasses } = await connectAcked(t, w.server, 'back@example.com')
  const { client: first, sessionId } = await startRaw(t, w, glasses, w.app, 'back@example.com')
  const second = await connectApp(t, w.server, { sessionId, packageName: w.app.packageName, apiKey: w.app.apiKey })
  await second.next('tpa_connection_ack')
  t.equal(await first.waitClosed(), 1000, 'the same init on a new socket replaces the old one')
  t.equal(first.closeReason, 'replaced')
  second.send({ type: 'subscription_update', subscriptions: ['button_press'] })
  await eventually(() => w.server.app.sessions.get('back@example.com')?.view().appSubscriptions[w.app.packageName]?.length === 1, 'subscribed')
  glasses.send({ type: 'button_press', buttonId: 'x', pressType: 'short' })
  await second.next('data_stream')
  await delay(300)
  t.equal(w.hooks.received.length, 1, 'no restart webhook')
})

t.test('stream matching: the app\'s own string comes back as streamType; nothing unsubscribed is sent', async t => {
  const w = await world(t)
  const { client: glasses } = await connectAcked(t, w.server, 'match@example.com')
  const { client: app } = await startRaw(t, w, glasses, w.app, 'match@example.com')
  app.send({ type: 'subscription_update', packageName: w.app.packageName, subscriptions: ['transcription:EN-us?no-language-identification=true', { stream: 'head_position', rate: '1hz' }, 'touch_event', 'VAD'] })
  await eventually(() => w.server.app.sessions.get('match@example.com')?.view().appSubscriptions[w.app.packageName]?.length === 4, 'subscribed')
  glasses.send({ type: 'local_transcription', text: 'hi', isFinal: false })
  glasses.send({ type: 'head_position', position: 'up' })
  glasses.send({ type: 'touch_event', gesture_name: 'double_tap' })
  glasses.send({ type: 'VAD', status: true })
  glasses.send({ type: 'button_press', buttonId: 'b', pressType: 'short' })
  glasses.ws.send(Buffer.alloc(32))
  await app.until(() => app.count('data_stream') >= 4, 'four streams')
  await delay(100)
  const streams = app.messages.filter(m => m.type === 'data_stream')
  t.same(streams.map(m => m.streamType), ['transcription:EN-us?no-language-identification=true', 'head_position', 'touch_event', 'VAD'])
  t.match(streams[0]?.data, { type: 'transcription', text: 'hi', isFinal: false, transcribeLanguage: 'en-US' })
  t.equal(app.binaries.length, 0, 'no audio without audio_chunk')
  t.ok(streams.every(m => typeof m.sessionId === 'string'))
  app.send({ type: 'subscription_update', subscriptions: ['audio_chunk'] })
  await eventually(() => w.server.app.sessions.get('match@example.com')?.view().appSubscriptions[w.app.packageName]?.[0] === 'audio_chunk', 'replaced list')
  glasses.send({ type: 'head_position', position: 'down' })
  glasses.ws.send(Buffer.alloc(32, 1))
  await app.until(() => app.binaries.length === 1, 'audio')
  t.equal(app.count('data_stream'), 4, 'the replaced list no longer gets head_position')
})

t.test('bad input from an app gets an error and disturbs neither the glasses nor other apps', async t => {
  const w = await world(t, { maxBadFrames: 5, maxMessageBytes: 4096 })
  const { client: glasses } = await connectAcked(t, w.server, 'noisy@example.com')
  const { client: bad } = await startRaw(t, w, glasses, w.app, 'noisy@example.com')
  const { client: good } = await startRaw(t, w, glasses, w.other, 'noisy@example.com')
  good.send({ type: 'subscription_update', subscriptions: ['button_press'] })
  await eventually(() => w.server.app.sessions.get('noisy@example.com')?.view().appSubscriptions[w.other.packageName] !== undefined, 'good subscribed')
  const cases: Array<[string, string, string]> = [
    ['malformed', '{oops', 'MALFORMED_MESSAGE'],
    ['unknown type', '{"type":"launch_rocket"}', 'UNKNOWN_TYPE'],
    ['init twice', JSON.stringify({ type: 'tpa_connection_init', sessionId: 'x', packageName: w.app.packageName, apiKey: w.app.apiKey }), 'INVALID_MESSAGE'],
    ['foreign packageName', JSON.stringify({ type: 'subscription_update', packageName: w.other.packageName, subscriptions: [] }), 'INVALID_MESSAGE'],
    ['display without layout', '{"type":"display_event","view":"main"}', 'INVALID_MESSAGE']
  ]
  for (const [name, frame, code] of cases) {
    const from = bad.messages.length
    bad.send(frame)
    t.equal((await bad.next('error', 2000, from)).code, code, name)
  }
  bad.send('x')
  t.equal(await bad.waitClosed(), 1008, 'the sixth bad frame closes it')
  const hooksBefore = w.hooks.received.filter(h => h.type === 'session_request').length
  await eventually(() => w.hooks.received.filter(h => h.type === 'session_request').length === hooksBefore + 1, 'restarted after its app grace period', 3000)
  glasses.send({ type: 'button_press', buttonId: 'still', pressType: 'short' })
  await good.next('data_stream')
  t.equal(glasses.closeCode, null, 'glasses unaffected')
  t.equal(good.closeCode, null, 'the other app unaffected')
  t.equal(glasses.count('error'), 0)
})

t.test('an oversized app frame closes that app 1009; a display flood reaches the glasses in order', async t => {
  // Displays unthrottled: this is about transport order, not the glasses' pace (see the display manager's tests).
  const w = await world(t, { maxMessageBytes: 4096, appGracePeriodMs: 5000, displayIntervalMs: 0 })
  const { client: glasses } = await connectAcked(t, w.server, 'big@example.com')
  const { client: big } = await startRaw(t, w, glasses, w.app, 'big@example.com')
  const { client: painter } = await startRaw(t, w, glasses, w.other, 'big@example.com')
  for (let i = 0; i < 200; i++) painter.send({ type: 'display_event', view: 'main', layout: { layoutType: 'text_wall', text: `frame ${i}` } })
  await glasses.until(() => glasses.count('display_event') === 200, 'all frames')
  const texts = glasses.messages.filter(m => m.type === 'display_event').map(m => (m.layout as { text: string }).text)
  t.same(texts, Array.from({ length: 200 }, (_, i) => `frame ${i}`), 'in order, none lost')
  big.send({ type: 'display_event', layout: { text: 'x'.repeat(5000) } })
  t.equal(await big.waitClosed(), 1009)
  painter.send({ type: 'display_event', layout: { layoutType: 'text_wall', text: 'after' } })
  await glasses.until(() => glasses.count('display_event') === 201, 'the other app still draws')
  t.equal(glasses.closeCode, null)
})

t.test('ending a session settles pending starts and ends every app with "User session ended"', async t => {
  const w = await world(t, { appStartTimeoutMs: 200 })
  const { client: glasses } = await connectAcked(t, w.server, 'ending@example.com')
  const { client: running } = await startRaw(t, w, glasses, w.app, 'ending@example.com')
  glasses.send({ type: 'start_app', packageName: w.other.packageName })
  await eventually(() => w.hooks.received.length === 2, 'second webhook')
  const res = await w.server.app.inject({ method: 'DELETE', url: '/sessions/ending@example.com', headers: { authorization: `Bearer ${adminToken()}` } })
  t.equal(res.statusCode, 204)
  t.match(await running.next('app_stopped'), { type: 'app_stopped' })
  t.equal(await running.waitClosed(), 1000)
  t.equal(running.closeReason, 'User session ended')
  await delay(400)
  const metrics = await (await fetch(`${w.server.httpUrl}/metrics`)).text()
  t.notMatch(metrics, /tether_app_start_failures_total\{/, 'the pending start was settled, not left to time out')
  t.equal(w.server.app.apps.slots.size, 0, 'no app session id outlives its session')
  t.equal(w.hooks.received.filter(h => h.type === 'stop_request').length, 0, 'no stop_request on session end')
})
