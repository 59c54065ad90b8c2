/** DESIGN state machine over real sockets: create, ack, resume in grace, replace, serialise, expire. */
import type { Socket } from 'node:net'
import t from 'tap'
import WebSocket from 'ws'
import { Client, admin, connectAcked, delay, eventually, glassesToken, startServer } from '../../helper.js'

t.test('the first connection creates a session and gets exactly one ack, first', async t => {
  const server = await startServer(t, { pingIntervalMs: 1000, silenceTimeoutMs: 3000 })
  const { client, ack } = await connectAcked(t, server, 'first@example.com')
  t.equal(client.messages[0]?.type, 'connection_ack', 'the ack comes before anything else')
  t.match(ack, {
    type: 'connection_ack',
    sessionId: 'first@example.com',
    sessionInstanceId: String,
    connectionId: String,
    reconnection: false,
    heartbeat: { pingIntervalMs: 1000, silenceTimeoutMs: 3000 },
    userSession: { userId: 'first@example.com', startTime: String, activeAppSessions: [], loadingApps: [], appSubscriptions: {} },
    timestamp: String
  })
  client.send({ type: 'ping' })
  await client.next('pong')
  t.equal(client.count('connection_ack'), 1, 'one ack per connection')
  const session = server.app.sessions.get('first@example.com')
  t.equal(session?.state, 'active')
  t.equal(session?.sessionInstanceId, ack.sessionInstanceId)
})

t.test('connection_init is answered with the same ack and changes nothing', async t => {
  const server = await startServer(t)
  const { client, ack } = await connectAcked(t, server, 'init@example.com')
  client.send({ type: 'connection_init' })
  await client.until(() => client.count('connection_ack') === 2, 'second ack')
  const again = client.messages.filter(m => m.type === 'connection_ack')[1]
  t.same({ ...again, timestamp: null }, { ...ack, timestamp: null }, 'identical but for the timestamp')
  const session = server.app.sessions.get('init@example.com')
  t.equal(session?.reconnections, 0)
  t.equal(server.app.sessions.size, 1)
})

t.test('a reconnect during grace resumes the same session without restarting anything', async t => {
  const server = await startServer(t, { gracePeriodMs: 5000 })
  const { client, ack } = await connectAcked(t, server, 'resume@example.com')
  const session = server.app.sessions.get('resume@example.com')
  client.terminate()
  await eventually(() => session?.state === 'grace', 'grace')
  t.type(session?.times.disconnectedAt, 'number', 'disconnectedAt recorded')
  t.type(session?.times.graceExpiresAt, 'number', 'graceExpiresAt set')
  const { client: again, ack: ack2 } = await connectAcked(t, server, 'resume@example.com')
  t.equal(ack2.reconnection, true)
  t.equal(ack2.sessionInstanceId, ack.sessionInstanceId, 'same session instance')
  t.not(ack2.connectionId, ack.connectionId, 'new connection id')
  t.equal(server.app.sessions.get('resume@example.com'), session, 'the very same object')
  t.equal(session?.state, 'active')
  t.equal(session?.times.disconnectedAt, null, 'disconnectedAt cleared')
  t.equal(session?.times.graceExpiresAt, null)
  t.equal(session?.reconnections, 1)
  const events = session?.recentEvents().map(e => e.event)
  t.same(events, ['session.created', 'session.attached', 'session.detached', 'session.resumed', 'session.attached'])
  again.send({ type: 'ping' })
  await again.next('pong')
})

t.test('every reconnection hears the microphone is off, also before any app ran, and once when the app side is built meanwhile', async t => {
  const server = await startServer(t, { gracePeriodMs: 5000 })
  const { client } = await connectAcked(t, server, 'mic@example.com')
  const session = server.app.sessions.get('mic@example.com')
  await delay(200)
  t.equal(client.count('microphone_state_change'), 0, 'a new session with nothing to ask says nothing')
  client.terminate()
  await eventually(() => session?.state === 'grace', 'grace')

  const { client: resumed } = await connectAcked(t, server, 'mic@example.com')
  const ackedAt = Date.now()
  const off = await resumed.next('microphone_state_change')
  t.ok(Date.now() - ackedAt >= 80, 'shortly after the attach')
  t.match(off, { sessionId: 'mic@example.com', isMicrophoneEnabled: false, requiredData: [], bypassVad: false })

  // A takeover is a reconnection too; a message for the app side right after it builds the app side
  // while the re-send is pending, and the phone still hears "off" once.
  const { client: taker } = await connectAcked(t, server, 'mic@example.com')
  taker.send({ type: 'button_press', buttonId: 'main', pressType: 'short' })
  await taker.next('microphone_state_change')
  await delay(300)
  t.equal(taker.count('microphone_state_change'), 1, 'once')
  t.equal(session?.reconnections, 2)
})

t.test('the grace timer is cancelled by a resume', async t => {
  const server = await startServer(t, { gracePeriodMs: 150 })
  const { client } = await connectAcked(t, server, 'cancel@example.com')
  const session = server.app.sessions.get('cancel@example.com')
  client.terminate()
  await eventually(() => session?.state === 'grace', 'grace')
  await connectAcked(t, server, 'cancel@example.com')
  await delay(300)
  t.equal(session?.state, 'active', 'still alive after the grace period would have ended')
  t.equal(server.app.sessions.get('cancel@example.com'), session)
})

t.test('a second live socket replaces the first: 4001, no grace from its late close', async t => {
  const server = await startServer(t, { gracePeriodMs: 5000 })
  const { client: first, ack } = await connectAcked(t, server, 'replace@example.com')
  const { client: second, ack: ack2 } = await connectAcked(t, server, 'replace@example.com')
  t.equal(await first.waitClosed(), 4001, 'old socket closed 4001')
  t.equal(ack2.reconnection, true)
  t.equal(ack2.sessionInstanceId, ack.sessionInstanceId)
  await delay(50)
  const session = server.app.sessions.get('replace@example.com')
  t.equal(session?.state, 'active', 'the late close of the old socket started no grace period')
  t.equal(session?.reconnections, 1)
  t.equal(session?.currentConnection?.id, ack2.connectionId)
  second.send({ type: 'ping' })
  await second.next('pong')
  t.equal(first.count('pong'), 0)
})

t.test('two simultaneous first connections yield one session', async t => {
  // Four takeovers in a burst: above the default limit, which would start a cool-down (tested elsewhere).
  const server = await startServer(t, { takeoverLimit: 10 })
  const token = glassesToken('race@example.com')
  const sockets = Array.from({ length: 5 }, () => new Client(new WebSocket(`${server.wsUrl}/glasses-ws`,
    { headers: { authorization: `Bearer ${token}` } })))
  for (const c of sockets) t.teardown(() => c.terminate())
  const acks = await Promise.all(sockets.map(async c => await c.next('connection_ack')))
  t.equal(new Set(acks.map(a => a.sessionInstanceId)).size, 1, 'one session instance')
  t.equal(acks.filter(a => a.reconnection === false).length, 1, 'exactly one created it')
  t.equal(server.app.sessions.size, 1)
  const session = server.app.sessions.get('race@example.com')
  t.equal(session?.reconnections, 4)
  await eventually(() => sockets.filter(c => c.closeCode === 4001).length === 4, 'four replaced')
  t.equal(session?.state, 'active')
})

t.test('grace expiry disposes the session and a later connection starts fresh', async t => {
  const server = await startServer(t, { gracePeriodMs: 100 })
  const { client, ack } = await connectAcked(t, server, 'expire@example.com')
  const session = server.app.sessions.get('expire@example.com')
  client.terminate()
  await eventually(() => session?.state === 'disposed', 'disposed', 2000)
  t.equal(server.app.sessions.get('expire@example.com'), undefined, 'removed from the registry')
  t.match(session?.recentEvents().at(-1), { event: 'session.disposed', reason: 'grace_expired' })
  const { ack: fresh } = await connectAcked(t, server, 'expire@example.com')
  t.equal(fresh.reconnection, false)
  t.not(fresh.sessionInstanceId, ack.sessionInstanceId, 'a new session instance')
})

t.test('a reconnect racing the grace timer resumes or starts fresh, never both', async t => {
  // Reconnect at staggered moments around the timer: each outcome must be coherent.
  for (const offset of [-20, -5, 0, 5, 20]) {
    const server = await startServer(t, { gracePeriodMs: 60 })
    const { client, ack } = await connectAcked(t, server, 'racer@example.com')
    client.terminate()
    const session = server.app.sessions.get('racer@example.com')
    await eventually(() => session?.state === 'grace', 'grace')
    await delay(Math.max(0, 60 + offset))
    const { client: again, ack: ack2 } = await connectAcked(t, server, 'racer@example.com')
    await delay(120)
    const live = server.app.sessions.get('racer@example.com')
    t.equal(server.app.sessions.size, 1, `offset ${offset}: one session`)
    t.equal(live?.state, 'active', `offset ${offset}: active`)
    t.equal(live?.currentConnection?.id, ack2.connectionId, `offset ${offset}: owns the new socket`)
    if (ack2.reconnection === true) {
      t.equal(ack2.sessionInstanceId, ack.sessionInstanceId, `offset ${offset}: resumed the same session`)
      t.equal(live, session)
    } else {
      t.not(ack2.sessionInstanceId, ack.sessionInstanceId, `offset ${offset}: fresh session`)
      t.equal(session?.state, 'disposed', `offset ${offset}: old one disposed`)
    }
    again.send({ type: 'ping' })
    await again.next('pong')
    t.equal(again.closeCode, null, `offset ${offset}: socket still open`)
  }
})

t.test('silence terminates the socket and starts the grace period; frames and pongs keep it alive', async t => {
  // The lively client answers pings in this very process: the timeout leaves room for a loaded machine's stalls.
  const server = await startServer(t, { pingIntervalMs: 40, silenceTimeoutMs: 400, gracePeriodMs: 5000 })
  // ws clients answer pings with pongs automatically: this one stays alive past several timeouts.
  const { client: lively } = await connectAcked(t, server, 'lively@example.com')
  // This one never answers pings: auto-pong off.
  const mute = new WebSocket(`${server.wsUrl}/glasses-ws`, { autoPong: false, headers: { authorization: `Bearer ${glassesToken('mute@example.com')}` } })
  const muteClient = new Client(mute)
  t.teardown(() => mute.terminate())
  await muteClient.next('connection_ack')
  const code = await muteClient.waitClosed(2000)
  t.equal(code, 1006, 'terminated without a close frame')
  const session = server.app.sessions.get('mute@example.com')
  await eventually(() => session?.state === 'grace', 'grace after silence')
  t.match(session?.recentEvents().at(-1), { event: 'session.detached', reason: 'silence' })
  t.equal(server.app.sessions.get('lively@example.com')?.state, 'active', 'a client that answers pings is kept')
  t.equal(lively.closeCode, null)
  const metrics = await (await fetch(`${server.httpUrl}/metrics`)).text()
  t.match(metrics, /tether_heartbeat_terminations_total 1\b/)
})

t.test('JSON frames count as liveness when pongs are not sent', async t => {
  const server = await startServer(t, { pingIntervalMs: 1000, silenceTimeoutMs: 150 })
  const ws = new WebSocket(`${server.wsUrl}/glasses-ws`, { autoPong: false, headers: { authorization: `Bearer ${glassesToken('talker@example.com')}` } })
  const client = new Client(ws)
  t.teardown(() => ws.terminate())
  await client.next('connection_ack')
  for (let i = 0; i < 8; i++) {
    client.send({ type: 'pong' })
    await delay(50)
  }
  t.equal(client.closeCode, null, 'alive after 400 ms of a 150 ms silence timeout')
  t.equal(client.count('pong'), 0, 'a pong from the client gets no answer')
})

t.test('admin DELETE closes the socket 4002 and a new connection starts fresh', async t => {
  const server = await startServer(t)
  const { client, ack } = await connectAcked(t, server, 'deleted@example.com')
  const res = await admin(server, 'DELETE', '/sessions/deleted@example.com')
  t.equal(res.statusCode, 204)
  t.equal(await client.waitClosed(), 4002)
  t.equal(server.app.sessions.size, 0)
  const { ack: fresh } = await connectAcked(t, server, 'deleted@example.com')
  t.not(fresh.sessionInstanceId, ack.sessionInstanceId)
})

t.test('the 101 and the ack leave the server in one write', async t => {
  const server = await startServer(t)
  // Count the writes the server makes on the upgraded TCP socket (node's one call per write or writev).
  let writes = 0
  server.app.server.once('upgrade', (_request, socket: Socket & { _writeGeneric: (...args: unknown[]) => unknown }) => {
    const write = socket._writeGeneric
    socket._writeGeneric = function (this: Socket, ...args: unknown[]) {
      writes += 1
      return write.apply(this, args)
    }
  })
  const client = new Client(new WebSocket(`${server.wsUrl}/glasses-ws`, { headers: { authorization: `Bearer ${glassesToken('onewrite@example.com')}` } }))
  t.teardown(() => client.ws.terminate())
  await client.next('connection_ack')
  t.equal(writes, 1, 'one write carried both')
})
