/**
 * Real phones end to end, reconnects: two devices of one user that would fight
 * forever, and an admin's block, both with the phone's reconnect-after-anything.
 */
import t from 'tap'
import { admin, delay, eventually } from '../helper.js'
import { phone, world } from '../phone-world.js'

t.test('two devices of one user settle: the holder keeps the session, the other is refused 409 SESSION_IN_USE', async t => {
  const { server } = await world(t, [], { takeoverLimit: 3, takeoverWindowMs: 30_000, takeoverCooldownMs: 60_000 })
  const a = await phone(t, server, 'twins@example.com')
  const b = await phone(t, server, 'twins@example.com')
  const replaced = (): number => server.app.sessions.get('twins@example.com')?.recentEvents().filter(e => e.event === 'session.replaced').length ?? 0
  await eventually(() => [a, b].some(p => p.refusals.some(r => r.status === 409)), 'one device refused', 10_000)
  const settled = replaced()
  t.equal(settled, 3, 'settled at the third takeover')
  await delay(2000)
  t.equal(replaced(), settled, 'no takeover since')
  const refused = [a, b].find(p => p.refusals.length > 0)
  t.match(refused?.refusals.at(-1), { status: 409, body: { code: 'SESSION_IN_USE' } })
  t.ok((refused?.refusals.length ?? 0) >= 3, 'it keeps retrying every interval, and keeps being refused')
  const holder = [a, b].find(p => p !== refused)
  t.ok(holder?.isOpen, 'the holder stays connected')
  const events = server.app.sessions.get('twins@example.com')?.recentEvents() ?? []
  t.ok(events.some(e => e.event === 'session.contested'), 'visible in the session\'s events')
  const metrics = await (await fetch(`${server.httpUrl}/metrics`)).text()
  t.match(metrics, /tether_takeover_cooldowns_total 1/)
  t.match(metrics, /tether_takeovers_refused_total [1-9]/)
})

t.test('an admin block: the session ends, the phone is refused 403 for the block, and comes back after it', async t => {
  const { server } = await world(t, [])
  const p = await phone(t, server, 'blocked@example.com')
  t.equal((await admin(server, 'DELETE', '/sessions/blocked@example.com?blockSeconds=2')).statusCode, 204)
  await eventually(() => p.closes.some(c => c.code === 4002), 'closed by the admin')
  await eventually(() => p.refusals.some(r => r.status === 403), 'refused while blocked', 3000)
  t.match(p.refusals[0], { status: 403, body: { code: 'USER_BLOCKED' } })
  t.match(await p.request('GET', '/api/client/apps'), { status: 403, body: { error: 'USER_BLOCKED' } })
  t.equal(server.app.sessions.get('blocked@example.com'), undefined, 'no session while blocked')
  await p.waitForAcks(2, 6000)
  t.ok(server.app.sessions.get('blocked@example.com')?.isLive, 'back after the block')
  t.equal((await admin(server, 'DELETE', '/sessions/nobody@example.com')).statusCode, 404, 'a plain DELETE keeps its meaning')
  t.equal((await admin(server, 'DELETE', '/sessions/nobody@example.com?blockSeconds=60')).statusCode, 204, 'a user with no session can be blocked')
})
