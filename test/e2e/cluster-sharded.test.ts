/**
 * Cluster mode on a sharded Redis Cluster of three redis-server processes the
 * test starts and joins: every key a script touches shares one slot, the
 * behaviours of one Redis hold, and a shard that dies and comes back empty
 * leaves no user with two sessions.
 */
import t from 'tap'
import { connectAcked, delay, eventually, glassesToken } from '../helper.js'
import { LEASE, node, owners, tryConnect } from '../cluster-nodes.js'
import { clusterBehaviours } from '../cluster-behaviours.js'
import { RedisCluster } from '../redis-cluster.js'

clusterBehaviours(t, async t => await RedisCluster.start(t))

t.test('a shard killed and restarted empty under load: no user ends with two sessions', async t => {
  const redis = await RedisCluster.start(t)
  const a = await node(t, redis, 'node-a')
  const b = await node(t, redis, 'node-b')
  // Names that differ early: CRC16 sends `x-1`, `x-2`, ... to neighbouring slots, often all on one shard.
  const users = Array.from({ length: 24 }, (_, i) => `${String.fromCharCode(97 + i)}-wearer@example.com`)
  const onA = await Promise.all(users.map(async user => (await connectAcked(t, a, user)).client))
  const check = redis.client(t)
  const shards = await Promise.all(users.map(async user => await redis.shardOf(`tether:{u:${user}}:own`)))
  const lost = users.filter((_, i) => shards[i] === 0)
  t.ok(lost.length > 0 && lost.length < users.length, `some users live on the shard that dies (${lost.length} of ${users.length})`)
  await redis.kill(0)
  // Meanwhile every user reconnects through node B, as phones would after a network blip.
  const load = users.map(async user => await eventually(async () => {
    const outcome = await tryConnect(t, b, glassesToken(user))
    if ('client' in outcome) return outcome.client
    await delay(100)
    return undefined
  }, `${user} claimed on B`, 20_000))
  await delay(LEASE)
  await redis.restart(0)
  const onB = await Promise.all(load)
  // Node A may keep its copies a renewal longer: it learns of each takeover when its liveness or a write tells it.
  await eventually(() => users.every(user => owners([a, b], user).length === 1), 'one session per user cluster-wide', 15_000)
  for (const user of users) t.equal(await check.hget(`tether:{u:${user}}:own`, 'nodeId'), b.config.nodeId, `${user} owned by B`)
  t.ok(onA.every(client => client.closeCode === 4001), 'A dropped every copy (4001)')
  t.ok(onB.every(client => client.closeCode === null), 'B kept every session')
})
