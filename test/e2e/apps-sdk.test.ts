/**
 * Apps end to end with the real @mentra/sdk: webhook start, /app-ws, subscriptions,
 * stream relay, display, and what happens to apps when the glasses or the
 * session come and go. Real sockets and real webhooks on loopback.
 */
import t from 'tap'
import { admin, connectAcked, delay, eventually, startServer, type Client, type Server, type Teardown } from '../helper.js'
import { startSdkApp, writeCatalogue, type RunningApp } from '../sdk-app.js'

interface TestWithDir extends Teardown { testdir: () => string }

async function setup (t: TestWithDir, overrides = {}, appOptions: { withAudio?: boolean } = {}): Promise<{ server: Server, sdk: RunningApp }> {
  const sdk = await startSdkApp(t, 'com.example.recorder', appOptions)
  const appsFile = writeCatalogue(t.testdir(), [sdk])
  const server = await startServer(t, { appsFile, gracePeriodMs: 60_000, ...overrides })
  return { server, sdk }
}

/** Start the app from the glasses and wait until the SDK has subscribed to its handlers' streams. */
async function startApp (server: Server, glasses: Client, sdk: RunningApp, user: string): Promise<void> {
  glasses.send({ type: 'start_app', packageName: sdk.packageName })
  await eventually(() => {
    const subs = server.app.sessions.get(user)?.view().appSubscriptions[sdk.packageName]
    return subs !== undefined && subs.length >= 4
  }, 'the SDK subscribed', 5000)
}

t.test('start_app -> webhook -> SDK connects and subscribes; app_state_change follows every change', async t => {
  const { server, sdk } = await setup(t)
  const { client: glasses } = await connectAcked(t, server, 'apps@example.com')
  await startApp(server, glasses, sdk, 'apps@example.com')
  t.equal(sdk.app.sessions.length, 1, 'onSession ran once')
  t.equal(sdk.app.sessions[0]?.userId, 'apps@example.com')
  const states = glasses.messages.filter(m => m.type === 'app_state_change').map(m => m.userSession as { loadingApps: string[], activeAppSessions: string[] })
  t.same(states[0]?.loadingApps, [sdk.packageName], 'first: loading')
  t.ok(states.some(s => s.activeAppSessions.includes(sdk.packageName) && s.loadingApps.length === 0), 'then: active')
  const subs = server.app.sessions.get('apps@example.com')?.view().appSubscriptions[sdk.packageName]
  t.same([...(subs ?? [])].sort(), ['button_press', 'head_position', 'touch_event:forward_swipe', 'transcription:en-US'])
  const summary = (await admin(server, 'GET', '/sessions/apps@example.com')).json()
  t.same(summary.activeApps, [sdk.packageName])
  t.match(summary.managers.apps, { [sdk.packageName]: { status: 'running', connected: true, restarts: 0 } })
  const opaque = sdk.app.sessions[0]?.sessionId ?? ''
  t.notOk(opaque.includes('apps@example.com'), 'the app session id is opaque')
})

t.test('glasses events and audio reach the SDK handlers; showTextWall reaches the glasses', async t => {
  const { server, sdk } = await setup(t, {}, { withAudio: true })
  const { client: glasses } = await connectAcked(t, server, 'relay@example.com')
  await startApp(server, glasses, sdk, 'relay@example.com')
  await eventually(() => server.app.sessions.get('relay@example.com')?.view().appSubscriptions[sdk.packageName]?.includes('audio_chunk'), 'audio subscribed', 5000)
  glasses.send({ type: 'button_press', buttonId: 'main', pressType: 'long' })
  glasses.send({ type: 'head_position', position: 'down' })
  glasses.send({ type: 'local_transcription', text: 'hello world', isFinal: true, transcribeLanguage: 'en-US' })
  glasses.send({ type: 'local_transcription', text: 'bonjour', isFinal: true, transcribeLanguage: 'fr-FR' })
  glasses.send({ type: 'touch_event', gesture_name: 'forward_swipe' })
  glasses.send({ type: 'touch_event', gesture_name: 'double_tap' })
  glasses.ws.send(Buffer.alloc(640, 7))
  const app = sdk.app
  await eventually(() => app.of('audio_chunk').length === 1 && app.of('touch_event:forward_swipe').length === 1, 'events delivered', 5000)
  t.match(app.of('button_press')[0]?.data, { buttonId: 'main', pressType: 'long' })
  t.match(app.of('head_position')[0]?.data, { position: 'down' })
  t.equal(app.of('transcription').length, 1, 'only the subscribed language')
  t.match(app.of('transcription')[0]?.data, { text: 'hello world', isFinal: true, transcribeLanguage: 'en-US' })
  t.match(app.of('touch_event:forward_swipe')[0]?.data, { gesture_name: 'forward_swipe' })
  const chunk = app.of('audio_chunk')[0]?.data as { arrayBuffer: ArrayBuffer }
  t.equal(chunk.arrayBuffer.byteLength, 640)

  sdk.app.sessions[0]?.session.layouts.showTextWall('Hello from the app')
  const shown = await glasses.next('display_event', 3000)
  t.match(shown, { type: 'display_event', packageName: sdk.packageName, view: 'main', layout: { layoutType: 'text_wall', text: 'Hello from the app' } })
  const metrics = await (await fetch(`${server.httpUrl}/metrics`)).text()
  t.match(metrics, /tether_relayed_messages_total\{stream="transcription"\} 1/)
  t.match(metrics, /tether_app_started_total\{package="com.example.recorder"\} 1/)
})

t.test('glasses drop and resume inside grace: no second webhook, no new app socket, data flows again', async t => {
  const { server, sdk } = await setup(t)
  const first = await connectAcked(t, server, 'away@example.com')
  await startApp(server, first.client, sdk, 'away@example.com')
  sdk.app.sessions[0]?.session.layouts.showTextWall('keep me')
  await first.client.next('display_event', 3000)
  first.client.terminate()
  await eventually(() => server.app.sessions.get('away@example.com')?.state === 'grace', 'grace')
  // The app keeps running while the glasses are away.
  await delay(200)
  t.same(server.app.sessions.get('away@example.com')?.view().activeAppSessions, [sdk.packageName])
  const { client: back, ack } = await connectAcked(t, server, 'away@example.com')
  t.equal(ack.reconnection, true)
  t.same((ack.userSession as { activeAppSessions: string[] }).activeAppSessions, [sdk.packageName], 'the ack lists the running app')
  const again = await back.next('display_event', 3000)
  t.match(again, { layout: { text: 'keep me' } }, 'the last layout is shown again')
  back.send({ type: 'button_press', buttonId: 'again', pressType: 'short' })
  await eventually(() => sdk.app.of('button_press').some(r => (r.data as { buttonId: string }).buttonId === 'again'), 'data resumes', 3000)
  t.equal(sdk.app.sessions.length, 1, 'no second session_request')
  t.equal(sdk.app.stops.length, 0, 'the app was never stopped')
  const metrics = await (await fetch(`${server.httpUrl}/metrics`)).text()
  t.match(metrics, /tether_app_starts_total\{package="com.example.recorder",reason="user"\} 1/)
  t.notMatch(metrics, /reason="restart"/)
})

t.test('grace expiry ends the app: onStop with "User session ended", and the SDK does not reconnect', async t => {
  const { server, sdk } = await setup(t, { gracePeriodMs: 150 })
  const { client } = await connectAcked(t, server, 'gone@example.com')
  await startApp(server, client, sdk, 'gone@example.com')
  client.terminate()
  await eventually(() => sdk.app.stops.some(s => s.reason === 'User session ended'), 'onStop', 3000)
  t.equal(server.app.apps.slots.size, 0, 'no app session ids left')
  await delay(1500)
  t.equal(server.app.websocketServer.clients.size, 0, 'no app socket came back')
})

t.test('an app socket killed by the network: the SDK reconnects and is accepted, no restart', async t => {
  const { server, sdk } = await setup(t, { appGracePeriodMs: 4000 })
  const { client } = await connectAcked(t, server, 'flaky@example.com')
  await startApp(server, client, sdk, 'flaky@example.com')
  const snapshot = (): { status: string } => ((server.app.sessions.get('flaky@example.com')?.managers.find(m => m.name === 'apps')?.snapshot() ?? {}) as Record<string, { status: string }>)[sdk.packageName] ?? { status: 'none' }
  // Kill the app's socket without a close frame, as a network failure would: the SDK sees 1006.
  // (`ws` is the SDK session's own socket; it is not part of the SDK's typed surface.)
  const appSession = sdk.app.sessions[0]?.session as unknown as { ws: { terminate: () => void } }
  appSession.ws.terminate()
  await eventually(() => snapshot().status === 'reconnecting', 'app grace', 2000)
  await eventually(() => snapshot().status === 'running', 'SDK reconnected', 6000)
  client.send({ type: 'button_press', buttonId: 'after', pressType: 'short' })
  await eventually(() => sdk.app.of('button_press').length === 1, 'data after reconnect', 3000)
  t.equal(sdk.app.sessions.length, 1, 'no second session_request')
  t.equal(sdk.app.stops.length, 0)
})

t.test('stop_app: stop_request webhook, the SDK runs onStop, the app leaves the session', async t => {
  const { server, sdk } = await setup(t)
  const { client } = await connectAcked(t, server, 'stopper@example.com')
  await startApp(server, client, sdk, 'stopper@example.com')
  client.send({ type: 'stop_app', packageName: sdk.packageName })
  await eventually(() => sdk.app.stops.length > 0, 'onStop', 3000)
  t.equal(sdk.app.stops[0]?.reason, 'user_stopped')
  await eventually(() => server.app.sessions.get('stopper@example.com')?.view().activeAppSessions.length === 0, 'removed')
  t.same(server.app.sessions.get('stopper@example.com')?.view().appSubscriptions, {}, 'subscriptions gone')
  const last = client.messages.filter(m => m.type === 'app_state_change').at(-1)
  t.same((last?.userSession as { activeAppSessions: string[] }).activeAppSessions, [])
  await delay(1500)
  t.equal(server.app.websocketServer.clients.size, 1, 'only the glasses socket is left; the SDK did not reconnect')
})

t.test('a fresh session restarts the apps its user had running; a stopped app is forgotten', async t => {
  const { server, sdk } = await setup(t)
  const { client } = await connectAcked(t, server, 'loyal@example.com')
  await startApp(server, client, sdk, 'loyal@example.com')
  t.equal((await admin(server, 'DELETE', '/sessions/loyal@example.com')).statusCode, 204)
  await eventually(() => sdk.app.stops.some(s => s.reason === 'User session ended'), 'ended')
  const stopsBefore = sdk.app.stops.length
  const { client: fresh, ack } = await connectAcked(t, server, 'loyal@example.com')
  t.equal(ack.reconnection, false)
  // The server counts the app as running when it acks the init; the SDK runs
  // onSession only after reading that ack, so wait for what onSession does.
  await eventually(() => (server.app.sessions.get('loyal@example.com')?.view().appSubscriptions[sdk.packageName]?.length ?? 0) >= 4, 'restored and subscribed', 5000)
  t.equal(sdk.app.sessions.length, 2, 'a second session_request for the new session')
  fresh.send({ type: 'stop_app', packageName: sdk.packageName })
  await eventually(() => sdk.app.stops.length > stopsBefore, 'stopped')
  t.equal(sdk.app.stops.at(-1)?.reason, 'user_stopped')
  await admin(server, 'DELETE', '/sessions/loyal@example.com')
  await connectAcked(t, server, 'loyal@example.com')
  await delay(300)
  t.equal(sdk.app.sessions.length, 2, 'not restarted after a stop_app')
})

t.test('an SDK app holding the wrong API key is refused and its start fails', async t => {
  const sdk = await startSdkApp(t, 'com.example.recorder')
  const appsFile = writeCatalogue(t.testdir(), [{ ...sdk, apiKey: 'the-key-tether-knows' }])
  const server = await startServer(t, { appsFile, appStartTimeoutMs: 800 })
  const { client } = await connectAcked(t, server, 'wrongkey@example.com')
  client.send({ type: 'start_app', packageName: sdk.packageName })
  await eventually(() => {
    const last = client.messages.filter(m => m.type === 'app_state_change').at(-1)?.userSession as { loadingApps: string[] } | undefined
    return client.count('app_state_change') >= 2 && last?.loadingApps.length === 0
  }, 'start failed', 3000)
  t.equal(sdk.app.sessions.length, 0, 'onSession never ran')
  const metrics = await (await fetch(`${server.httpUrl}/metrics`)).text()
  t.match(metrics, /tether_app_init_refusals_total\{code="INVALID_API_KEY"\} 1/)
  t.match(metrics, /tether_app_start_failures_total\{package="com.example.recorder",failure="refused"\} 1/, 'failed by the refusal, not left to time out')
  t.same(server.app.sessions.get('wrongkey@example.com')?.view().activeAppSessions, [])
})
