/** PROTOCOL 3, first cut: admin auth, list, detail, delete, health and readiness. */
import t from 'tap'
import { admin, adminToken, connectAcked, eventually, glassesToken, sign, startServer } from '../helper.js'

t.test('admin auth: 401 without or with a bad token, 403 for a non-admin', async t => {
  const server = await startServer(t)
  const none = await server.app.inject({ method: 'GET', url: '/sessions' })
  t.equal(none.statusCode, 401)
  t.match(none.json(), { statusCode: 401, error: 'Unauthorized', message: String })
  t.equal((await admin(server, 'GET', '/sessions', 'garbage')).statusCode, 401)
  t.equal((await admin(server, 'GET', '/sessions', sign({ email: 'admin@test.example', sub: 'a' }, { algorithm: 'HS512' }))).statusCode, 401)
  const glasses = await admin(server, 'GET', '/sessions', glassesToken('user@example.com'))
  t.equal(glasses.statusCode, 403)
  t.match(glasses.json(), { statusCode: 403, error: 'Forbidden' })
  t.equal((await admin(server, 'DELETE', '/sessions/user@example.com', glassesToken('user@example.com'))).statusCode, 403)
  t.equal((await admin(server, 'GET', '/sessions/user@example.com', 'garbage')).statusCode, 401)
})

t.test('GET /sessions lists summaries with counts and a state filter', async t => {
  const server = await startServer(t, { gracePeriodMs: 10_000 })
  await connectAcked(t, server, 'one@example.com')
  const { client: two } = await connectAcked(t, server, 'two@example.com')
  two.terminate()
  await eventually(() => server.app.sessions.counts().grace === 1, 'grace')
  const all = (await admin(server, 'GET', '/sessions')).json()
  t.same(all.counts, { active: 1, grace: 1, total: 2 })
  t.equal(all.nextCursor, null)
  t.same(all.sessions.map((s: { userId: string }) => s.userId), ['one@example.com', 'two@example.com'])
  const summary = all.sessions[0]
  t.same(Object.keys(summary).sort(), ['activeApps', 'connectedAt', 'connectedMs', 'data', 'disconnectedAt',
    'graceExpiresAt', 'nodeId', 'reconnections', 'sessionInstanceId', 'startedAt', 'state', 'userId'])
  t.match(summary, { state: 'active', nodeId: 'test-node', reconnections: 0, activeApps: [], disconnectedAt: null, graceExpiresAt: null })
  t.same(Object.keys(summary.data).sort(), ['audioBytes', 'audioChunks', 'messagesIn', 'messagesOut', 'transcripts'])
  const grace = (await admin(server, 'GET', '/sessions?state=grace')).json()
  t.same(grace.sessions.map((s: { userId: string }) => s.userId), ['two@example.com'])
  t.type(grace.sessions[0].graceExpiresAt, 'string')
  t.type(grace.sessions[0].disconnectedAt, 'string')
  t.equal((await admin(server, 'GET', '/sessions?state=disposed')).statusCode, 400)
  t.equal((await admin(server, 'GET', '/sessions?limit=0')).statusCode, 400)
  t.equal((await admin(server, 'GET', '/sessions?limit=1001')).statusCode, 400)
  t.equal((await admin(server, 'GET', '/sessions?cursor=bogus')).statusCode, 400)
})

t.test('paging with a cursor neither skips nor repeats sessions that live through it', async t => {
  const server = await startServer(t)
  for (let i = 0; i < 7; i++) await connectAcked(t, server, `page${i}@example.com`)
  const seen: string[] = []
  let cursor: string | null = null
  let pages = 0
  do {
    const url: string = `/sessions?limit=3${cursor === null ? '' : `&cursor=${cursor}`}`
    const page = (await admin(server, 'GET', url)).json()
    seen.push(...page.sessions.map((s: { userId: string }) => s.userId))
    cursor = page.nextCursor
    pages += 1
    // Churn between pages: a newcomer appears and an early session ends.
    if (pages === 1) {
      await connectAcked(t, server, 'newcomer@example.com')
      await server.app.sessions.dispose('page0@example.com', 'manual')
    }
  } while (cursor !== null)
  t.equal(pages, 3)
  const survivors = Array.from({ length: 7 }, (_, i) => `page${i}@example.com`).slice(1)
  for (const user of survivors) t.equal(seen.filter(u => u === user).length, 1, `${user} exactly once`)
  t.ok(seen.includes('newcomer@example.com'), 'the newcomer appears at the end')
})

t.test('GET /sessions/:userId gives the summary, manager snapshots and recent events', async t => {
  const server = await startServer(t)
  const { client } = await connectAcked(t, server, 'detail@example.com')
  client.send({ type: 'local_transcription', text: 'hi', isFinal: true })
  client.ws.send(Buffer.alloc(100))
  client.send({ type: 'ping' })
  await client.next('pong')
  const res = await admin(server, 'GET', '/sessions/Detail@Example.com')
  t.equal(res.statusCode, 200)
  const detail = res.json()
  t.equal(detail.userId, 'detail@example.com')
  t.match(detail.data, { transcripts: 1, audioBytes: 100, audioChunks: 1, messagesIn: 2, messagesOut: 3 })
  // Out: the ack, "microphone off" for the audio no app wanted, the pong.
  t.equal(client.count('microphone_state_change'), 1)
  t.same(Object.keys(detail.managers).sort(), [
    'apps', 'audio', 'device', 'display', 'heartbeat', 'metrics', 'microphone', 'phone', 'subscriptions', 'token', 'transcripts'
  ])
  t.match(detail.managers.heartbeat, { pingIntervalMs: 25000, silenceTimeoutMs: 75000, watched: true })
  t.same(detail.events.map((e: { event: string }) => e.event), ['session.created', 'session.attached'])
  t.equal((await admin(server, 'GET', '/sessions/nobody@example.com')).statusCode, 404)
  t.equal((await admin(server, 'DELETE', '/sessions/nobody@example.com')).statusCode, 404)
})

t.test('the userId path parameter is validated', async t => {
  const server = await startServer(t)
  const long = await admin(server, 'GET', `/sessions/${'a'.repeat(300)}`)
  t.equal(long.statusCode, 400)
  const script = await admin(server, 'GET', '/sessions/%3Cscript%3E')
  t.equal(script.statusCode, 400)
  t.notOk(script.body.includes('<script>'), 'not echoed')
  // Past the router's limit, and on no route at all: answered without the path.
  const tooLong = await admin(server, 'GET', `/sessions/${'<i>bold'.repeat(400)}`)
  t.equal(tooLong.statusCode, 414)
  t.same(tooLong.json(), { statusCode: 414, error: 'URI Too Long', message: 'malformed or too long URL' })
  const nowhere = await admin(server, 'GET', `/sessions/${'<b>bold</b>'.repeat(250)}`)
  t.equal(nowhere.statusCode, 404)
  t.notOk(nowhere.body.includes('bold') || nowhere.body.includes('%3Cb'), 'the path is not echoed')
})

t.test('event log is bounded to the 50 most recent events', async t => {
  // 29 takeovers in a row: no cool-down here (it has its own test in test/e2e/phone.test.ts).
  const server = await startServer(t, { takeoverLimit: 100 })
  for (let i = 0; i < 30; i++) await connectAcked(t, server, 'flappy@example.com')
  const detail = (await admin(server, 'GET', '/sessions/flappy@example.com')).json()
  t.equal(detail.events.length, 50)
  t.equal(detail.reconnections, 29)
  t.equal(detail.events.at(-1).event, 'session.attached')
})

t.test('/health and /ready are open', async t => {
  const server = await startServer(t)
  t.same((await server.app.inject('/health')).json(), { status: 'ok' })
  const ready = await server.app.inject('/ready')
  t.equal(ready.statusCode, 200)
  t.same(ready.json(), { status: 'ready' })
  const metrics = await server.app.inject('/metrics')
  t.equal(metrics.statusCode, 200)
  t.match(metrics.body, /tether_sessions\{state="active"\} 0/)
})

t.test('paging over 250 sessions with churn between pages', async t => {
  const server = await startServer(t)
  const clients = new Map<string, { terminate: () => void }>()
  for (let batch = 0; batch < 25; batch++) {
    const opened = await Promise.all(Array.from({ length: 10 }, async (_, i) =>
      await connectAcked(t, server, `bulk${batch * 10 + i}@example.com`)))
    opened.forEach((o, i) => clients.set(`bulk${batch * 10 + i}@example.com`, o.client))
  }
  t.equal(server.app.sessions.counts().total, 250)
  const seen = new Map<string, number>()
  const ended = new Set<string>()
  let cursor: string | null = null
  let pages = 0
  do {
    const url: string = `/sessions?limit=40${cursor === null ? '' : `&cursor=${cursor}`}`
    const page = (await admin(server, 'GET', url)).json()
    t.equal(page.counts.total, server.app.sessions.counts().total, 'counts cover the whole node')
    for (const s of page.sessions as Array<{ userId: string }>) seen.set(s.userId, (seen.get(s.userId) ?? 0) + 1)
    cursor = page.nextCursor
    pages += 1
    // Churn: end two sessions ahead of the cursor and one behind it, drop one to grace, add two newcomers.
    const ahead = [`bulk${pages * 40 + 5}@example.com`, `bulk${pages * 40 + 6}@example.com`]
    for (const user of [...ahead, `bulk${pages * 40 - 3}@example.com`]) {
      if (await server.app.sessions.dispose(user, 'manual')) ended.add(user)
    }
    clients.get(`bulk${pages * 40 + 10}@example.com`)?.terminate()
    await connectAcked(t, server, `late${pages}a@example.com`)
    await connectAcked(t, server, `late${pages}b@example.com`)
  } while (cursor !== null)
  for (let i = 0; i < 250; i++) {
    const user = `bulk${i}@example.com`
    if (ended.has(user)) continue
    t.equal(seen.get(user), 1, `${user} listed exactly once`)
  }
  t.notOk([...seen.values()].some(n => n > 1), 'no session listed twice')
})

t.test('admin tokens never reach the logs', async t => {
  const server = await startServer(t, { logLevel: 'trace' })
  const token = adminToken()
  const bad = `${token}x`
  t.equal((await admin(server, 'GET', '/sessions', token)).statusCode, 200)
  t.equal((await admin(server, 'GET', '/sessions', bad)).statusCode, 401)
  const raw = server.rawLogs()
  t.ok(raw.includes('"url":"/sessions"'), 'requests are logged')
  t.notOk(raw.includes(token.split('.')[2] ?? 'unreachable'), 'no token signature in the logs')
})
