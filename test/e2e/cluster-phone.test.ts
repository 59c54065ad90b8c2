/**
 * Cluster mode for real phones, on a real redis-server: REST calls reach the
 * session on its owner node, settings and blocks hold cluster-wide, and a loss
 * of Redis's data never leaves one user with two live sessions.
 */
import t from 'tap'
import { admin, delay, eventually, glassesToken, refusedUpgrade, connectAcked, type Client, type Server, type Teardown } from '../helper.js'
import { LEASE, STEADY, connectTo, node, nodeProcess, tryConnect } from '../cluster-nodes.js'
import { RedisServer } from '../redis-server.js'
import { startSdkApp, writeCatalogue } from '../sdk-app.js'

t.test('the phone\'s REST calls act on the node that owns the session; settings and blocks hold on every node', async t => {
  const redis = await RedisServer.start(t)
  const sdk = await startSdkApp(t)
  const appsFile = writeCatalogue(t.testdir(), [sdk])
  const a = await node(t, redis, 'node-a', { appsFile, ...STEADY })
  const b = await node(t, redis, 'node-b', { appsFile, ...STEADY })
  const token = glassesToken('rest@example.com')
  const call = async (server: Server, method: string, path: string, body?: unknown) => {
    const res = await fetch(`${server.httpUrl}${path}`, {
      method, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, ...(method === 'GET' ? {} : { body: JSON.stringify(body ?? {}) })
    })
    return { status: res.status, body: await res.json() as Record<string, unknown> }
  }
  const { client } = await connectAcked(t, a, 'rest@example.com')
  t.match(await call(b, 'POST', `/apps/${sdk.packageName}/start`), { status: 200, body: { data: { status: 'started', isRunning: true } } }, 'started through node B')
  t.same(a.app.sessions.get('rest@example.com')?.view().activeAppSessions, [sdk.packageName], 'on node A, where the session lives')
  t.equal(b.app.sessions.get('rest@example.com'), undefined, 'node B holds no copy')
  t.match(await call(b, 'POST', '/api/client/device/state', { modelName: 'G1', connected: true }),
    { status: 200, body: { appliedState: { isGlassesConnected: true, isPhoneConnected: true, modelName: 'G1' } } })
  const listed = await call(b, 'GET', '/api/client/apps')
  t.match(listed.body.data, [{ packageName: sdk.packageName, running: true }])
  t.match(await call(b, 'POST', '/api/client/location', { coords: { latitude: 1, longitude: 2 } }), { status: 200 })
  t.match(await call(b, 'POST', '/api/client/location', {}), { status: 400 }, 'the owner\'s refusal comes back as it is')

  await call(a, 'POST', '/api/client/user/settings', { settings: { time_zone: 'Asia/Tokyo' } })
  t.match(await call(b, 'GET', '/api/client/user/settings'), { body: { data: { settings: { time_zone: 'Asia/Tokyo' } } } }, 'settings are per user, cluster-wide')

  t.equal((await admin(b, 'DELETE', '/sessions/rest@example.com?blockSeconds=30')).statusCode, 204)
  t.equal(await client.waitClosed(3000), 4002, 'ended on its node')
  for (const server of [a, b]) {
    const refused = await refusedUpgrade(server, { authorization: `Bearer ${token}` })
    t.match(refused, { status: 403, body: { code: 'USER_BLOCKED' } }, 'refused on every node')
    t.match(await call(server, 'GET', '/api/client/apps'), { status: 403, body: { error: 'USER_BLOCKED' } })
  }
  t.match(await call(b, 'POST', '/api/client/device/state', {}), { status: 403 })
})

type OldOwnerAndB = { redis: RedisServer, old: Awaited<ReturnType<typeof nodeProcess>>, b: Server }

/**
 * An old owner in a process of its own (so it can sleep) and node B in this one. Leases longer than the tests'
 * usual 900 ms: on a loaded machine a stall of B's past its lease would rightly let the old owner take its users
 * back, which is not what these tests are about.
 */
async function oldOwnerAndB (t: Teardown): Promise<OldOwnerAndB> {
  const redis = await RedisServer.start(t)
  const old = await nodeProcess(t, redis, 'node-old', { LEASE_TTL_MS: String(STEADY.leaseTtlMs) })
  return { redis, old, b: await node(t, redis, 'node-b', STEADY) }
}

/** The old owner sleeps through the loss of Redis's data while its users come back through node B first. */
async function restartWhileAsleep (t: Teardown, { redis, old, b }: OldOwnerAndB, users: string[]): Promise<Client[]> {
  old.child.kill('SIGSTOP')
  await redis.stop()
  await redis.start()
  return await Promise.all(users.map(async user => await eventually(async () => {
    const outcome = await tryConnect(t, b, glassesToken(user))
    if ('client' in outcome) return outcome.client
    await delay(100)
    return undefined
  }, `${user} claimed on B`, 10_000)))
}

t.test('Redis restarted empty: a node that claims users before their old owner is back never shares them with it', async t => {
  const { redis, old, b } = await oldOwnerAndB(t)
  const users = Array.from({ length: 8 }, (_, i) => `lost${i}@example.com`)
  const onOld = await Promise.all(users.map(async user => (await connectTo(t, old.url, user)).client))
  const before = redis.client(t)
  const counter = (token: string | null): number => Number(token?.split(':')[0])
  const oldCounters = await Promise.all(users.map(async user => counter(await before.hget(`tether:{u:${user}}:own`, 'token'))))
  const onB = await restartWhileAsleep(t, { redis, old, b }, users)
  old.child.kill('SIGCONT')
  // Woken, the old owner refreshes with the tokens it had: they must not be taken for node B's.
  const codes = await Promise.all(onOld.map(async client => await client.waitClosed(15_000).catch(() => null)))
  t.same(codes, users.map(() => 4001), 'the old owner dropped every copy (4001)')
  await delay(2 * LEASE)
  const check = redis.client(t)
  for (const [i, user] of users.entries()) {
    t.equal(await check.hget(`tether:{u:${user}}:own`, 'nodeId'), b.config.nodeId, `${user} owned by B alone`)
    t.ok(counter(await check.hget(`tether:{u:${user}}:own`, 'token')) > (oldCounters[i] ?? Infinity), `${user}: its fence moved on past the lost one`)
  }
  t.ok(onB.every(client => client.closeCode === null), 'B kept every session')
})

t.test('Redis restarted empty: a node whose liveness is not written again yet is asked for its users, not taken from', async t => {
  // The old owner's caution after the restart lasts one of its (long) leases.
  const { redis, old, b } = await oldOwnerAndB(t)
  const users = Array.from({ length: 4 }, (_, i) => `unsure${i}@example.com`)
  const onOld = await Promise.all(users.map(async user => (await connectTo(t, old.url, user)).client))
  const onB = await restartWhileAsleep(t, { redis, old, b }, users)
  // As right after the restart, before B's next renewal: B's liveness key is not in Redis, and it stays
  // away until the old owner has decided about every user.
  const check = redis.client(t)
  const liveness = `tether:{nodes}:node:${b.config.nodeId}`
  const hiding = setInterval(() => { check.del(liveness).catch(() => {}) }, 5)
  t.teardown(() => clearInterval(hiding))
  old.child.kill('SIGCONT')
  const codes = await Promise.all(onOld.map(async client => await client.waitClosed(8000).catch(() => null)))
  clearInterval(hiding)
  t.same(codes, users.map(() => 4001), 'the old owner asked B, which holds the users, and dropped its copies (4001)')
  for (const user of users) t.equal(await check.hget(`tether:{u:${user}}:own`, 'nodeId'), b.config.nodeId, `${user} still owned by B`)
  t.ok(onB.every(client => client.closeCode === null), 'B kept every session')
})
