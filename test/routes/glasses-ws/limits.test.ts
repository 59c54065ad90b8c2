/** Issue 5 limits not covered by the hostile suite: slow consumers, token expiry, JSON depth, the pinned fast-jwt. */
import { createRequire } from 'node:module'
import t from 'tap'
import { createVerifier } from 'fast-jwt'
import { connectAcked, connectGlasses, eventually, sign, startServer } from '../../helper.js'
import { connectApp, rawAppIdentity, startWebhookReceiver } from '../../raw-app.js'
import { writeCatalogue } from '../../sdk-app.js'
import { nestsDeeperThan } from '../../../protocol/parse-frame.js'

t.test('glasses that stop reading are closed 4009; audio to an app that stops reading is dropped and counted', async t => {
  const hooks = await startWebhookReceiver(t)
  const app = rawAppIdentity('com.example.slow', hooks.url)
  // Displays unthrottled: the flood below must reach the socket to fill its buffer.
  const server = await startServer(t, { appsFile: writeCatalogue(t.testdir(), [app]), maxBufferedBytes: 64 * 1024, displayIntervalMs: 0 })
  const { client: glasses } = await connectAcked(t, server, 'slow@example.com')
  glasses.send({ type: 'start_app', packageName: app.packageName })
  const hook = await eventually(() => hooks.received[0], 'webhook')
  const appClient = await connectApp(t, server, { sessionId: hook.sessionId, packageName: app.packageName, apiKey: app.apiKey })
  await appClient.next('tpa_connection_ack')
  appClient.send({ type: 'subscription_update', subscriptions: ['audio_chunk'] })
  await eventually(() => server.app.sessions.get('slow@example.com')?.view().appSubscriptions[app.packageName] !== undefined, 'subscribed')

  // The app stops reading: its socket's buffers fill and the audio beyond is dropped, not queued.
  const appSocket = (appClient.ws as unknown as { _socket: { pause: () => void, resume: () => void } })._socket
  appSocket.pause()
  const chunk = Buffer.alloc(32 * 1024)
  for (let i = 0; i < 400; i++) glasses.ws.send(chunk)
  await eventually(async () => /tether_audio_chunks_dropped_total\{package="com.example.slow"\} [1-9]/.test(await (await fetch(`${server.httpUrl}/metrics`)).text()), 'drops counted', 10_000)
  t.equal(appClient.closeCode, null, 'a slow app loses audio, not its socket')
  appSocket.resume()

  // The glasses stop reading while an app draws a lot: the server closes them 4009.
  const glassesSocket = (glasses.ws as unknown as { _socket: { pause: () => void, resume: () => void } })._socket
  glassesSocket.pause()
  for (let i = 0; i < 200; i++) appClient.send({ type: 'display_event', layout: { layoutType: 'text_wall', text: 'x'.repeat(60 * 1024) } })
  await eventually(() => server.app.sessions.get('slow@example.com')?.state === 'grace', 'glasses dropped', 10_000)
  glassesSocket.resume()
  const metrics = await (await fetch(`${server.httpUrl}/metrics`)).text()
  t.match(metrics, /tether_close_codes_sent_total\{code="4009"\} 1/, 'the server closed the glasses as a slow consumer (4009)')
  t.match(server.app.sessions.get('slow@example.com')?.recentEvents().find(e => e.event === 'session.detached'), { closeCode: 4009, reason: 'server_closed' })
  // A client that far behind may never read the close frame: it sees 4009 or, once destroyed, 1006.
  t.ok([4009, 1006].includes(await glasses.waitClosed(10_000)), 'the glasses socket is gone')
})

t.test('a token that expires while connected closes the socket 1008; a fresh token resumes the session', async t => {
  const server = await startServer(t, { tokenClockToleranceMs: 0 })
  const exp = Math.floor(Date.now() / 1000) + 2
  const ws = await connectGlasses(t, server, sign({ email: 'short@example.com', sub: 's', exp }))
  const ack = await ws.next('connection_ack')
  t.equal(await ws.waitClosed(4000), 1008)
  t.equal(ws.closeReason, 'token expired')
  await eventually(() => server.app.sessions.get('short@example.com')?.state === 'grace', 'grace')
  const { ack: again } = await connectAcked(t, server, 'short@example.com')
  t.equal(again.reconnection, true)
  t.equal(again.sessionInstanceId, ack.sessionInstanceId)
})

t.test('JSON depth is checked on the raw text, strings and escapes included', async t => {
  t.equal(nestsDeeperThan('{"a":{"b":[1,[2]]}}', 4), false)
  t.equal(nestsDeeperThan('{"a":{"b":[1,[2]]}}', 3), true)
  t.equal(nestsDeeperThan(`{"s":"${'['.repeat(100)}"}`, 3), false, 'brackets inside strings do not count')
  t.equal(nestsDeeperThan(`{"s":"\\"${'{'.repeat(10)}"}`, 3), false, 'an escaped quote does not end the string')
  t.equal(nestsDeeperThan('['.repeat(40) + ']'.repeat(40), 32), true)
})

t.test('fast-jwt is pinned past the empty-secret flaw and refuses an empty HMAC key', async t => {
  const require = createRequire(import.meta.url)
  const { version } = require('fast-jwt/package.json') as { version: string }
  const [major = 0, minor = 0, patch = 0] = version.split('.').map(Number)
  t.ok(major > 6 || (major === 6 && (minor > 2 || (minor === 2 && patch >= 3))), `fast-jwt ${version} >= 6.2.3`)
  t.throws(() => createVerifier({ key: '', algorithms: ['HS256'] }), 'an empty key is refused')
})
