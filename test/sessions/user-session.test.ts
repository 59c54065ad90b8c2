/**
 * The state machine without Fastify: a UserSession and SessionRegistry fed real
 * server-side sockets from a bare `ws` server on loopback.
 */
import { once } from 'node:events'
import t from 'tap'
import { LocalOwnership } from '../../sessions/local-ownership.js'
import WebSocket, { WebSocketServer } from 'ws'
import { GlassesConnection } from '../../sessions/glasses-connection.js'
import type { LifecycleEvent } from '../../sessions/lifecycle.js'
import type { Manager, ManagerFactory } from '../../sessions/manager.js'
import { silentLog } from '../../sessions/log.js'
import type { SessionConfig } from '../../sessions/session-config.js'
import { SessionRegistry } from '../../sessions/session-registry.js'
import { SessionGoneError } from '../../sessions/user-session.js'
import { Client, delay, eventually, type Teardown } from '../helper.js'

const config: SessionConfig = {
  gracePeriodMs: 80,
  pingIntervalMs: 10_000,
  silenceTimeoutMs: 30_000,
  maxBadFrames: 3,
  maxBufferedBytes: 1 << 20,
  maxJsonDepth: 32,
  tokenClockToleranceMs: 0,
  managerDisposeTimeoutMs: 100,
  nodeId: 'unit',
  takeoverLimit: 3,
  takeoverWindowMs: 30_000,
  takeoverCooldownMs: 300_000
}

/** A bare ws server whose accepted sockets come out of `accept()`. */
async function socketServer (t: Teardown) {
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' })
  await once(wss, 'listening')
  t.teardown(() => { for (const c of wss.clients) c.terminate(); wss.close() })
  const port = (wss.address() as { port: number }).port
  return {
    async pair (userId: string): Promise<{ connection: GlassesConnection, client: Client }> {
      const accepted = once(wss, 'connection') as Promise<[WebSocket]>
      const ws = new WebSocket(`ws://127.0.0.1:${port}`)
      const client = new Client(ws)
      t.teardown(() => ws.terminate())
      const [socket] = await accepted
      await once(ws, 'open')
      return { connection: new GlassesConnection(socket, { userId, subject: 's', expiresAt: null }, config), client }
    }
  }
}

function registry (events: LifecycleEvent[] = []): SessionRegistry {
  const r = new SessionRegistry({ config, log: silentLog, ownership: new LocalOwnership(config.nodeId) })
  r.observe({ event: e => events.push(e) })
  return r
}

t.test('created -> grace -> resumed -> grace -> disposed (grace_expired)', async t => {
  const sockets = await socketServer(t)
  const events: LifecycleEvent[] = []
  const reg = registry(events)
  const first = await sockets.pair('u@x.io')
  const created = await reg.connect(first.connection)
  t.equal(created?.outcome, 'created')
  const session = created?.session
  t.equal(session?.state, 'active')
  first.client.terminate()
  await eventually(() => session?.state === 'grace', 'grace')
  const second = await sockets.pair('u@x.io')
  t.equal((await reg.connect(second.connection))?.outcome, 'resumed')
  t.equal(session?.reconnections, 1)
  second.client.terminate()
  await eventually(() => session?.state === 'disposed', 'disposed after grace', 1000)
  t.equal(reg.size, 0)
  t.same(events.map(e => e.event), [
    'session.created', 'session.attached', 'session.detached', 'session.resumed', 'session.attached',
    'session.detached', 'session.disposed'
  ])
  t.match(events.at(-1), { reason: 'grace_expired', reconnections: 1 })
  t.throws(() => session?.attach(second.connection), SessionGoneError, 'a disposed session takes no socket')
})

t.test('a stale grace timer cannot end a later grace period', async t => {
  const sockets = await socketServer(t)
  const reg = registry()
  const a = await sockets.pair('stale@x.io')
  const session = (await reg.connect(a.connection))?.session
  a.client.terminate()
  await eventually(() => session?.state === 'grace', 'grace 1')
  await delay(50)
  const b = await sockets.pair('stale@x.io')
  await reg.connect(b.connection)
  b.client.terminate()
  await eventually(() => session?.state === 'grace', 'grace 2')
  // 50 ms into the second grace period the first timer would have fired, had it survived.
  await delay(50)
  t.equal(session?.state, 'grace', 'only the current timer can dispose')
  t.equal(session?.expireGrace(0), null, 'an old epoch is ignored')
  await eventually(() => session?.state === 'disposed', 'disposed by the current timer', 1000)
})

t.test('frames sent before the session binds are delivered in order after the ack', async t => {
  const sockets = await socketServer(t)
  const reg = registry()
  const { connection, client } = await sockets.pair('early@x.io')
  client.send({ type: 'ping' })
  client.send({ type: 'bogus' })
  client.send({ type: 'ping' })
  await delay(30)
  await reg.connect(connection)
  await client.until(() => client.messages.length >= 4, 'four messages')
  t.same(client.messages.map(m => m.type), ['connection_ack', 'pong', 'error', 'pong'])
})

t.test('a socket that closed while waiting for the lock attaches nothing', async t => {
  const sockets = await socketServer(t)
  const reg = registry()
  const { connection, client } = await sockets.pair('gone@x.io')
  client.ws.close()
  await eventually(() => !connection.isOpen, 'closed')
  t.equal(await reg.connect(connection), null)
  t.equal(reg.size, 0)
})

t.test('events from a replaced socket are ignored', async t => {
  const sockets = await socketServer(t)
  const reg = registry()
  const a = await sockets.pair('swap@x.io')
  const session = (await reg.connect(a.connection))?.session
  const b = await sockets.pair('swap@x.io')
  t.equal((await reg.connect(b.connection))?.outcome, 'replaced')
  t.equal(await a.client.waitClosed(), 4001)
  session?.onText(a.connection, '{"type":"ping"}', 15)
  session?.onClose(a.connection, 1006)
  t.equal(session?.state, 'active')
  t.equal(session?.stats.counts().messagesIn, 0)
})

t.test('drain disposes everything with shutdown and refuses new connections', async t => {
  const sockets = await socketServer(t)
  const reg = registry()
  const a = await sockets.pair('d1@x.io')
  const b = await sockets.pair('d2@x.io')
  await reg.connect(a.connection)
  await reg.connect(b.connection)
  t.equal(await reg.drain(1000), 0)
  t.same(await Promise.all([a.client.waitClosed(), b.client.waitClosed()]), [1001, 1001])
  t.equal(reg.isDraining, true)
  const c = await sockets.pair('d3@x.io')
  await t.rejects(reg.connect(c.connection), { name: 'RegistryDrainingError' })
})

t.test('a client flooding before its ack is closed 1008', async t => {
  const sockets = await socketServer(t)
  const { connection, client } = await sockets.pair('eager@x.io')
  for (let i = 0; i < 300; i++) client.send({ type: 'ping' })
  t.equal(await client.waitClosed(), 1008)
  t.equal(connection.closeCodeSent, 1008)
})

/** A factory the session may defer (as the recipe's app side is), recording what its one manager hears. */
function deferredFactory (neededAtStart: boolean) {
  const heard: string[] = []
  let built = 0
  const factory = Object.assign((): Manager => {
    built += 1
    return {
      name: 'late',
      onAttach: ctx => heard.push(`attach reconnection=${String(ctx.reconnection)}`),
      handle: message => { heard.push(message.type); return true },
      snapshot: () => null,
      dispose: () => { heard.push('dispose') }
    }
  }, { neededAtStart: async () => neededAtStart })
  return { factory, heard, built: () => built }
}

function registryWith (factories: readonly ManagerFactory[]): SessionRegistry {
  return new SessionRegistry({ config, log: silentLog, ownership: new LocalOwnership(config.nodeId), managerFactories: factories })
}

t.test('deferred managers: not built for a fresh session, built by the first message for them, then told of the attach', async t => {
  const sockets = await socketServer(t)
  const late = deferredFactory(false)
  const reg = registryWith([late.factory])
  const a = await sockets.pair('lazy@x.io')
  const session = (await reg.connect(a.connection))?.session
  await a.client.next('connection_ack')
  await delay(20)
  t.equal(late.built(), 0, 'a fresh session whose factory needs nothing at start builds nothing')
  a.client.send({ type: 'button_press', buttonId: 'main', pressType: 'short' })
  await eventually(() => late.heard.length === 2, 'built and handled')
  t.same(late.heard, ['attach reconnection=false', 'button_press'], 'told of the attach it missed, then handed the message')
  t.equal(late.built(), 1)
  t.same(session?.managers.map(m => m.name), ['late'])
  await session?.dispose('manual')
  t.same(late.heard.at(-1), 'dispose')
})

t.test('deferred managers: built at the first attach when needed, at a resume, on lookup; a disposed session builds nothing', async t => {
  const sockets = await socketServer(t)
  const needed = deferredFactory(true)
  const a = await sockets.pair('needed@x.io')
  await registryWith([needed.factory]).connect(a.connection)
  await eventually(() => needed.built() === 1, 'built at the first attach')
  t.same(needed.heard, ['attach reconnection=false'])

  const resumed = deferredFactory(false)
  const reg = registryWith([resumed.factory])
  const b = await sockets.pair('resume@x.io')
  const session = (await reg.connect(b.connection))?.session
  b.client.terminate()
  await eventually(() => session?.state === 'grace', 'grace')
  t.equal(resumed.built(), 0, 'not built for the first socket, nor at its detach')
  const c = await sockets.pair('resume@x.io')
  t.equal((await reg.connect(c.connection))?.outcome, 'resumed')
  t.same(resumed.heard, ['attach reconnection=true'], 'built at the resume, before its attach')

  const looked = deferredFactory(false)
  const d = await sockets.pair('lookup@x.io')
  const other = (await registryWith([looked.factory]).connect(d.connection))?.session
  t.equal(other?.find(Object as unknown as new () => Manager)?.name, 'late', 'a lookup builds them')
  t.equal(looked.built(), 1)

  const gone = deferredFactory(false)
  const e = await sockets.pair('gone@x.io')
  const ended = (await registryWith([gone.factory]).connect(e.connection))?.session
  await ended?.dispose('manual')
  t.same(ended?.managers, [], 'nothing built after dispose')
  t.equal(gone.built(), 0)
})
