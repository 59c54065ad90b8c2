/**
 * Cluster mode on a real redis-server: nodes as apps in this process (distinct
 * NODE_IDs) and, where a node must die or sleep, as child processes.
 */
import t from 'tap'
import { admin, connectAcked, delay, eventually, glassesToken, refusedUpgrade, type Server } from '../helper.js'
import { LEASE, STEADY, connectTo, node, nodeProcess, owners, tryConnect } from '../cluster-nodes.js'
import { RedisServer } from '../redis-server.js'
import { startSdkApp, writeCatalogue } from '../sdk-app.js'

t.test('concurrent connects of one user to two nodes end with one session, like two on one node', async t => {
  const redis = await RedisServer.start(t)
  const a = await node(t, redis, 'node-a', STEADY)
  const b = await node(t, redis, 'node-b', STEADY)
  const token = glassesToken('twice@example.com')
  const outcomes = await Promise.all([a, b, a, b].map(async n => await tryConnect(t, n, token)))
  const clients = outcomes.flatMap(o => 'client' in o ? [o.client] : [])
  const refused = outcomes.flatMap(o => 'status' in o ? [o.status] : [])
  t.ok(refused.every(status => status === 503), `a connect that loses the race is told to retry (503 SESSION_MOVING): ${refused.join(',')}`)
  await eventually(() => clients.filter(c => c.closeCode === null).length === 1, 'one socket left open', 8000)
  await eventually(() => owners([a, b], 'twice@example.com').length === 1, 'one session cluster-wide', 3000)
  const acked = clients.filter(c => c.count('connection_ack') >= 1)
  t.ok(acked.length >= 1, 'acked')
  const ids = acked.map(c => c.messages.filter(m => m.type === 'connection_ack').map(m => `${String(m.sessionInstanceId).slice(0, 8)}/${String(m.reconnection)}`).join('+') + `@${String(c.closeCode)}`)
  t.equal(new Set(acked.map(c => c.messages.find(m => m.type === 'connection_ack')?.sessionInstanceId)).size, 1, `one sessionInstanceId across nodes: ${ids.join(' ')}`)
  const codes = clients.filter(c => c.closeCode !== null).map(c => c.closeCode)
  t.ok(codes.every(code => code === 4001 || code === 1013), `the others were taken over (4001) or told to retry (1013): ${codes.join(',')}`)
})

t.test('handover keeps counters and apps; the SDK app switches clouds', async t => {
  const redis = await RedisServer.start(t)
  const sdk = await startSdkApp(t)
  const appsFile = writeCatalogue(t.testdir(), [sdk])
  const a = await node(t, redis, 'node-a', { appsFile, ...STEADY })
  const b = await node(t, redis, 'node-b', { appsFile, ...STEADY })
  const { client: onA, ack } = await connectAcked(t, a, 'mover@example.com')
  onA.send({ type: 'start_app', packageName: sdk.packageName })
  await eventually(() => a.app.sessions.get('mover@example.com')?.view().appSubscriptions[sdk.packageName]?.length === 4, 'app running on A', 5000)
  onA.send({ type: 'button_press', buttonId: 'on-a', pressType: 'short' })
  onA.ws.send(Buffer.alloc(320))
  await eventually(() => sdk.app.of('button_press').length === 1, 'press on A')
  const before = a.app.sessions.get('mover@example.com')?.metrics.counts()

  const { client: onB, ack: ackB } = await connectAcked(t, b, 'mover@example.com')
  t.equal(await onA.waitClosed(), 4001, 'A closed its glasses socket 4001')
  t.equal(ackB.reconnection, true)
  t.equal(ackB.sessionInstanceId, ack.sessionInstanceId, 'same session instance')
  const moved = b.app.sessions.get('mover@example.com')
  t.equal(moved?.reconnections, 1)
  t.ok((moved?.metrics.counts().messagesIn ?? 0) >= (before?.messagesIn ?? 1), 'counters preserved')
  t.equal(moved?.metrics.counts().audioBytes, 320)
  t.equal(a.app.sessions.get('mover@example.com'), undefined, 'A dropped its copy')

  await eventually(() => b.app.sessions.get('mover@example.com')?.view().appSubscriptions[sdk.packageName]?.length === 4, 'the app connected to B and subscribed', 8000)
  t.equal(sdk.app.stops.length, 0, 'the app was never told the session ended')
  onB.send({ type: 'button_press', buttonId: 'on-b', pressType: 'short' })
  await eventually(() => sdk.app.of('button_press').some(r => (r.data as { buttonId: string }).buttonId === 'on-b'), 'press on B reaches the app', 5000)
  const metricsA = await (await fetch(`${a.httpUrl}/metrics`)).text()
  t.match(metricsA, /tether_sessions_disposed_total\{reason="handover"\} 1/)
})

t.test('admin from any node: list, detail and delete across nodes; /nodes lists both', async t => {
  const redis = await RedisServer.start(t)
  const a = await node(t, redis, 'node-a', STEADY)
  const b = await node(t, redis, 'node-b', STEADY)
  await connectAcked(t, a, 'on-a@example.com')
  const { client: onB } = await connectAcked(t, b, 'on-b@example.com')
  await eventually(async () => (await admin(a, 'GET', '/sessions')).json().counts.total === 2, 'both listed from A', 3000)
  const list = (await admin(a, 'GET', '/sessions?limit=1')).json()
  t.equal(list.sessions.length, 1)
  t.type(list.nextCursor, 'string')
  const rest = (await admin(a, 'GET', `/sessions?limit=1&cursor=${list.nextCursor as string}`)).json()
  t.same([list.sessions[0].userId, rest.sessions[0].userId].sort(), ['on-a@example.com', 'on-b@example.com'], 'paged across nodes, each once')
  t.equal(rest.nextCursor, null)
  t.same(new Set([list.sessions[0].nodeId, rest.sessions[0].nodeId]), new Set([a.config.nodeId, b.config.nodeId]), 'nodeId in every summary')

  const detail = await admin(a, 'GET', '/sessions/on-b@example.com')
  t.equal(detail.statusCode, 200)
  t.equal(detail.json().nodeId, b.config.nodeId)
  t.ok(detail.json().managers.heartbeat !== undefined, 'live detail from the owner')

  const nodes = (await admin(b, 'GET', '/nodes')).json().nodes as Array<{ nodeId: string }>
  t.same(nodes.map(n => n.nodeId).sort(), [a.config.nodeId, b.config.nodeId].sort())

  t.equal((await admin(a, 'DELETE', '/sessions/on-b@example.com')).statusCode, 204)
  t.equal(await onB.waitClosed(), 4002, 'the owner closed it 4002')
  t.equal((await admin(a, 'DELETE', '/sessions/on-b@example.com')).statusCode, 404)
})

t.test('a node listens for other nodes at start and again after its subscriber connection drops', async t => {
  const redis = await RedisServer.start(t)
  const a = await node(t, redis, 'node-a', STEADY)
  const b = await node(t, redis, 'node-b', STEADY)
  const check = redis.client(t)
  const listeners = async (): Promise<unknown[]> => await check.pubsub('NUMSUB', `tether:rpc:${a.config.nodeId}`, `tether:rpc:${b.config.nodeId}`) as unknown[]
  t.same(await listeners(), [`tether:rpc:${a.config.nodeId}`, 1, `tether:rpc:${b.config.nodeId}`, 1], 'both subscribed once started')
  await connectAcked(t, b, 'listened@example.com')
  t.ok(Number(await check.client('KILL', 'TYPE', 'pubsub')) >= 2, 'subscriber connections cut')
  await eventually(async () => JSON.stringify(await listeners()) === JSON.stringify([`tether:rpc:${a.config.nodeId}`, 1, `tether:rpc:${b.config.nodeId}`, 1]), 'subscribed again', 5000)
  const detail = await admin(a, 'GET', '/sessions/listened@example.com')
  t.equal(detail.statusCode, 200)
  t.ok(detail.json().managers.heartbeat !== undefined, 'B answers A again: live detail, not the last written summary')
})

t.test('a node that answers with an error of its own: clean answers, and the asking node stays ready', async t => {
  const redis = await RedisServer.start(t)
  const a = await node(t, redis, 'node-a', STEADY)
  const b = await node(t, redis, 'node-b', STEADY)
  const { client } = await connectAcked(t, b, 'held@example.com')
  // A stand-in node that fails every request, named as the lease's owner (B keeps the real session).
  const broken = `node-broken-${redis.port}`
  const subscriber = redis.client(t)
  const publisher = redis.client(t)
  subscriber.on('message', (_channel: string, text: string) => {
    const request = JSON.parse(text) as { id: string, from: string }
    void publisher.publish(`tether:rpc:${request.from}`, JSON.stringify({ id: request.id, from: broken, error: 'broken on purpose' }))
  })
  await subscriber.subscribe(`tether:rpc:${broken}`)
  await publisher.hset('tether:lease:held@example.com', 'nodeId', broken)

  const refused = await refusedUpgrade(a, { authorization: `Bearer ${glassesToken('held@example.com')}` })
  t.same([refused.status, refused.body.code], [503, 'SESSION_MOVING'], 'a connect is told to retry')
  const detail = await admin(a, 'GET', '/sessions/held@example.com')
  t.equal(detail.statusCode, 200, 'detail falls back to the last summary written')
  t.same(detail.json().managers, {}, 'without live manager state')
  t.equal((await fetch(`${a.httpUrl}/ready`)).status, 200, 'another node\'s failure does not make this one unready')
  t.equal((await admin(a, 'DELETE', '/sessions/held@example.com')).statusCode, 204, 'delete revokes the lease instead')
  t.equal(await client.waitClosed(5000), 4002, 'and the real holder ends the session at its next refresh')
})

t.test('Redis away: sessions keep working, new claims fail closed, /ready says so; all recovers', async t => {
  const redis = await RedisServer.start(t)
  const a = await node(t, redis, 'node-a')
  const { client } = await connectAcked(t, a, 'steady@example.com')
  await redis.stop()
  await eventually(async () => (await fetch(`${a.httpUrl}/ready`)).status === 503, '/ready 503', 5000)
  client.send({ type: 'ping' })
  await client.next('pong')
  const refused = await refusedUpgrade(a, { authorization: `Bearer ${glassesToken('newcomer@example.com')}` })
  t.equal(refused.status, 503)
  t.equal(refused.body.code, 'DIRECTORY_UNAVAILABLE')
  const list = await admin(a, 'GET', '/sessions')
  t.equal(list.statusCode, 503, 'the cluster-wide list answers 503 while Redis is away')
  t.match(list.json(), { statusCode: 503, message: 'the session directory is unreachable: retry shortly' })
  t.notMatch(list.body, /ECONNREFUSED|Connection|ioredis/i, 'Redis\'s own error is not leaked')
  const metrics = await (await fetch(`${a.httpUrl}/metrics`)).text()
  t.match(metrics, /tether_directory_operations_total\{operation="claim",outcome="ok"\} 1\n/, 'the claim of the first user, counted')
  t.match(metrics, /tether_directory_operations_total\{operation="claim",outcome="error"\} [1-9]/, 'the refused claim, counted as an error')
  t.match(metrics, /tether_directory_operation_seconds_count\{operation="claim"\} [2-9]/, 'and timed')
  await redis.start()
  await eventually(async () => (await fetch(`${a.httpUrl}/ready`)).status === 200, '/ready 200 again', 10_000)
  await connectAcked(t, a, 'newcomer@example.com')
  const check = redis.client(t)
  await eventually(async () => await check.hget('tether:lease:steady@example.com', 'nodeId') === a.config.nodeId, 'the lease was reconciled', 5000)
  t.equal(client.closeCode, null, 'the held session never dropped')
})

t.test('Redis paused beyond the lease TTL: no user ends up with two sessions', async t => {
  const redis = await RedisServer.start(t)
  const a = await node(t, redis, 'node-a')
  const b = await node(t, redis, 'node-b')
  const { client } = await connectAcked(t, a, 'paused@example.com')
  const control = redis.client(t)
  await control.call('CLIENT', 'PAUSE', String(LEASE * 3), 'ALL')
  const during = await refusedUpgrade(b, { authorization: `Bearer ${glassesToken('paused@example.com')}` }).catch(() => ({ status: 0, body: {} }))
  t.equal(during.status, 503, 'a claim while Redis is paused fails closed')
  await delay(LEASE * 3)
  await eventually(async () => (await fetch(`${b.httpUrl}/ready`)).status === 200, 'recovered', 10_000)
  await delay(LEASE)
  t.equal(owners([a, b], 'paused@example.com').length, 1, 'still one session')
  client.send({ type: 'ping' })
  await client.next('pong')
})

/** A Tether node as a child process, so it can be killed or frozen. */
t.test('kill -9 of a node: its users are claimable after the lease TTL and not before, resuming its last state', async t => {
  const redis = await RedisServer.start(t)
  const doomed = await nodeProcess(t, redis, 'node-doomed')
  const a = await node(t, redis, 'node-a')
  const { client, ack } = await connectTo(t, doomed.url, 'orphan@example.com')
  client.send({ type: 'local_transcription', text: 'remember me', isFinal: true })
  await delay(LEASE)
  doomed.child.kill('SIGKILL')
  const killedAt = Date.now()
  const early = await refusedUpgrade(a, { authorization: `Bearer ${glassesToken('orphan@example.com')}` })
  t.equal(early.status, 503, 'before the TTL: 503')
  t.equal(early.body.code, 'SESSION_MOVING')
  const resumed = await eventually(async () => {
    const outcome = await tryConnect(t, a, glassesToken('orphan@example.com'))
    if ('client' in outcome) return outcome.client
    t.equal(outcome.status, 503, 'refused with 503 until then')
    await delay(100)
    return undefined
  }, 'claimable after the TTL', 10_000)
  t.ok(Date.now() - killedAt >= LEASE * 0.5, 'not claimable at once')
  const ackA = resumed.messages.find(m => m.type === 'connection_ack')
  t.equal(ackA?.sessionInstanceId, ack.sessionInstanceId, 'resumed from the last state the dead node wrote')
  t.equal(ackA?.reconnection, true)
  t.equal(a.app.sessions.get('orphan@example.com')?.metrics.counts().transcripts, 1, 'counters as last refreshed')
})

t.test('fencing: a node frozen past its lease wakes up unable to write, and drops its copy', async t => {
  const redis = await RedisServer.start(t)
  const sleeper = await nodeProcess(t, redis, 'node-sleeper')
  const a = await node(t, redis, 'node-a')
  const { client: old } = await connectTo(t, sleeper.url, 'fenced@example.com')
  sleeper.child.kill('SIGSTOP')
  const { client: fresh } = await eventually(async () => {
    const outcome = await tryConnect(t, a, glassesToken('fenced@example.com'))
    if ('client' in outcome) return outcome
    await delay(100)
    return undefined
  }, 'claimed on A after the lease expired', 10_000)
  const check = redis.client(t)
  t.equal(await check.hget('tether:lease:fenced@example.com', 'nodeId'), a.config.nodeId)
  sleeper.child.kill('SIGCONT')
  const code = await old.waitClosed(15_000).catch(async (error: unknown) => { t.comment(sleeper.output()); throw error })
  t.equal(code, 4001, 'the woken node dropped its copy (4001)')
  await delay(LEASE)
  t.equal(await check.hget('tether:lease:fenced@example.com', 'nodeId'), a.config.nodeId, 'its stale writes were refused')
  fresh.send({ type: 'ping' })
  await fresh.next('pong')
  t.equal(fresh.closeCode, null)
})

t.test('a node shutting down releases its leases: its users are claimed elsewhere at once', async t => {
  const redis = await RedisServer.start(t)
  const leaving = await node(t, redis, 'node-leaving', { leaseTtlMs: 30_000 })
  const b = await node(t, redis, 'node-b', { leaseTtlMs: 30_000 })
  const { client } = await connectAcked(t, leaving, 'traveller@example.com')
  await leaving.app.close()
  t.equal(await client.waitClosed(), 1001, 'the glasses were told the node is going away')
  const check = redis.client(t)
  t.equal(await check.exists('tether:lease:traveller@example.com'), 0, 'no lease left behind')
  const { ack } = await connectAcked(t, b, 'traveller@example.com')
  t.equal(ack.type, 'connection_ack', 'claimed on another node without waiting for a 30 s lease to expire')
  const nodes = (await admin(b, 'GET', '/nodes')).json().nodes as Array<{ nodeId: string }>
  t.notOk(nodes.some(n => n.nodeId === leaving.config.nodeId), `the node retired from the cluster view (${nodes.map(n => n.nodeId).join(',')})`)
})

t.test('a node started while Redis is away listens, reports not ready, and joins when Redis comes', async t => {
  const redis = await RedisServer.start(t)
  await redis.stop()
  const a = await node(t, redis, 'node-early')
  t.equal((await fetch(`${a.httpUrl}/ready`)).status, 503, 'not ready without Redis')
  t.equal((await fetch(`${a.httpUrl}/health`)).status, 200, 'but alive')
  await redis.start()
  await eventually(async () => (await fetch(`${a.httpUrl}/ready`)).status === 200, 'ready once Redis answers', 10_000)
  await connectAcked(t, a, 'late-riser@example.com')
})

t.test('an admin ending a session of a silent owner: the owner, waking, drops it rather than claiming it back', async t => {
  const redis = await RedisServer.start(t)
  const sleeper = await nodeProcess(t, redis, 'node-sleeper')
  const a = await node(t, redis, 'node-a')
  const { client } = await connectTo(t, sleeper.url, 'ended@example.com')
  await delay(LEASE / 2)
  sleeper.child.kill('SIGSTOP')
  t.equal((await admin(a, 'DELETE', '/sessions/ended@example.com')).statusCode, 204, 'revoked although the owner is silent')
  const metrics = await (await fetch(`${a.httpUrl}/metrics`)).text()
  t.match(metrics, /tether_directory_operations_total\{operation="delete",outcome="timeout"\} 1\n/, 'the unanswered request counted as a timeout')
  t.match(metrics, /tether_directory_operations_total\{operation="revoke",outcome="ok"\} 1\n/)
  sleeper.child.kill('SIGCONT')
  // Woken, it either handles the delete request that waited for it or finds its lease revoked: an admin end either way.
  t.equal(await client.waitClosed(5000), 4002, 'the woken owner ended the session as an admin delete')
  await delay(LEASE)
  const check = redis.client(t)
  t.not(await check.hget('tether:lease:ended@example.com', 'nodeId'), `node-sleeper-${redis.port}`, 'and did not claim it back')
})
