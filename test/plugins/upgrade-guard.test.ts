/** Upgrade limits (issue 5): per address before any token check, per user after it, and browser origins. */
import t from 'tap'
import { connectAcked, glassesToken, refusedUpgrade, startServer } from '../helper.js'

t.test('an address past UPGRADE_RATE_LIMIT refused upgrades in the window: 429 RATE_LIMITED for every upgrade from it', async t => {
  const server = await startServer(t, { upgradeRateLimit: 3, upgradeRateWindowMs: 60_000 })
  for (let i = 0; i < 2; i++) t.equal((await refusedUpgrade(server, {})).status, 401, 'no token: counted')
  t.equal((await refusedUpgrade(server, { authorization: 'Bearer garbage' })).status, 401, 'a bad token: counted')
  const limited = await refusedUpgrade(server, { authorization: `Bearer ${glassesToken('addr9@example.com')}` })
  t.equal(limited.status, 429, 'a good token from a spent address waits out the window')
  t.match(limited.body, { type: 'connection_error', code: 'RATE_LIMITED', message: String, timestamp: String })
  t.ok(Number(limited.headers['retry-after']) > 0, 'retry-after')
  const garbage = await refusedUpgrade(server, { authorization: 'Bearer garbage' })
  t.equal(garbage.status, 429, 'refused before the token is verified')
  const metrics = await (await fetch(`${server.httpUrl}/metrics`)).text()
  t.match(metrics, /tether_upgrade_rejections_total\{status="429",code="RATE_LIMITED"\} 2/)
  t.equal((await fetch(`${server.httpUrl}/health`)).status, 200, 'plain HTTP is not limited')
})

t.test('accepted upgrades never spend the address budget: a restart storm from one balancer address is served', async t => {
  const server = await startServer(t, { upgradeRateLimit: 2, upgradeRateWindowMs: 60_000 })
  const phones = await Promise.all(Array.from({ length: 30 }, async (_, i) => await connectAcked(t, server, `storm${i}@example.com`)))
  t.equal(phones.length, 30, 'thirty phones from 127.0.0.1 at once, all acked under a budget of 2')
  t.equal((await refusedUpgrade(server, {})).status, 401, 'a refusal still counts')
})

t.test('an app socket whose init is refused spends its address budget too', async t => {
  const server = await startServer(t, { upgradeRateLimit: 2, upgradeRateWindowMs: 60_000 })
  const { default: WebSocket } = await import('ws')
  for (let i = 0; i < 2; i++) {
    const ws = new WebSocket(`${server.wsUrl}/app-ws`)
    t.teardown(() => ws.terminate())
    await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject) })
    ws.send(JSON.stringify({ type: 'tpa_connection_init', packageName: 'com.nobody', sessionId: 'x', apiKey: 'wrong' }))
    await new Promise(resolve => ws.once('close', resolve))
  }
  t.equal((await refusedUpgrade(server, {}, '', '/app-ws')).status, 429, 'the third app upgrade from that address is refused')
})

t.test('a user flapping past USER_CONNECTS_PER_MINUTE gets 429; ten quick reconnects are fine', async t => {
  const server = await startServer(t, { userConnectsPerMinute: 12 })
  for (let i = 0; i < 10; i++) {
    const { client } = await connectAcked(t, server, 'flap@example.com')
    client.terminate()
  }
  await connectAcked(t, server, 'flap@example.com')
  await connectAcked(t, server, 'flap@example.com')
  const limited = await refusedUpgrade(server, { authorization: `Bearer ${glassesToken('flap@example.com')}` })
  t.equal(limited.status, 429)
  t.equal(limited.body.code, 'RATE_LIMITED')
  await connectAcked(t, server, 'other@example.com')
  t.pass('another user from the same address is still served')
})

t.test('ALLOWED_ORIGINS: listed origins and native clients pass, others get 403', async t => {
  const server = await startServer(t, { allowedOrigins: new Set(['https://app.example.com']) })
  const token = glassesToken('origin@example.com')
  const refused = await refusedUpgrade(server, { authorization: `Bearer ${token}`, origin: 'https://evil.example.net' })
  t.equal(refused.status, 403)
  t.equal(refused.body.code, 'ORIGIN_NOT_ALLOWED')
  await connectAcked(t, server, 'native@example.com')
  const { default: WebSocket } = await import('ws')
  const ws = new WebSocket(`${server.wsUrl}/glasses-ws`, { headers: { authorization: `Bearer ${token}` }, origin: 'https://APP.example.com/' })
  t.teardown(() => ws.terminate())
  await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject) })
  t.pass('an allowed origin connects (case and trailing slash ignored)')
})

t.test('TRUST_PROXY: behind a balancer each client address has its own budget', async t => {
  const server = await startServer(t, { upgradeRateLimit: 2, upgradeRateWindowMs: 60_000, trustProxy: true })
  const from = (ip: string) => ({ 'x-forwarded-for': ip })
  t.equal((await refusedUpgrade(server, from('203.0.113.1'))).status, 401)
  t.equal((await refusedUpgrade(server, from('203.0.113.1'))).status, 401)
  t.equal((await refusedUpgrade(server, from('203.0.113.1'))).status, 429, 'the third from one client is limited')
  t.equal((await refusedUpgrade(server, from('203.0.113.2'))).status, 401, 'another client behind the same balancer is not')
})
