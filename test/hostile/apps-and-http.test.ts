/** Hostile apps and hostile HTTP (issue 5): documented answers, the bystander unaffected. */
import t from 'tap'
import WebSocket from 'ws'
import { admin, connectAcked, eventually, glassesToken } from '../helper.js'
import { connectApp } from '../raw-app.js'
import { hostileWorld } from './harness.js'

t.test('hostile apps', async t => {
  const w = await hostileWorld(t, { maxMessageBytes: 64 * 1024 })
  const { client: victim } = await connectAcked(t, w.server, 'victim@example.com')
  const { client: app, sessionId } = await w.startApp(victim, 'victim@example.com')

  const wrongKey = await connectApp(t, w.server, { sessionId, packageName: w.app.packageName, apiKey: 'guess' })
  t.equal((await wrongKey.next('tpa_connection_error')).code, 'INVALID_API_KEY', 'init with a wrong key')
  t.equal(await wrongKey.waitClosed(), 1008)
  await w.checkBystander(t, 'init with a wrong key')

  const bystanderSession = [...w.server.app.apps.slots].find(([, slot]) => slot.packageName === w.other.packageName)?.[0]
  const intruder = await connectApp(t, w.server, { sessionId: bystanderSession, packageName: w.app.packageName, apiKey: w.app.apiKey })
  t.equal((await intruder.next('tpa_connection_error')).code, 'APP_NOT_STARTED', 'init for another user\'s session, where this app is not started')
  t.equal(await intruder.waitClosed(), 1008)
  await w.checkBystander(t, 'init for another user\'s session')

  const from = app.messages.length
  app.send({ type: 'tpa_connection_init', sessionId, packageName: w.app.packageName, apiKey: w.app.apiKey })
  t.equal((await app.next('error', 2000, from)).code, 'INVALID_MESSAGE', 'init twice on one socket')
  await w.checkBystander(t, 'init twice')

  app.send({ type: 'subscription_update', subscriptions: ['no_such_stream', 'transcription:xx-XX', 'button_press'] })
  await eventually(() => w.server.app.sessions.get('victim@example.com')?.view().appSubscriptions[w.app.packageName]?.length === 3, 'unknown streams accepted')
  victim.send({ type: 'button_press', buttonId: 'v', pressType: 'short' })
  await app.next('data_stream')
  t.equal(app.count('error'), 1, 'subscribing to unknown streams is not an error; they never match')
  await w.checkBystander(t, 'unknown streams')

  for (let i = 0; i < 5000; i++) app.send({ type: 'display_event', layout: { layoutType: 'text_wall', text: String(i) } })
  // Each view is throttled, keeping the latest: the flood ends as its last layout, in a few displays.
  const lastShown = (): unknown => (victim.messages.filter(m => m.type === 'display_event').at(-1)?.layout as { text?: string } | undefined)?.text
  await victim.until(() => lastShown() === '4999', 'display flood delivered', 20_000)
  t.ok(victim.count('display_event') < 100, 'throttled to what real glasses take')
  t.equal(w.bystander.glasses.count('display_event'), 0, 'a display flood reaches only its own user')
  await w.checkBystander(t, 'display flood')

  const silent = await connectApp(t, w.server, false)
  t.equal(await silent.waitClosed(2000), 1008, 'never sending an init: 1008')
  await w.checkBystander(t, 'never sending init')

  app.ws.send(Buffer.alloc(10))
  t.equal((await app.next('error', 2000, app.messages.length - 1)).code, 'INVALID_MESSAGE', 'binary from an app')
  app.send({ type: 'display_event', layout: { text: 'x'.repeat(100 * 1024) } })
  t.equal(await app.waitClosed(), 1009, 'oversized app frame: 1009')
  await w.checkBystander(t, 'oversized app frame')
  t.equal(victim.closeCode, null, 'the app\'s own user keeps their glasses connection')
})

t.test('hostile HTTP', async t => {
  const w = await hostileWorld(t)
  const glasses = glassesToken('nosy@example.com')
  for (const [method, url] of [['GET', '/sessions'], ['GET', '/sessions/bystander@example.com'], ['DELETE', '/sessions/bystander@example.com']] as const) {
    t.equal((await admin(w.server, method, url, glasses)).statusCode, 403, `${method} ${url} with a glasses token: 403`)
  }
  await w.checkBystander(t, 'admin with a glasses token')

  for (const path of ['/sessions/..%2F..%2Fetc%2Fpasswd', '/sessions/%2e%2e', '/sessions/a%00b', '/sessions/<img>']) {
    const res = await admin(w.server, 'GET', path)
    t.ok([400, 404].includes(res.statusCode), `${path}: ${res.statusCode}`)
    t.notMatch(res.body, /<img>|passwd/, `${path}: not echoed`)
  }
  t.equal(w.server.app.sessions.size, 1)
  await w.checkBystander(t, 'path traversal')

  const huge = await fetch(`${w.server.httpUrl}/sessions?cursor=${'a'.repeat(100_000)}`, { headers: { authorization: `Bearer ${glasses}` } }).catch(() => null)
  t.ok(huge === null || huge.status === 431 || huge.status === 414 || huge.status === 400, `a 100 KB query string is refused (${huge?.status ?? 'connection closed'})`)
  const longCursor = await admin(w.server, 'GET', `/sessions?cursor=${'a'.repeat(2000)}`)
  t.equal(longCursor.statusCode, 400, 'an over-long cursor: 400')
  await w.checkBystander(t, 'huge query strings')

  const status = await new Promise<number>(resolve => {
    const ws = new WebSocket(`${w.server.wsUrl}/metrics`)
    ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0))
    ws.on('open', () => { ws.terminate(); resolve(101) })
    ws.on('error', () => {})
  })
  t.equal(status, 404, 'an upgrade on a non-WebSocket route: 404')
  await w.checkBystander(t, 'upgrade on a non-WS route')
  t.equal((await w.server.app.inject('/health')).statusCode, 200)
})
