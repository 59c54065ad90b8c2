/**
 * The session core alone: a UserSession built from a small recipe of recording
 * managers, fed GlassesConnections over in-memory FakeSockets. No server, no
 * registry: the hooks do what the registry would (expire on the grace timer,
 * dispose on a fatal error) and write everything down.
 */
import t from 'tap'
import type { GlassesMessage, UnlistedGlassesMessage } from '../../protocol/glasses-messages.js'
import type { DisposeFailure, DisposeReason, LifecycleEvent } from '../../sessions/lifecycle.js'
import { silentLog } from '../../sessions/log.js'
import { NodeEvents } from '../../sessions/node-events.js'
import type { AttachContext, DetachContext, Manager, ManagerFactory, SessionContext } from '../../sessions/manager.js'
import type { SessionConfig } from '../../sessions/session-config.js'
import { SessionGoneError, UserSession, type SessionHooks } from '../../sessions/user-session.js'
import { ABNORMAL_CLOSURE } from '../fake-socket.js'
import { delay, eventually, type Teardown } from '../helper.js'
import { fakeGlasses, sessionConfig, type FakeGlasses } from './fake-glasses.js'

const USER = 'unit@x.io'

/** A manager that writes each call into a journal shared by the session's managers. */
class RecordingManager implements Manager {
  /** Whether `handle` claims a message type (dispatch stops there). */
  owns: (type: string) => boolean = () => false
  /** What `dispose` does: nothing, throw, reject, or never settle. */
  disposal: 'ok' | 'throw' | 'reject' | 'hang' = 'ok'
  /** A throw from `handle`, for the fatal-error path. */
  failOn: string | null = null

  constructor (readonly name: string, private readonly journal: string[], private readonly session: SessionContext) {}

  onAttach (ctx: AttachContext): void {
    this.journal.push(`${this.name} attach ${ctx.connection.id} reconnection=${String(ctx.reconnection)}`)
  }

  onDetach (ctx: DetachContext): void { this.journal.push(`${this.name} detach ${ctx.connectionId} ${ctx.closeCode}`) }

  handle (message: GlassesMessage): boolean {
    if (message.type === this.failOn) throw new Error(`${this.name} failed on ${message.type}`)
    this.journal.push(`${this.name} handle ${message.type}`)
    return this.owns(message.type)
  }

  handleUnlisted (message: UnlistedGlassesMessage): void { this.journal.push(`${this.name} unlisted ${message.type}`) }

  handleBinary (data: Buffer): void { this.journal.push(`${this.name} binary ${data.length}`) }

  snapshot (): unknown { return { phoneConnected: this.session.phoneConnected } }

  dispose (reason?: DisposeReason): Promise<void> | void {
    this.journal.push(`${this.name} dispose ${reason ?? ''}`)
    switch (this.disposal) {
      case 'throw': throw new Error(`${this.name} cannot dispose`)
      case 'reject': return Promise.reject(new Error(`${this.name} cannot dispose either`))
      case 'hang': return new Promise<void>(() => {})
      default:
    }
  }
}

interface Built {
  session: UserSession
  managers: RecordingManager[]
  journal: string[]
  events: LifecycleEvent[]
  disposedWith: DisposeReason[]
  disposeFailures: DisposeFailure[]
  fatalErrors: unknown[]
  traffic: string[]
  /** How many times the recipe ran. */
  builds: () => number
  glasses: () => FakeGlasses
}

/** A session of recording managers named `names`, disposed in teardown. */
function build (t: Teardown, names: readonly string[] = ['first', 'second'], config: SessionConfig = sessionConfig): Built {
  const journal: string[] = []
  const events: LifecycleEvent[] = []
  const disposedWith: DisposeReason[] = []
  const disposeFailures: DisposeFailure[] = []
  const fatalErrors: unknown[] = []
  const traffic: string[] = []
  const managers: RecordingManager[] = []
  let builds = 0
  const recipe: ManagerFactory[] = [session => {
    builds += 1
    const made = names.map(name => new RecordingManager(name, journal, session))
    managers.push(...made)
    return made
  }]
  const nodeEvents = new NodeEvents(silentLog)
  nodeEvents.on('session.lifecycle', event => { events.push(event) })
  nodeEvents.on('glasses.traffic', (direction, kind, bytes) => { traffic.push(`${direction} ${kind} ${bytes}`) })
  nodeEvents.on('session.dispose_failed', failure => { disposeFailures.push(failure) })
  // What the registry does with each hook, minus its lock.
  const hooks: SessionHooks = {
    graceTimerFired: (session, epoch) => { void session.expireGrace(epoch) },
    fatalError: (session, error) => { fatalErrors.push(error); void session.dispose('fatal_error') },
    disposed: (_session, reason) => { disposedWith.push(reason) },
    changed: () => {},
    events: nodeEvents
  }
  const session = new UserSession({ userId: USER, config, log: silentLog, hooks, managerFactories: recipe })
  t.teardown(async () => { await session.dispose('shutdown') })
  return {
    session,
    managers,
    journal,
    events,
    disposedWith,
    disposeFailures,
    fatalErrors,
    traffic,
    builds: () => builds,
    glasses: () => fakeGlasses(USER, config)
  }
}

const names = (events: LifecycleEvent[]): string[] => events.map(e => e.event)

t.test('attach: the ack goes first, then the managers start, then the frames that waited', async t => {
  const { session, journal, events, glasses } = build(t)
  const { socket, connection } = glasses()
  socket.peerSends({ type: 'ping' })
  const seenAtAttach: string[][] = []
  journal.push = (entry: string) => { seenAtAttach.push(socket.types()); return Array.prototype.push.call(journal, entry) }

  t.equal(session.attach(connection), 'created')
  t.same(socket.types(), ['connection_ack', 'pong'], 'the early ping is answered after the ack')
  t.same(seenAtAttach[0], ['connection_ack'], 'managers start after the ack and before any early frame')
  t.match(socket.messages()[0], {
    type: 'connection_ack',
    sessionId: USER,
    sessionInstanceId: session.sessionInstanceId,
    connectionId: connection.id,
    reconnection: false,
    heartbeat: { pingIntervalMs: sessionConfig.pingIntervalMs, silenceTimeoutMs: sessionConfig.silenceTimeoutMs },
    userSession: { userId: USER, activeAppSessions: [] }
  })
  t.same(journal, [`first attach ${connection.id} reconnection=false`, `second attach ${connection.id} reconnection=false`])
  t.equal(session.state, 'active')
  t.equal(session.phoneConnected, true)
  t.equal(session.currentConnection, connection)
  t.same(names(events), ['session.created', 'session.attached'])
  t.match(events[1], { connectionId: connection.id, reason: 'created', reconnections: 0, nodeId: 'unit' })
})

t.test('detach, grace, resume: the socket is swapped and nothing is restarted', async t => {
  const { session, managers, journal, events, builds, glasses } = build(t)
  const a = glasses()
  session.attach(a.connection)
  const instance = session.sessionInstanceId
  const before = [...session.managers]

  a.socket.peerCloses(1000)
  await a.socket.closed()
  t.equal(session.state, 'grace')
  t.equal(session.phoneConnected, false)
  t.equal(session.send({ type: 'pong', timestamp: '' }), false, 'nothing to send to in grace')
  t.ok((session.times.graceExpiresAt ?? 0) > Date.now(), 'the grace period has an end')
  t.same(journal.slice(2), [`first detach ${a.connection.id} 1000`, `second detach ${a.connection.id} 1000`])

  const b = glasses()
  t.equal(session.attach(b.connection), 'resumed')
  t.equal(session.sessionInstanceId, instance)
  t.equal(session.reconnections, 1)
  t.match(b.socket.messages()[0], { type: 'connection_ack', reconnection: true, sessionInstanceId: instance, connectionId: b.connection.id })
  t.equal(builds(), 1, 'the recipe ran once')
  t.same(session.managers, before, 'the same manager objects')
  t.equal(managers.length, 2)
  t.notOk(journal.some(entry => entry.includes('dispose')), 'no manager was disposed')
  t.same(journal.slice(4), [`first attach ${b.connection.id} reconnection=true`, `second attach ${b.connection.id} reconnection=true`])
  t.equal(session.times.graceExpiresAt, null)

  session.onText(a.connection, '{"type":"ping"}', 15)
  session.onClose(a.connection, 1006)
  t.same(b.socket.types(), ['connection_ack'], 'the old socket is heard no more')

  await delay(sessionConfig.gracePeriodMs * 2)
  t.equal(session.state, 'active', 'the grace timer was cancelled by the resume')
  t.same(names(events), ['session.created', 'session.attached', 'session.detached', 'session.resumed', 'session.attached'])
  t.match(events[2], { connectionId: a.connection.id, closeCode: 1000, reason: 'client_closed' })
  t.match(events[3], { connectionId: b.connection.id, reconnections: 1 })
  t.ok((events[3]?.downtimeMs ?? -1) >= 0, 'the resume says how long the glasses were away')
  t.match(events[4], { connectionId: b.connection.id, reason: 'resumed' })
})

t.test('the grace period runs out: disposed with grace_expired, and takes no socket after', async t => {
  const { session, journal, events, disposedWith, glasses } = build(t)
  const a = glasses()
  session.attach(a.connection)
  a.socket.peerDrops()
  await a.socket.closed()
  t.equal(session.state, 'grace')
  t.equal(session.expireGrace(0), null, 'a timer of another grace period is ignored')
  t.equal(session.state, 'grace')
  await eventually(() => session.state === 'disposed', 'disposed after the grace period', 1000)
  t.same(disposedWith, ['grace_expired'])
  t.same(journal.filter(entry => entry.includes('dispose')), ['first dispose grace_expired', 'second dispose grace_expired'])
  t.same(names(events), ['session.created', 'session.attached', 'session.detached', 'session.disposed'])
  t.match(events[2], { closeCode: ABNORMAL_CLOSURE, reason: 'client_closed' })
  t.match(events[3], { reason: 'grace_expired', failures: [] })
  t.throws(() => session.attach(glasses().connection), SessionGoneError)
})

t.test('dispose: managers that throw, reject or hang never stop the others, and the wait is bounded', async t => {
  const { session, managers, journal, events, disposedWith, disposeFailures, glasses } = build(t, ['a', 'throws', 'hangs', 'rejects', 'z'])
  const [, throws, hangs, rejects] = managers
  if (throws === undefined || hangs === undefined || rejects === undefined) throw new Error('five managers')
  throws.disposal = 'throw'
  hangs.disposal = 'hang'
  rejects.disposal = 'reject'
  const { socket, connection } = glasses()
  session.attach(connection)

  const started = Date.now()
  const disposal = session.dispose('manual')
  t.equal(session.state, 'disposing', 'disposing at once')
  t.equal(session.dispose('shutdown'), disposal, 'a second call shares the first disposal')
  const outcome = await disposal
  t.ok(Date.now() - started < 1000, 'bounded by managerDisposeTimeoutMs')
  t.same(outcome.failures.map(({ manager, kind }) => ({ manager, kind })), [
    { manager: 'throws', kind: 'error' }, { manager: 'hangs', kind: 'timeout' }, { manager: 'rejects', kind: 'error' }
  ])
  t.same(journal.filter(entry => entry.includes('dispose')).sort(),
    ['a dispose manual', 'hangs dispose manual', 'rejects dispose manual', 'throws dispose manual', 'z dispose manual'], 'every manager was asked')
  t.equal(session.state, 'disposed')
  t.same(disposedWith, ['manual'])
  t.equal(disposeFailures.length, 3, 'each failure reported to the hook')
  t.same(socket.closeSent, { code: 4002, reason: 'session ended by an admin' }, 'the socket gets the code of the reason')
  t.match(events.at(-1), { event: 'session.disposed', reason: 'manual', closeCode: 4002, failures: [{ manager: 'throws', kind: 'error' }, { manager: 'hangs', kind: 'timeout' }, { manager: 'rejects', kind: 'error' }] })
  t.equal(await socket.closed(), 4002)
  t.equal(events.filter(e => e.event === 'session.detached').length, 0, 'a disposed session does not detach')
})

t.test('a newer socket replaces the live one: the old one is closed 4001 and deaf', async t => {
  const { session, journal, events, glasses } = build(t)
  const a = glasses()
  const b = glasses()
  session.attach(a.connection)
  t.equal(session.attach(b.connection), 'replaced')
  t.same(a.socket.closeSent, { code: 4001, reason: 'replaced by a newer connection' })
  t.equal(a.connection.closeCodeSent, 4001)
  a.socket.peerSends({ type: 'ping' })
  t.same(a.socket.types(), ['connection_ack'], 'a frame behind the replacement gets no answer')
  await a.socket.closed()
  t.equal(session.state, 'active', 'its close starts no grace period')
  t.equal(session.currentConnection, b.connection)
  t.match(b.socket.messages()[0], { type: 'connection_ack', reconnection: true })
  t.equal(journal.at(-1), `second attach ${b.connection.id} reconnection=true`)
  t.same(names(events), ['session.created', 'session.attached', 'session.replaced', 'session.attached'])
  t.match(events[2], { connectionId: b.connection.id, reason: `replaced ${a.connection.id}` })
})

t.test('each bad frame is answered; one past maxBadFrames closes 1008 and detaches as server_closed', async t => {
  const { session, events, traffic, glasses } = build(t)
  const { socket, connection } = glasses()
  session.attach(connection)
  for (let i = 0; i < sessionConfig.maxBadFrames; i++) socket.peerSends('not json')
  t.equal(socket.closeSent, null, `${sessionConfig.maxBadFrames} bad frames are tolerated`)
  socket.peerSends('{"no":"type"}')
  t.same(socket.closeSent, { code: 1008, reason: 'too many bad frames' })
  t.same(socket.messages().slice(1).map(m => m.code), ['MALFORMED_MESSAGE', 'MALFORMED_MESSAGE', 'MALFORMED_MESSAGE', 'MALFORMED_MESSAGE'])
  t.equal(traffic.filter(entry => entry.startsWith('in invalid')).length, 4)
  await socket.closed()
  t.equal(session.state, 'grace')
  t.match(events.at(-1), { event: 'session.detached', closeCode: 1008, reason: 'server_closed' })
})

t.test('dispatch: a listed message stops at its owner; unlisted ones reach all and are reported once; audio reaches all', async t => {
  const { session, managers, journal, glasses } = build(t)
  const [first] = managers
  if (first === undefined) throw new Error('two managers')
  first.owns = type => type === 'button_press'
  const { socket, connection } = glasses()
  session.attach(connection)
  journal.length = 0
  socket.peerSends({ type: 'button_press', buttonId: 'b', pressType: 'short' })
  socket.peerSends({ type: 'head_position', position: 'up' })
  socket.peerSends({ type: 'custom_thing' })
  socket.peerSends({ type: 'custom_thing' })
  socket.peerSendsBinary(Buffer.alloc(40))
  t.same(journal, [
    'first handle button_press',
    'first handle head_position', 'second handle head_position',
    'first unlisted custom_thing', 'second unlisted custom_thing',
    'first unlisted custom_thing', 'second unlisted custom_thing',
    'first binary 40', 'second binary 40'
  ])
  t.same(socket.messages().filter(m => m.type === 'error').map(m => m.code), ['UNKNOWN_TYPE'], 'told once per unlisted type')
  t.match(session.stats.counts(), { messagesIn: 4, audioChunks: 1, audioBytes: 40 }, 'every text frame counts in, audio apart')
})

t.test('a manager that throws on a message ends this session with fatal_error (1011)', async t => {
  const { session, managers, fatalErrors, events, glasses } = build(t)
  const [, second] = managers
  if (second === undefined) throw new Error('two managers')
  second.failOn = 'button_press'
  const { socket, connection } = glasses()
  session.attach(connection)
  socket.peerSends({ type: 'button_press', buttonId: 'b', pressType: 'short' })
  t.equal(fatalErrors.length, 1)
  t.match(fatalErrors[0], { message: 'second failed on button_press' })
  await eventually(() => session.state === 'disposed', 'disposed')
  t.same(socket.closeSent, { code: 1011, reason: 'internal error' })
  t.match(events.at(-1), { event: 'session.disposed', reason: 'fatal_error', closeCode: 1011 })
})

t.test('who closed the socket shows in the detach: silence, and a peer too slow to read', async t => {
  const silent = build(t)
  const quiet = silent.glasses()
  silent.session.attach(quiet.connection)
  quiet.connection.terminate()
  await quiet.socket.closed()
  t.match(silent.events.at(-1), { event: 'session.detached', reason: 'silence', closeCode: ABNORMAL_CLOSURE })

  const slow = build(t)
  const behind = slow.glasses()
  slow.session.attach(behind.connection)
  behind.socket.peerStopsReading()
  const big = { type: 'display_event', text: 'x'.repeat(sessionConfig.maxBufferedBytes) }
  t.equal(slow.session.send(big), false, 'the send that overflows counts as not sent')
  t.same(behind.socket.closeSent, { code: 4009, reason: 'slow consumer' })
  await behind.socket.closed()
  t.match(slow.events.at(-1), { event: 'session.detached', reason: 'server_closed', closeCode: 4009 })
})

t.test('connection_init on a live socket is acked again, the same way', async t => {
  const { session, glasses } = build(t)
  const a = glasses()
  session.attach(a.connection)
  a.socket.peerDrops()
  await a.socket.closed()
  const b = glasses()
  session.attach(b.connection)
  b.socket.peerSends({ type: 'connection_init' })
  const acks = b.socket.messages().filter(m => m.type === 'connection_ack')
  t.equal(acks.length, 2)
  t.match(acks[1], { reconnection: true, connectionId: b.connection.id, sessionInstanceId: session.sessionInstanceId })
})
