/**
 * The behaviours every cluster keeps, on whichever Redis it runs: one server
 * (test/e2e/cluster.test.ts) or a sharded Redis Cluster (test/e2e/cluster-sharded.test.ts).
 * Nodes run as apps in this process (distinct NODE_IDs) and, where a node must
 * die or sleep, as child processes.
 */
import type { Test } from 'tap'
import { admin, adminToken, connectAcked, delay, eventually, glassesToken, refusedUpgrade } from './helper.js'
import { LEASE, STEADY, connectTo, node, nodeProcess, owners, tryConnect, type RedisBackend } from './cluster-nodes.js'
import { startSdkApp, writeCatalogue } from './sdk-app.js'

type Tap = Test

/** Starts the Redis a test runs on, ended in its teardown. */
export type StartRedis = (t: Tap) => Promise<RedisBackend>

const ownerKey = (user: string): string => `tether:{u:${user}}:own`

export function clusterBehaviours (t: Tap, startRedis: StartRedis): void {
  t.test('one user connecting to two nodes at once: both acked, the older taken over (4001), one session', async t => {
    const redis = await startRedis(t)
    const a = await node(t, redis, 'node-a', STEADY)
    const b = await node(t, redis, 'node-b', STEADY)
    for (let round = 0; round < 4; round++) {
      const users = Array.from({ length: 5 }, (_, i) => `race-${round}-${i}@example.com`)
      await Promise.all(users.map(async user => {
        const token = glassesToken(user)
        const ackedAt = new Map<unknown, number>()
        const outcomes = await Promise.all([a, b].map(async n => {
          const outcome = await tryConnect(t, n, token)
          if ('client' in outcome) ackedAt.set(outcome.client, Date.now())
          return outcome
        }))
        const clients = outcomes.flatMap(o => 'client' in o ? [o.client] : [])
        t.equal(clients.length, 2, `${user}: neither connect refused (${outcomes.map(o => 'status' in o ? o.status : 'upgraded').join(',')})`)
        await eventually(() => clients.filter(c => c.closeCode === null).length === 1, `${user}: one socket left open`, 8000)
        const [open] = clients.filter(c => c.closeCode === null)
        const [closed] = clients.filter(c => c.closeCode !== null)
        if (open === undefined || closed === undefined) return
        t.equal(closed.closeCode, 4001, `${user}: the other was taken over`)
        const acks = clients.map(c => c.messages.find(m => m.type === 'connection_ack'))
        t.ok(acks.every(ack => ack !== undefined), `${user}: both acked`)
        t.equal(new Set(acks.map(ack => ack?.sessionInstanceId)).size, 1, `${user}: one session instance`)
        t.ok((ackedAt.get(closed) ?? 0) <= (ackedAt.get(open) ?? 0), `${user}: the older one was taken over`)
        await eventually(() => owners([a, b], user).length === 1, `${user}: one session cluster-wide`, 3000)
      }))
    }
  })

  t.test('handover keeps counters and apps; the SDK app switches clouds', async t => {
    const redis = await startRedis(t)
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
    const before = a.app.sessions.get('mover@example.com')?.stats.counts()

    const { client: onB, ack: ackB } = await connectAcked(t, b, 'mover@example.com')
    t.equal(await onA.waitClosed(), 4001, 'A closed its glasses socket 4001')
    t.equal(ackB.reconnection, true)
    t.equal(ackB.sessionInstanceId, ack.sessionInstanceId, 'same session instance')
    const moved = b.app.sessions.get('mover@example.com')
    t.equal(moved?.reconnections, 1)
    t.ok((moved?.stats.counts().messagesIn ?? 0) >= (before?.messagesIn ?? 1), 'counters preserved')
    t.equal(moved?.stats.counts().audioBytes, 320)
    t.equal(a.app.sessions.get('mover@example.com'), undefined, 'A dropped its copy')

    await eventually(() => b.app.sessions.get('mover@example.com')?.view().appSubscriptions[sdk.packageName]?.length === 4, 'the app connected to B and subscribed', 8000)
    t.equal(sdk.app.stops.length, 0, 'the app was never told the session ended')
    onB.send({ type: 'button_press', buttonId: 'on-b', pressType: 'short' })
    await eventually(() => sdk.app.of('button_press').some(r => (r.data as { buttonId: string }).buttonId === 'on-b'), 'press on B reaches the app', 5000)
    const metricsA = await (await fetch(`${a.httpUrl}/metrics`)).text()
    t.match(metricsA, /tether_sessions_disposed_total\{reason="handover"\} 1/)
  })

  t.test('admin from any node: list, detail and delete across nodes; /nodes lists both', async t => {
    const redis = await startRedis(t)
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

    onB.terminate()
    await eventually(async () => (await admin(a, 'GET', '/sessions?state=grace')).json().sessions[0]?.userId === 'on-b@example.com', 'B\'s session listed in grace from A', 3000)
    t.same((await admin(a, 'GET', '/sessions')).json().counts, { active: 1, grace: 1, total: 2 })
    const { client: again } = await connectAcked(t, b, 'on-b@example.com')

    const detail = await admin(a, 'GET', '/sessions/on-b@example.com')
    t.equal(detail.statusCode, 200)
    t.equal(detail.json().nodeId, b.config.nodeId)
    t.ok(detail.json().managers.heartbeat !== undefined, 'live detail from the owner')

    const nodes = (await admin(b, 'GET', '/nodes')).json().nodes as Array<{ nodeId: string }>
    t.same(nodes.map(n => n.nodeId).sort(), [a.config.nodeId, b.config.nodeId].sort())

    t.equal((await admin(a, 'DELETE', '/sessions/on-b@example.com')).statusCode, 204)
    t.equal(await again.waitClosed(), 4002, 'the owner closed it 4002')
    t.equal((await admin(a, 'DELETE', '/sessions/on-b@example.com')).statusCode, 404)
    await eventually(async () => (await admin(b, 'GET', '/sessions')).json().counts.total === 1, 'gone from the list', 3000)
  })

  t.test('the admin feed of any node shows the sessions of every node', async t => {
    const redis = await startRedis(t)
    const a = await node(t, redis, 'node-a', STEADY)
    const b = await node(t, redis, 'node-b', STEADY)
    const feed = await fetch(`${a.httpUrl}/admin/feed`, { headers: { authorization: `Bearer ${adminToken()}` } })
    const reader = feed.body?.getReader()
    t.teardown(async () => { await reader?.cancel() })
    let text = ''
    const decoder = new TextDecoder()
    const snapshots = async (): Promise<string> => {
      const chunk = await reader?.read()
      text += decoder.decode(chunk?.value ?? new Uint8Array())
      return text
    }
    await snapshots()
    await connectAcked(t, b, 'seen-from-a@example.com')
    await eventually(async () => (await snapshots()).includes('seen-from-a@example.com'), 'a session on B reaches A\'s feed', 5000)
  })

  t.test('kill -9 of a node: its users are claimable after the lease TTL and not before, resuming its last state', async t => {
    const redis = await startRedis(t)
    const doomed = await nodeProcess(t, redis, 'node-doomed')
    const a = await node(t, redis, 'node-a')
    const { client, ack } = await connectTo(t, doomed.url, 'orphan@example.com')
    client.send({ type: 'local_transcription', text: 'remember me', isFinal: true })
    // Counters are written at COUNTERS_WRITE_MS (300 ms for these nodes): wait for one write.
    await delay(LEASE)
    doomed.child.kill('SIGKILL')
    const killedAt = Date.now()
    const early = await refusedUpgrade(a, { authorization: `Bearer ${glassesToken('orphan@example.com')}` })
    t.equal(early.status, 503, 'before the TTL: 503')
    t.equal(early.body.code, 'SESSION_MOVING')
    const listed = (await admin(a, 'GET', '/sessions')).json()
    t.match(listed.sessions, [{ userId: 'orphan@example.com', nodeId: doomed.nodeId }], 'listed from its last write')
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
    t.equal(a.app.sessions.get('orphan@example.com')?.stats.counts().transcripts, 1, 'counters as last written')
    await eventually(async () => !(await admin(a, 'GET', '/nodes')).json().nodes.some((n: { nodeId: string }) => n.nodeId === doomed.nodeId),
      'the dead node leaves /nodes', 5000)
  })

  t.test('a dead node\'s users that never come back are listed in grace, then dropped after the grace period', async t => {
    const redis = await startRedis(t)
    const doomed = await nodeProcess(t, redis, 'node-doomed', { GRACE_PERIOD_MS: '1500' })
    const a = await node(t, redis, 'node-a', { gracePeriodMs: 1500 })
    await connectTo(t, doomed.url, 'gone@example.com')
    await eventually(async () => (await admin(a, 'GET', '/sessions')).json().counts.total === 1, 'listed', 3000)
    doomed.child.kill('SIGKILL')
    await eventually(async () => (await admin(a, 'GET', '/sessions?state=grace')).json().sessions[0]?.userId === 'gone@example.com',
      'settled into grace once the node\'s liveness lapsed', 5000)
    await eventually(async () => {
      const body = (await admin(a, 'GET', '/sessions')).json()
      return body.sessions.length === 0 && body.counts.total === 0
    }, 'dropped, counts included, after the grace period', 8000)
    t.equal(await redis.client(t).exists(ownerKey('gone@example.com')), 0, 'nothing left in Redis')
  })

  t.test('fencing: a node frozen past its lease wakes up unable to write, and drops its copy', async t => {
    const redis = await startRedis(t)
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
    t.equal(await check.hget(ownerKey('fenced@example.com'), 'nodeId'), a.config.nodeId)
    sleeper.child.kill('SIGCONT')
    const code = await old.waitClosed(15_000).catch(async (error: unknown) => { t.comment(sleeper.output()); throw error })
    t.equal(code, 4001, 'the woken node dropped its copy (4001)')
    await delay(LEASE)
    t.equal(await check.hget(ownerKey('fenced@example.com'), 'nodeId'), a.config.nodeId, 'its stale writes were refused')
    fresh.send({ type: 'ping' })
    await fresh.next('pong')
    t.equal(fresh.closeCode, null)
  })

  t.test('a node shutting down releases its users: they are claimed elsewhere at once', async t => {
    const redis = await startRedis(t)
    const leaving = await node(t, redis, 'node-leaving', { leaseTtlMs: 30_000 })
    const b = await node(t, redis, 'node-b', { leaseTtlMs: 30_000 })
    const { client } = await connectAcked(t, leaving, 'traveller@example.com')
    await leaving.app.close()
    t.equal(await client.waitClosed(), 1001, 'the glasses were told the node is going away')
    const check = redis.client(t)
    t.equal(await check.exists(ownerKey('traveller@example.com')), 0, 'no record left behind')
    const { ack } = await connectAcked(t, b, 'traveller@example.com')
    t.equal(ack.type, 'connection_ack', 'claimed on another node without waiting for a 30 s lease to expire')
    const nodes = (await admin(b, 'GET', '/nodes')).json().nodes as Array<{ nodeId: string }>
    t.notOk(nodes.some(n => n.nodeId === leaving.config.nodeId), `the node retired from the cluster view (${nodes.map(n => n.nodeId).join(',')})`)
  })

  t.test('an admin ending a session of a silent owner: the owner, waking, drops it rather than claiming it back', async t => {
    const redis = await startRedis(t)
    const sleeper = await nodeProcess(t, redis, 'node-sleeper')
    const a = await node(t, redis, 'node-a')
    const { client } = await connectTo(t, sleeper.url, 'ended@example.com')
    await delay(LEASE / 2)
    sleeper.child.kill('SIGSTOP')
    t.equal((await admin(a, 'DELETE', '/sessions/ended@example.com')).statusCode, 204, 'revoked although the owner is silent')
    const metrics = await (await fetch(`${a.httpUrl}/metrics`)).text()
    t.match(metrics, /tether_directory_operations_total\{operation="revoke",outcome="ok"\} 1\n/)
    sleeper.child.kill('SIGCONT')
    // Woken, it either handles the delete request that waited for it or finds its user revoked: an admin end either way.
    t.equal(await client.waitClosed(5000), 4002, 'the woken owner ended the session as an admin delete')
    await delay(LEASE)
    t.not(await redis.client(t).hget(ownerKey('ended@example.com'), 'nodeId'), sleeper.nodeId, 'and did not claim it back')
  })

  t.test('idle sessions cost Redis nothing: commands per second do not grow with them', async t => {
    const redis = await startRedis(t)
    const a = await node(t, redis, 'node-a', { leaseTtlMs: 600 })
    const check = redis.client(t)
    const commands = async (): Promise<number> => await totalCommands(check)
    const rate = async (): Promise<number> => {
      const before = await commands()
      await delay(1500)
      return (await commands() - before) / 1.5
    }
    const connect = async (from: number, count: number): Promise<void> => {
      await Promise.all(Array.from({ length: count }, async (_, i) => { await connectAcked(t, a, `idle-${from + i}@example.com`) }))
    }
    await connect(0, 10)
    await delay(300)
    const few = await rate()
    await connect(10, 90)
    await delay(300)
    const many = await rate()
    const perSession = Math.max(0, many - few) / 90
    t.comment(`Redis commands/s: ${few.toFixed(1)} with 10 idle sessions, ${many.toFixed(1)} with 100 (the node's liveness alone: the rest)`)
    t.ok(many <= few * 1.5, 'ten times the idle sessions, no more Redis work')
    t.ok(perSession <= 0.05, `at most 0.05 commands per extra idle session per second (${perSession.toFixed(3)})`)
  })
}

/** Every command Redis ran, scripts' inner calls included and INFO (ours) left out, summed over the shards. */
export async function totalCommands (client: ReturnType<RedisBackend['client']>): Promise<number> {
  const servers = 'nodes' in client ? client.nodes('master') : [client]
  let total = 0
  for (const server of servers) {
    for (const [, name, calls] of (await server.info('commandstats')).matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) {
      if (name !== 'info') total += Number(calls)
    }
  }
  return total
}
