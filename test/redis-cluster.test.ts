/**
 * The Redis Cluster harness (test/redis-cluster.ts) and ioredis's Cluster client against it:
 * keys spread over shards by hash tag, scripts within one slot, pub/sub across the cluster bus,
 * and a shard killed and restarted empty.
 */
import t from 'tap'
import { Redis, type Cluster } from 'ioredis'
import { RedisCluster } from './redis-cluster.js'

/**
 * Poll a condition with a deadline (as helper.ts's `eventually`, which this file does not import:
 * the harness must not need the app to load).
 */
async function eventually (check: () => boolean | Promise<boolean>, what: string, ms: number): Promise<void> {
  const deadline = Date.now() + ms
  while (!await check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 20))
  }
}

/** One key per user: the hash tag `{u:…}` puts all of a user's keys in one slot. */
const USERS = 'abcdefghijkl'.split('')
const key = (user: string, field = 'x'): string => `tether:{u:${user}}:${field}`

/** Copy KEYS[1] to KEYS[2] in one script; both keys must be in one slot. */
const COPY = "local v = redis.call('GET', KEYS[1]); redis.call('SET', KEYS[2], v); return v"
type WithCopy = Cluster & { tetherCopy: (from: string, to: string) => Promise<string> }

/** Which master holds each key, asked of each master itself (KEYS on that node only). */
async function holders (client: Cluster): Promise<Map<string, number>> {
  const held = new Map<string, number>()
  for (const node of client.nodes('master')) {
    for (const k of await node.keys('tether:*')) held.set(k, node.options.port ?? -1)
  }
  return held
}

t.test('the harness: three shards, keys spread by hash tag, one-slot scripts only', async t => {
  const cluster = await RedisCluster.start(t)
  t.equal(cluster.ports.length, 3)
  t.equal(new Set(cluster.ports).size, 3, 'three distinct ports')
  t.same(cluster.seeds, cluster.ports.map(port => `127.0.0.1:${port}`))
  t.equal(cluster.url, cluster.ports.map(port => `redis://127.0.0.1:${port}`).join(','))

  const client = cluster.client(t)
  for (const user of USERS) await client.set(key(user), user)
  t.equal(client.nodes('master').length, 3, 'the client found three masters')
  const held = await holders(client)
  t.same([...held.keys()].sort(), USERS.map(user => key(user)), 'every key is held by exactly one master')
  for (const user of USERS) {
    t.equal(held.get(key(user)), cluster.ports[await cluster.shardOf(key(user))], `${key(user)} is on the shard that serves its slot`)
  }
  t.ok(new Set(held.values()).size >= 2, `the keys are spread over shards: ${[...new Set(held.values())].join(',')}`)
  const slotA = await client.cluster('KEYSLOT', key('a'))
  t.equal(await client.cluster('KEYSLOT', key('a', 'y')), slotA, 'one hash tag, one slot')
  t.not(await client.cluster('KEYSLOT', key('b')), slotA, 'another hash tag, another slot')

  client.defineCommand('tetherCopy', { numberOfKeys: 2, lua: COPY })
  const scripted = client as WithCopy
  t.equal(await scripted.tetherCopy(key('a'), key('a', 'y')), 'a', 'a script over two keys of one slot runs')
  t.equal(await client.get(key('a', 'y')), 'a')
  await t.rejects(scripted.tetherCopy(key('a'), key('b', 'y')), /CROSSSLOT/, 'a script over two slots is refused')
  t.equal(await client.exists(key('b', 'y')), 0, 'and wrote nothing')
})

t.test('pub/sub: PUBLISH to any master reaches a subscriber on any; sharded pub/sub with shardedSubscribers', async t => {
  const cluster = await RedisCluster.start(t)
  const sub = cluster.client(t)
  const pub = cluster.client(t)
  const got: string[] = []
  sub.on('message', (channel: string, message: string) => { got.push(`${channel}=${message}`) })
  await sub.subscribe('tether:events')
  await pub.publish('tether:events', 'via-client')
  // Straight to each master: the cluster bus carries each message to the subscriber's node.
  await eventually(() => pub.nodes('master').length === 3, 'the publisher found three masters', 5000)
  for (const node of pub.nodes('master')) await node.publish('tether:events', `via-${node.options.port}`)
  const expected = ['via-client', ...pub.nodes('master').map(node => `via-${node.options.port}`)].map(m => `tether:events=${m}`)
  await eventually(() => got.length >= expected.length, `${expected.length} messages, got ${got.join(' ')}`, 5000)
  t.same(got.sort(), expected.sort(), 'every message arrived once')

  // SSUBSCRIBE needs a connection to the shard of each channel: ioredis opens them with shardedSubscribers.
  const ssub = cluster.client(t, { shardedSubscribers: true })
  const sgot: string[] = []
  ssub.on('smessage', (channel: string, message: string) => { sgot.push(`${channel}=${message}`) })
  const channels = [key('a', 'events'), key('b', 'events'), key('d', 'events')]
  const shards = await Promise.all(channels.map(async channel => await cluster.shardOf(channel)))
  t.ok(new Set(shards).size >= 2, `the shard channels are on several shards: ${shards.join(',')}`)
  for (const channel of channels) await ssub.ssubscribe(channel)
  for (const channel of channels) t.equal(await pub.spublish(channel, 'hi'), 1, `SPUBLISH ${channel} reached one subscriber`)
  await eventually(() => sgot.length >= channels.length, `${channels.length} shard messages, got ${sgot.join(' ')}`, 5000)
  t.same(sgot.sort(), channels.map(channel => `${channel}=hi`).sort())
})

t.test('a shard killed and restarted comes back empty; the others keep their keys; the client recovers', async t => {
  const cluster = await RedisCluster.start(t)
  const client = cluster.client(t)
  // ioredis's defaults: a command sent while a shard is down gives up after 16 redirections.
  const impatient = cluster.client(t, {})
  for (const user of USERS) await client.set(key(user), user)
  await impatient.get(key('a'))
  const victim = await cluster.shardOf(key('a'))
  const shardOf = new Map(await Promise.all(USERS.map(async user => [user, await cluster.shardOf(key(user))] as const)))
  const lost = USERS.filter(user => shardOf.get(user) === victim)
  const kept = USERS.filter(user => shardOf.get(user) !== victim)
  t.ok(lost.length > 0 && kept.length > 0, `keys on the victim (${lost.join('')}) and elsewhere (${kept.join('')})`)
  const survivor = cluster.ports[shardOf.get(kept[0] as string) as number] as number

  await cluster.kill(victim)
  const heldLost = client.get(key('a'))
  const heldKept = client.get(key(kept[0] as string))
  await t.rejects(impatient.get(key('a')), /Too many Cluster redirections/, 'with the defaults a read of the dead shard fails')
  // Full coverage is required (the default): once the dead shard is flagged, every slot is down.
  const direct = new Redis({ host: '127.0.0.1', port: survivor, retryStrategy: () => null })
  direct.on('error', () => {})
  t.teardown(() => direct.disconnect())
  await eventually(async () => await direct.get(key(kept[0] as string)).then(() => false, (err: Error) => /CLUSTERDOWN/.test(err.message)), 'CLUSTERDOWN on a live shard', 10_000)

  await cluster.restart(victim)
  t.equal(await heldLost, null, 'a read held through the outage is answered, by the empty restarted shard')
  t.equal(await heldKept, kept[0], 'a read of a live shard held through the outage is answered')
  for (const user of lost) t.equal(await client.get(key(user)), null, `${key(user)} was lost with its shard`)
  for (const user of kept) t.equal(await client.get(key(user)), user, `${key(user)} survived on its shard`)
  for (const user of USERS) await client.set(key(user), `${user}2`)
  for (const user of USERS) t.equal(await client.get(key(user)), `${user}2`, `${key(user)} is writable again`)
  t.equal(await impatient.get(key('a')), 'a2', 'the default client recovers too')
})
