/**
 * The phone's REST API on a real server: token checks, the calls that need no
 * session, empty JSON bodies, 503 NO_ACTIVE_SESSION (and never while a socket
 * is being attached), device state, rate limits, token exchange, /ws/client.
 */
import { once } from 'node:events'
import t from 'tap'
import WebSocket from 'ws'
import { createVerifier } from 'fast-jwt'
import { Client, SECRET, admin, connectAcked, delay, eventually, glassesToken, sign, startServer, type Server } from '../helper.js'
import { connectApp, rawAppIdentity, startWebhookReceiver } from '../raw-app.js'
import { writeCatalogue } from '../sdk-app.js'

async function call (server: Server, method: string, path: string, options: { token?: string | null, body?: unknown, raw?: string } = {}) {
  const token = options.token === undefined ? glassesToken('phone@example.com') : options.token
  const headers: Record<string, string> = { 'content-type': 'application/json' }
  if (token !== null) headers.authorization = `Bearer ${token}`
  const body = options.raw ?? (options.body === undefined ? undefined : JSON.stringify(options.body))
  const res = await fetch(`${server.httpUrl}${path}`, { method, headers, ...(method === 'GET' ? {} : { body: body ?? '' }) })
  const text = await res.text()
  return { status: res.status, headers: res.headers, body: text === '' ? null : JSON.parse(text) as Record<string, unknown> }
}

t.test('tokens: 401 without or with a bad one; min-version needs none', async t => {
  const server = await startServer(t, { minAppVersion: '2.1.0', recommendedAppVersion: '2.3.4' })
  t.match(await call(server, 'GET', '/api/client/apps', { token: null }), { status: 401, body: { error: 'NO_TOKEN' } })
  t.match(await call(server, 'GET', '/api/client/apps', { token: sign({ email: 'x@example.com', sub: 's' }, { key: 'another-secret-0123456789abcdef0123' }) }),
    { status: 401, body: { error: 'INVALID_TOKEN' } })
  t.match(await call(server, 'GET', '/api/client/min-version', { token: null }), { status: 200, body: { success: true, data: { required: '2.1.0', recommended: '2.3.4' } } })
})

t.test('settings need a token, not a session; they merge per user', async t => {
  const server = await startServer(t)
  t.match(await call(server, 'GET', '/api/client/user/settings'), { status: 200, body: { success: true, data: { settings: {} } } })
  t.match(await call(server, 'POST', '/api/client/user/settings', { body: { settings: { time_zone: 'Europe/Berlin', timezone: 'Europe/Berlin' } } }), { status: 200 })
  t.match(await call(server, 'POST', '/api/client/user/settings', { body: { settings: { metric: true } } }), { status: 200 })
  t.same((await call(server, 'GET', '/api/client/user/settings')).body, { success: true, data: { settings: { time_zone: 'Europe/Berlin', timezone: 'Europe/Berlin', metric: true } } })
  t.same((await call(server, 'GET', '/api/client/user/settings', { token: glassesToken('other@example.com') })).body?.data, { settings: {} }, 'per user')
  t.match(await call(server, 'POST', '/api/client/user/settings', { body: { nope: 1 } }), { status: 400 })
  t.match(await call(server, 'POST', '/api/client/user/settings', { raw: '{"settings":' }), { status: 400 }, 'broken JSON is a 400')
})

t.test('session-scoped calls: 503 NO_ACTIVE_SESSION without a session; an empty JSON body is {}', async t => {
  const server = await startServer(t)
  const started = Date.now()
  t.match(await call(server, 'POST', '/api/client/device/state', { body: { batteryLevel: 50 } }), { status: 503, body: { error: 'NO_ACTIVE_SESSION' } })
  t.ok(Date.now() - started < 2000, 'answered promptly when no socket is on its way')
  t.match(await call(server, 'POST', '/apps/com.example.any/stop'), { status: 404, body: { success: false } }, 'unknown app (empty body accepted)')
  const apps = await call(server, 'GET', '/api/client/apps')
  t.match(apps, { status: 200, body: { success: true, data: [] } }, 'the list needs no session')
})

t.test('device state: changed keys to every app, connected from modelName, 429 past 10 a second', async t => {
  const hooks = await startWebhookReceiver(t)
  const app = rawAppIdentity('com.example.watch', hooks.url)
  const server = await startServer(t, { appsFile: writeCatalogue(t.testdir(), [app]), deviceStatePerSecond: 10 })
  const { client: glasses } = await connectAcked(t, server, 'phone@example.com')
  glasses.send({ type: 'start_app', packageName: app.packageName })
  const hook = await eventually(() => hooks.received[0], 'webhook')
  const appClient = await connectApp(t, server, { sessionId: hook.sessionId, packageName: app.packageName, apiKey: app.apiKey })
  await appClient.next('tpa_connection_ack')

  const full = await call(server, 'POST', '/api/client/device/state', { body: { batteryLevel: 80, charging: false, connected: true, modelName: 'Even G1', wifiConnected: null } })
  t.match(full, { status: 200, body: { success: true, appliedState: { isGlassesConnected: true, isPhoneConnected: true, modelName: 'Even G1' } } })
  const first = await appClient.next('device_state_update')
  t.match(first, { state: { batteryLevel: 80, charging: false, connected: true, modelName: 'Even G1' }, fullSnapshot: false })
  await call(server, 'POST', '/api/client/device/state', { body: { batteryLevel: 80, charging: true } })
  const second = await appClient.next('device_state_update', 2000, appClient.messages.indexOf(first) + 1)
  t.same(second.state, { charging: true }, 'only the keys whose value changed')
  const off = await call(server, 'POST', '/api/client/device/state', { body: { modelName: '' } })
  t.match(off.body, { appliedState: { isGlassesConnected: false, modelName: '' } }, 'an empty modelName means not connected')

  const burst = await Promise.all(Array.from({ length: 12 }, async () => await call(server, 'POST', '/api/client/device/state', { body: {} })))
  const limited = burst.filter(r => r.status === 429)
  t.ok(limited.length >= 1, 'over the limit')
  t.equal(limited[0]?.headers.get('retry-after'), '1')
  await delay(1100)
  t.equal((await call(server, 'POST', '/api/client/device/state', { body: {} })).status, 200, 'fine again a second later')
})

t.test('a REST call racing the socket waits for it: no 503 while the user is being attached', async t => {
  const server = await startServer(t)
  for (let round = 0; round < 10; round++) {
    const email = `race${round}@example.com`
    const socket = new WebSocket(`${server.wsUrl}/ws/client?token=${glassesToken(email)}&livekit=true&udpEncryption=true`)
    const client = new Client(socket)
    t.teardown(() => socket.terminate())
    // The phone posts its device state at socket open; here the call even starts before the upgrade answers.
    const posted = call(server, 'POST', '/api/client/device/state', { token: glassesToken(email), body: { connected: true } })
    const [answer] = await Promise.all([posted, once(socket, 'open')])
    t.equal(answer.status, 200, `round ${round}: answered, not 503`)
    await client.next('connection_ack')
  }
})

t.test('audio/configure: lc3 sizes, defaults and refusals', async t => {
  const server = await startServer(t)
  await connectAcked(t, server, 'phone@example.com')
  const configure = async (body: unknown) => await call(server, 'POST', '/api/client/audio/configure', { body })
  t.match(await configure({ format: 'lc3', lc3Config: { sampleRate: 16000, frameDurationMs: 10, frameSizeBytes: 60 } }),
    { status: 200, body: { success: true, format: 'lc3', lc3Config: { sampleRate: 16000, frameDurationMs: 10, frameSizeBytes: 60 } } })
  t.match(await configure({ format: 'lc3', lc3Config: { sampleRate: 48000, frameDurationMs: 7.5, frameSizeBytes: 33 } }),
    { status: 200, body: { lc3Config: { sampleRate: 16000, frameDurationMs: 10, frameSizeBytes: 20 } } }, 'anything else is 16000/10/20')
  t.match(await configure({ format: 'lc3' }), { body: { lc3Config: { frameSizeBytes: 20 } } })
  t.match(await configure({ format: 'pcm' }), { status: 200, body: { format: 'pcm', lc3Config: null } })
  t.match(await configure({ format: 'opus' }), { status: 400 })
  // Remembered for the user: a later session starts with it.
  await configure({ format: 'lc3', lc3Config: { frameSizeBytes: 40 } })
  t.equal((await admin(server, 'DELETE', '/sessions/phone@example.com')).statusCode, 204)
  const { client } = await connectAcked(t, server, 'phone@example.com')
  const audio = (): unknown => server.app.sessions.get('phone@example.com')?.managers.find(m => m.name === 'audio')?.snapshot()
  t.match(audio(), { format: { format: 'pcm' } }, 'not read until audio comes')
  client.ws.send(Buffer.alloc(80))
  await eventually(() => (audio() as { format: { format: string } }).format.format === 'lc3', 'the stored format')
  t.match(audio(), { format: { format: 'lc3', frameSizeBytes: 40 } })
})

t.test('token exchange: 501 unless configured; a Supabase token becomes a core token without expiry', async t => {
  const plain = await startServer(t)
  t.match(await call(plain, 'POST', '/auth/exchange-token', { token: null, body: { supabaseToken: 'x' } }), { status: 501, body: { error: 'NOT_CONFIGURED' } })
  const supabaseSecret = 'supabase-project-secret-0123456789abcdef'
  const server = await startServer(t, { supabaseJwtSecret: supabaseSecret })
  const supabaseToken = sign({ email: 'Wearer@Example.com', sub: 'sb-123', role: 'authenticated' }, { key: supabaseSecret, expiresIn: 3600_000 })
  const answer = await call(server, 'POST', '/auth/exchange-token', { token: null, body: { supabaseToken } })
  t.equal(answer.status, 200)
  const claims = createVerifier({ key: SECRET })(answer.body?.coreToken as string) as Record<string, unknown>
  t.match(claims, { email: 'wearer@example.com', sub: 'sb-123' })
  t.equal(claims.exp, undefined, 'core tokens carry no expiry')
  t.match(await call(server, 'POST', '/auth/exchange-token', { token: null, body: { supabaseToken: glassesToken('x@example.com') } }), { status: 401 }, 'a token of another secret')
  const { client } = await connectAcked(t, server, 'wearer@example.com')
  t.equal(client.closeCode, null)
  const core = new Client(new WebSocket(`${server.wsUrl}/glasses-ws?token=${answer.body?.coreToken as string}`))
  t.teardown(() => core.terminate())
  t.match(await core.next('connection_ack'), { sessionId: 'wearer@example.com' }, 'the minted token opens the socket')
})
