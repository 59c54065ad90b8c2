/**
 * Cluster mode on one real redis-server: the behaviours every cluster keeps
 * (test/cluster-behaviours.ts), then what only one server lets a test do to
 * Redis: stop it, pause it, start nodes without it.
 */
import t from 'tap'
import { admin, connectAcked, delay, glassesToken, refusedUpgrade, eventually } from '../helper.js'
import { LEASE, STEADY, node, owners } from '../cluster-nodes.js'
import { clusterBehaviours } from '../cluster-behaviours.js'
import { RedisServer } from '../redis-server.js'

clusterBehaviours(t, async t => await RedisServer.start(t))

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
  const b = await node(t, redis, 'node-b', { ...STEADY, countersWriteMs: 300 })
  const { client } = await connectAcked(t, b, 'held@example.com')
  // A stand-in node that fails every request, named as the lease's owner (B keeps the real session).
  const broken = `node-broken-${redis.tag}`
  const subscriber = redis.client(t)
  const publisher = redis.client(t)
  subscriber.on('message', (_channel: string, text: string) => {
    const request = JSON.parse(text) as { id: string, from: string }
    void publisher.publish(`tether:rpc:${request.from}`, JSON.stringify({ id: request.id, from: broken, error: 'broken on purpose' }))
  })
  await subscriber.subscribe(`tether:rpc:${broken}`)
  // Alive as far as Redis tells: its liveness key holds the incarnation the record names.
  await publisher.set(`tether:{nodes}:node:${broken}`, 'broken-incarnation|{}', 'PX', 60_000)
  await publisher.hset('tether:{u:held@example.com}:own', 'nodeId', broken, 'inc', 'broken-incarnation')

  const refused = await refusedUpgrade(a, { authorization: `Bearer ${glassesToken('held@example.com')}` })
  t.same([refused.status, refused.body.code], [503, 'SESSION_MOVING'], 'a connect is told to retry')
  const detail = await admin(a, 'GET', '/sessions/held@example.com')
  t.equal(detail.statusCode, 200, 'detail falls back to the last summary written')
  t.same(detail.json().managers, {}, 'without live manager state')
  t.equal((await fetch(`${a.httpUrl}/ready`)).status, 200, 'another node\'s failure does not make this one unready')
  t.equal((await admin(a, 'DELETE', '/sessions/held@example.com')).statusCode, 204, 'delete revokes the lease instead')
  // The real holder learns at its next write (idle sessions write nothing): a transcript moves its counters.
  client.send({ type: 'local_transcription', text: 'still here', isFinal: true })
  t.equal(await client.waitClosed(5000), 4002, 'and the real holder ends the session at its next write')
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
  await eventually(async () => await check.hget('tether:{u:steady@example.com}:own', 'nodeId') === a.config.nodeId, 'the lease was reconciled', 5000)
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
