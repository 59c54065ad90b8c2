/**
 * DESIGN "dispose": every manager disposed even when one throws or hangs, the
 * fatal-error path, and shutdown. Test-only managers are injected through
 * buildApp's managerFactories, the same composition point real managers use.
 */
import t from 'tap'
import type { Manager, ManagerFactory } from '../../../sessions/manager.js'
import { admin, connectAcked, delay, eventually, glassesToken, refusedUpgrade, startServer } from '../../helper.js'

interface Probe { disposed: string[], attached: number }

function probeManagers (probe: Probe): ManagerFactory[] {
  const throwing: ManagerFactory = () => ({
    name: 'throws-on-dispose',
    snapshot: () => ({}),
    dispose: () => { throw new Error('boom') }
  })
  const hanging: ManagerFactory = () => ({
    name: 'hangs-on-dispose',
    snapshot: () => ({}),
    dispose: async () => { await new Promise(() => {}) }
  })
  const recording: ManagerFactory = () => ({
    name: 'records',
    onAttach: () => { probe.attached += 1 },
    handle: message => {
      if (message.type === 'button_press' && message.buttonId === 'explode') throw new Error('handler bug')
      return false
    },
    snapshot: () => ({ attached: probe.attached }),
    dispose: async () => { await delay(5); probe.disposed.push('records') }
  } satisfies Manager)
  return [throwing, hanging, recording]
}

t.test('a manager that throws or hangs never stops the others; failures are counted', async t => {
  const probe: Probe = { disposed: [], attached: 0 }
  const server = await startServer(t, { managerDisposeTimeoutMs: 100 }, { managerFactories: probeManagers(probe) })
  const { client } = await connectAcked(t, server, 'fragile@example.com')
  const session = server.app.sessions.get('fragile@example.com')
  const started = Date.now()
  const res = await admin(server, 'DELETE', '/sessions/fragile@example.com')
  t.equal(res.statusCode, 204)
  t.ok(Date.now() - started < 1000, 'bounded by the per-manager timeout')
  t.equal(await client.waitClosed(), 4002)
  t.same(probe.disposed, ['records'], 'the well-behaved manager was disposed')
  t.equal(session?.state, 'disposed')
  const disposed = session?.recentEvents().at(-1)
  t.match(disposed, { event: 'session.disposed', reason: 'manual', closeCode: 4002 })
  t.same(disposed?.failures, [
    { manager: 'throws-on-dispose', kind: 'error' },
    { manager: 'hangs-on-dispose', kind: 'timeout' }
  ])
  const metrics = await (await fetch(`${server.httpUrl}/metrics`)).text()
  t.match(metrics, /tether_dispose_failures_total\{manager="throws-on-dispose",kind="error"\} 1/)
  t.match(metrics, /tether_dispose_failures_total\{manager="hangs-on-dispose",kind="timeout"\} 1/)
  t.match(metrics, /tether_sessions_disposed_total\{reason="manual"\} 1/)
})

t.test('dispose is idempotent: concurrent deletes share one disposal', async t => {
  const probe: Probe = { disposed: [], attached: 0 }
  const server = await startServer(t, { managerDisposeTimeoutMs: 100 }, { managerFactories: probeManagers(probe) })
  await connectAcked(t, server, 'twice@example.com')
  const session = server.app.sessions.get('twice@example.com')
  const [a, b] = await Promise.all([
    admin(server, 'DELETE', '/sessions/twice@example.com'),
    admin(server, 'DELETE', '/sessions/twice@example.com')
  ])
  t.same([a.statusCode, b.statusCode], [204, 204])
  t.same(probe.disposed, ['records'], 'managers disposed once')
  t.equal(session?.recentEvents().filter(e => e.event === 'session.disposed').length, 1)
  t.equal((await admin(server, 'DELETE', '/sessions/twice@example.com')).statusCode, 404, 'absent afterwards')
  t.equal(session?.dispose('manual'), session?.dispose('shutdown'), 'the same promise every time')
})

t.test('a manager throwing while handling a message disposes only that session, 1011', async t => {
  const probe: Probe = { disposed: [], attached: 0 }
  const server = await startServer(t, { managerDisposeTimeoutMs: 50 }, { managerFactories: probeManagers(probe) })
  const { client } = await connectAcked(t, server, 'victim@example.com')
  const { client: bystander } = await connectAcked(t, server, 'fine@example.com')
  client.send({ type: 'button_press', buttonId: 'explode', pressType: 'short' })
  t.equal(await client.waitClosed(), 1011)
  await eventually(() => server.app.sessions.size === 1, 'victim disposed and removed')
  bystander.send({ type: 'button_press', buttonId: 'main', pressType: 'short' })
  bystander.send({ type: 'ping' })
  await bystander.next('pong')
  t.equal(bystander.closeCode, null)
  t.equal(server.app.sessions.get('fine@example.com')?.state, 'active')
  const metrics = await (await fetch(`${server.httpUrl}/metrics`)).text()
  t.match(metrics, /tether_sessions_disposed_total\{reason="fatal_error"\} 1/)
  t.match(metrics, /tether_close_codes_sent_total\{code="1011"\} 1/)
  const { ack } = await connectAcked(t, server, 'victim@example.com')
  t.equal(ack.reconnection, false, 'reconnecting starts a new session')
})

t.test('managers see attach on create, resume and replace', async t => {
  const probe: Probe = { disposed: [], attached: 0 }
  const server = await startServer(t, { managerDisposeTimeoutMs: 50 }, { managerFactories: probeManagers(probe) })
  const { client } = await connectAcked(t, server, 'attach@example.com')
  client.terminate()
  await eventually(() => server.app.sessions.get('attach@example.com')?.state === 'grace', 'grace')
  await connectAcked(t, server, 'attach@example.com')
  await connectAcked(t, server, 'attach@example.com')
  t.equal(probe.attached, 3)
})

t.test('shutdown: /ready 503, upgrades 503 SHUTTING_DOWN, sockets closed 1001, sessions disposed', async t => {
  const slowDispose: ManagerFactory = () => ({
    name: 'slow', snapshot: () => ({}), dispose: async () => { await delay(300) }
  })
  const server = await startServer(t, { shutdownTimeoutMs: 2000 }, { managerFactories: [slowDispose] })
  const clients = await Promise.all(['s1', 's2', 's3'].map(async u => (await connectAcked(t, server, `${u}@example.com`)).client))
  const grace = clients[2]
  grace?.terminate()
  await eventually(() => server.app.sessions.counts().grace === 1, 'one in grace')
  const sessions = ['s1', 's2', 's3'].flatMap(u => server.app.sessions.get(`${u}@example.com`) ?? [])
  t.equal((await fetch(`${server.httpUrl}/ready`)).status, 200)
  const closing = server.app.close()
  // While the slow manager holds disposal open, the listener still answers.
  await delay(50)
  const ready = await fetch(`${server.httpUrl}/ready`)
  t.equal(ready.status, 503)
  t.same(await ready.json(), { status: 'draining', reason: 'shutdown' })
  const refused = await refusedUpgrade(server, { authorization: `Bearer ${glassesToken('late@example.com')}` })
  t.equal(refused.status, 503)
  t.equal(refused.body.code, 'SHUTTING_DOWN')
  t.same(await Promise.all(clients.slice(0, 2).map(async c => await c.waitClosed())), [1001, 1001])
  await closing
  for (const session of sessions) {
    t.equal(session.state, 'disposed')
    t.match(session.recentEvents().at(-1), { event: 'session.disposed', reason: 'shutdown' })
  }
  t.equal(server.app.sessions.size, 0)
})

t.test('a manager throwing on attach is fatal for that session only', async t => {
  const failsOnAttach: ManagerFactory = session => ({
    name: 'fails-on-attach',
    onAttach: () => { if (session.userId === 'doomed@example.com') throw new Error('attach bug') },
    snapshot: () => ({}),
    dispose: () => {}
  })
  const server = await startServer(t, {}, { managerFactories: [failsOnAttach] })
  const { client } = await connectAcked(t, server, 'doomed@example.com')
  t.equal(await client.waitClosed(), 1011)
  const { client: other } = await connectAcked(t, server, 'lucky@example.com')
  other.send({ type: 'ping' })
  await other.next('pong')
  await eventually(() => server.app.sessions.size === 1, 'only the lucky session remains')
})
