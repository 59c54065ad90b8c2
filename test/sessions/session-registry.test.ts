/**
 * The registry without Fastify or a socket server: sessions created, resumed,
 * replaced, expired and drained through SessionRegistry with LocalOwnership,
 * fed GlassesConnections over in-memory FakeSockets.
 */
import t from 'tap'
import type { LifecycleEvent } from '../../sessions/lifecycle.js'
import { LocalOwnership } from '../../sessions/local-ownership.js'
import { silentLog } from '../../sessions/log.js'
import { NodeEvents } from '../../sessions/node-events.js'
import type { Manager } from '../../sessions/manager.js'
import { SessionRegistry } from '../../sessions/session-registry.js'
import type { SessionConfig } from '../../sessions/session-config.js'
import { SessionGoneError } from '../../sessions/user-session.js'
import { ABNORMAL_CLOSURE } from '../fake-socket.js'
import { delay, eventually, type Teardown } from '../helper.js'
import { fakeGlasses, sessionConfig as config } from './fake-glasses.js'

/** The largest number of frames a socket may send before its ack, as socket-channel.ts sets it. */
const MAX_EARLY_FRAMES = 256

function registry (t: Teardown, events: LifecycleEvent[] = [], managers: Array<() => Manager> = [], sessionConfig: SessionConfig = config): SessionRegistry {
  const nodeEvents = new NodeEvents(silentLog)
  nodeEvents.on('session.lifecycle', e => { events.push(e) })
  const r = new SessionRegistry({
    config: sessionConfig,
    log: silentLog,
    ownership: new LocalOwnership(config.nodeId),
    events: nodeEvents,
    managerFactories: managers
  })
  t.teardown(async () => { await r.drain(1000) })
  return r
}

t.test('created -> grace -> resumed -> grace -> disposed (grace_expired)', async t => {
  const events: LifecycleEvent[] = []
  const reg = registry(t, events)
  const first = fakeGlasses('u@x.io')
  const created = await reg.connect(first.connection)
  t.equal(created?.outcome, 'created')
  const session = created?.session
  t.equal(session?.state, 'active')
  t.equal(reg.get('u@x.io'), session)
  t.same(reg.counts(), { active: 1, grace: 0, total: 1 })
  first.socket.peerDrops()
  await first.socket.closed()
  t.equal(session?.state, 'grace')
  t.same(reg.counts(), { active: 0, grace: 1, total: 1 })
  const second = fakeGlasses('u@x.io')
  t.equal((await reg.connect(second.connection))?.outcome, 'resumed')
  t.equal(session?.reconnections, 1)
  second.socket.peerDrops()
  await eventually(() => session?.state === 'disposed', 'disposed after grace', 1000)
  t.equal(reg.size, 0)
  t.equal(reg.get('u@x.io'), undefined)
  t.same(events.map(e => e.event), [
    'session.created', 'session.attached', 'session.detached', 'session.resumed', 'session.attached',
    'session.detached', 'session.disposed'
  ])
  t.match(events.at(-1), { reason: 'grace_expired', reconnections: 1 })
  t.throws(() => session?.attach(second.connection), SessionGoneError, 'a disposed session takes no socket')
  const third = fakeGlasses('u@x.io')
  const fresh = await reg.connect(third.connection)
  t.equal(fresh?.outcome, 'created', 'after expiry the user starts a fresh session')
  t.not(fresh?.session.sessionInstanceId, session?.sessionInstanceId)
})

t.test('a stale grace timer cannot end a later grace period', async t => {
  // Room for timing jitter on a busy machine: the checks below sit 80 ms from either timer.
  const slow = { ...config, gracePeriodMs: 200 }
  const reg = registry(t, [], [], slow)
  const a = fakeGlasses('stale@x.io', slow)
  const session = (await reg.connect(a.connection))?.session
  a.socket.peerDrops()
  await a.socket.closed()
  t.equal(session?.state, 'grace', 'grace 1')
  await delay(120)
  const b = fakeGlasses('stale@x.io', slow)
  await reg.connect(b.connection)
  b.socket.peerDrops()
  await b.socket.closed()
  t.equal(session?.state, 'grace', 'grace 2')
  // Well into the second grace period, the first timer would have fired, had it survived.
  await delay(120)
  t.equal(session?.state, 'grace', 'only the current timer can dispose')
  t.equal(session?.expireGrace(0), null, 'an old epoch is ignored')
  await eventually(() => session?.state === 'disposed', 'disposed by the current timer', 1000)
})

t.test('frames sent before the session binds are delivered in order after the ack', async t => {
  const reg = registry(t)
  const { connection, socket } = fakeGlasses('early@x.io')
  socket.peerSends({ type: 'ping' })
  socket.peerSends({ type: 'bogus' })
  socket.peerSends({ type: 'ping' })
  await reg.connect(connection)
  t.same(socket.types(), ['connection_ack', 'pong', 'error', 'pong'])
})

t.test('a socket that closed while waiting for the lock attaches nothing', async t => {
  const reg = registry(t)
  const { connection, socket } = fakeGlasses('gone@x.io')
  socket.peerCloses(1000)
  await socket.closed()
  t.equal(await reg.connect(connection), null)
  t.equal(reg.size, 0)
})

t.test('two first connections at once yield one session: the later replaces the earlier', async t => {
  const reg = registry(t)
  const a = fakeGlasses('twice@x.io')
  const b = fakeGlasses('twice@x.io')
  const [ra, rb] = await Promise.all([reg.connect(a.connection), reg.connect(b.connection)])
  t.equal(ra?.outcome, 'created')
  t.equal(rb?.outcome, 'replaced')
  t.equal(ra?.session, rb?.session)
  t.equal(reg.size, 1)
  t.equal(a.socket.closeSent?.code, 4001)
})

t.test('events from a replaced socket are ignored', async t => {
  const reg = registry(t)
  const a = fakeGlasses('swap@x.io')
  const session = (await reg.connect(a.connection))?.session
  const b = fakeGlasses('swap@x.io')
  t.equal((await reg.connect(b.connection))?.outcome, 'replaced')
  t.equal(await a.socket.closed(), 4001)
  session?.onText(a.connection, '{"type":"ping"}', 15)
  session?.onClose(a.connection, ABNORMAL_CLOSURE)
  t.equal(session?.state, 'active')
  t.equal(session?.stats.counts().messagesIn, 0)
})

t.test('dispose through the registry: manual ends the session with 4002; a second call finds none', async t => {
  const events: LifecycleEvent[] = []
  let disposals = 0
  const reg = registry(t, events, [() => ({ name: 'counted', snapshot: () => null, dispose: () => { disposals += 1 } })])
  const { connection, socket } = fakeGlasses('end@x.io')
  await reg.connect(connection)
  const [one, two] = await Promise.all([reg.dispose('end@x.io', 'manual'), reg.dispose('end@x.io', 'manual')])
  t.equal(one, true)
  t.equal(two, true, 'a concurrent call shares the disposal')
  t.equal(disposals, 1, 'the managers were disposed once')
  t.equal(await socket.closed(), 4002)
  t.equal(reg.size, 0)
  t.equal(await reg.dispose('end@x.io', 'manual'), false)
  t.match(events.at(-1), { event: 'session.disposed', reason: 'manual', closeCode: 4002 })
})

t.test('drain disposes everything with shutdown and refuses new connections', async t => {
  const reg = registry(t)
  const a = fakeGlasses('d1@x.io')
  const b = fakeGlasses('d2@x.io')
  await reg.connect(a.connection)
  await reg.connect(b.connection)
  t.equal(await reg.drain(1000), 0)
  t.same(await Promise.all([a.socket.closed(), b.socket.closed()]), [1001, 1001])
  t.equal(reg.isDraining, true)
  const c = fakeGlasses('d3@x.io')
  await t.rejects(reg.connect(c.connection), { name: 'RegistryDrainingError' })
})

t.test('a client flooding before its ack is closed 1008', async t => {
  const { connection, socket } = fakeGlasses('eager@x.io')
  for (let i = 0; i <= MAX_EARLY_FRAMES; i++) socket.peerSends({ type: 'ping' })
  t.equal(await socket.closed(), 1008)
  t.equal(connection.closeCodeSent, 1008)
  const reg = registry(t)
  t.equal(await reg.connect(connection), null, 'and is given to no session')
})

/** A factory the session may defer (as the recipe's app side is), recording what its one manager hears. */
function deferredFactory (neededAtStart: boolean, answer: 'later' | 'at once' | 'throws' = 'later') {
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
  }, {
    neededAtStart: answer === 'later'
      ? async () => neededAtStart
      : () => { if (answer === 'throws') throw new Error('store away'); return neededAtStart }
  })
  return { factory, heard, built: () => built }
}

t.test('deferred managers: not built for a fresh session, built by the first message for them, then told of the attach', async t => {
  const late = deferredFactory(false)
  const reg = registry(t, [], [late.factory])
  const a = fakeGlasses('lazy@x.io')
  const session = (await reg.connect(a.connection))?.session
  t.equal(a.socket.types()[0], 'connection_ack')
  await delay(20)
  t.equal(late.built(), 0, 'a fresh session whose factory needs nothing at start builds nothing')
  a.socket.peerSends({ type: 'button_press', buttonId: 'main', pressType: 'short' })
  await eventually(() => late.heard.length === 2, 'built and handled')
  t.same(late.heard, ['attach reconnection=false', 'button_press'], 'told of the attach it missed, then handed the message')
  t.equal(late.built(), 1)
  t.same(session?.managers.map(m => m.name), ['late'])
  await session?.dispose('manual')
  t.same(late.heard.at(-1), 'dispose')
})

t.test('deferred managers with a stand-in: a resume tells the stand-in, the first need builds them and drops it', async t => {
  const late = deferredFactory(false)
  const standIns: string[][] = []
  const factory = Object.assign(() => late.factory(), {
    neededAtStart: late.factory.neededAtStart,
    standIn: () => {
      const heard: string[] = []
      standIns.push(heard)
      return {
        onAttach: (ctx: { reconnection: boolean }) => { heard.push(`attach reconnection=${String(ctx.reconnection)}`) },
        dispose: () => { heard.push('dispose') }
      }
    }
  })
  const reg = registry(t, [], [factory])
  const a = fakeGlasses('stand-in@x.io')
  const session = (await reg.connect(a.connection))?.session
  t.same(standIns, [], 'a fresh session makes no stand-in')
  a.socket.peerDrops()
  await eventually(() => session?.state === 'grace', 'grace')
  const b = fakeGlasses('stand-in@x.io')
  t.equal((await reg.connect(b.connection))?.outcome, 'resumed')
  t.equal(late.built(), 0, 'a resume with a stand-in builds nothing')
  t.same(standIns, [['attach reconnection=true']], 'the stand-in hears of the resume')
  const c = fakeGlasses('stand-in@x.io')
  t.equal((await reg.connect(c.connection))?.outcome, 'replaced')
  t.same(standIns, [['attach reconnection=true', 'attach reconnection=true']], 'one stand-in, told of each reconnection')

  c.socket.peerSends({ type: 'button_press', buttonId: 'main', pressType: 'short' })
  await eventually(() => late.heard.length === 2, 'built and handled')
  t.same(standIns[0]?.at(-1), 'dispose', 'dropped once the managers are built')
  t.same(late.heard, ['attach reconnection=false', 'button_press'])
  c.socket.peerDrops()
  await eventually(() => session?.state === 'grace', 'grace again')
  t.equal((await reg.connect(fakeGlasses('stand-in@x.io').connection))?.outcome, 'resumed')
  t.same(late.heard.at(-1), 'attach reconnection=true', 'built, the managers hear of reconnections themselves')
  t.equal(standIns.length, 1, 'and no stand-in is made again')

  // A session that ends before it needs them disposes its stand-in with it.
  const other = fakeGlasses('stand-in-ends@x.io')
  const ending = (await reg.connect(other.connection))?.session
  other.socket.peerDrops()
  await eventually(() => ending?.state === 'grace', 'grace')
  await reg.connect(fakeGlasses('stand-in-ends@x.io').connection)
  await ending?.dispose('manual')
  t.same(standIns[1], ['attach reconnection=true', 'dispose'])
  t.equal(late.built(), 1, 'the ended session built nothing')
})

t.test('deferred managers: built at the first attach when needed, at a resume, on lookup; a disposed session builds nothing', async t => {
  const needed = deferredFactory(true)
  await registry(t, [], [needed.factory]).connect(fakeGlasses('needed@x.io').connection)
  await eventually(() => needed.built() === 1, 'built at the first attach')
  t.same(needed.heard, ['attach reconnection=false'])

  // A store in memory answers at once: built within the attach, and told of it once, with the managers built before.
  const atOnce = deferredFactory(true, 'at once')
  await registry(t, [], [atOnce.factory]).connect(fakeGlasses('at-once@x.io').connection)
  t.equal(atOnce.built(), 1, 'built by the time the attach is done')
  t.same(atOnce.heard, ['attach reconnection=false'], 'told of the attach once')
  const notNeeded = deferredFactory(false, 'at once')
  await registry(t, [], [notNeeded.factory]).connect(fakeGlasses('not-needed@x.io').connection)
  await delay(20)
  t.equal(notNeeded.built(), 0, 'an answer of no at once builds nothing')
  const failing = deferredFactory(false, 'throws')
  await registry(t, [], [failing.factory]).connect(fakeGlasses('failing@x.io').connection)
  t.equal(failing.built(), 1, 'an answer that fails means yes')

  const resumed = deferredFactory(false)
  const reg = registry(t, [], [resumed.factory])
  const b = fakeGlasses('resume@x.io')
  const session = (await reg.connect(b.connection))?.session
  b.socket.peerDrops()
  await eventually(() => session?.state === 'grace', 'grace')
  t.equal(resumed.built(), 0, 'not built for the first socket, nor at its detach')
  t.equal((await reg.connect(fakeGlasses('resume@x.io').connection))?.outcome, 'resumed')
  t.same(resumed.heard, ['attach reconnection=true'], 'built at the resume, before its attach')

  const looked = deferredFactory(false)
  const other = (await registry(t, [], [looked.factory]).connect(fakeGlasses('lookup@x.io').connection))?.session
  t.equal(other?.find(Object as unknown as new () => Manager)?.name, 'late', 'a lookup builds them')
  t.equal(looked.built(), 1)

  const gone = deferredFactory(false)
  const ended = (await registry(t, [], [gone.factory]).connect(fakeGlasses('gone@x.io').connection))?.session
  await ended?.dispose('manual')
  t.same(ended?.managers, [], 'nothing built after dispose')
  t.equal(gone.built(), 0)
})
