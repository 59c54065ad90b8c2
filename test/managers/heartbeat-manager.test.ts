/**
 * The heartbeat manager without a socket server, on the real HeartbeatSweep: pings at
 * the interval, termination after silence, and nothing watched after detach or dispose.
 */
import t from 'tap'
import { HeartbeatManager } from '../../managers/heartbeat-manager.js'
import type { GlassesConnection } from '../../sessions/glasses-connection.js'
import { HeartbeatSweep } from '../../sessions/heartbeat-sweep.js'
import { silentLog } from '../../sessions/log.js'
import { delay, eventually, type Teardown } from '../helper.js'
import { ConfiguredSession } from './fake-session.js'

/**
 * What HeartbeatManager uses of a GlassesConnection: its id, `lastInboundAt` (stamped
 * by the socket's listeners on every frame, ping and pong), `ping()` and `terminate()`.
 */
class FakeConnection {
  readonly pings: number[] = []
  readonly terminations: number[] = []
  lastInboundAt = Date.now()

  /** `answers`: the peer pongs every ping, which stamps the connection as a real socket's pong does. */
  constructor (readonly id: string, private readonly answers: boolean) {}

  ping (): void {
    this.pings.push(Date.now())
    if (this.answers) this.lastInboundAt = Date.now()
  }

  terminate (): void { this.terminations.push(Date.now()) }

  get asConnection (): GlassesConnection { return this as unknown as GlassesConnection }
}

function setup (t: Teardown, timing: { pingIntervalMs: number, silenceTimeoutMs: number }) {
  const session = new ConfiguredSession(timing)
  const sweep = new HeartbeatSweep(timing, silentLog)
  const make = (): HeartbeatManager => {
    const manager = new HeartbeatManager(session, sweep)
    t.teardown(() => manager.dispose())
    return manager
  }
  return { session, sweep, heartbeat: make(), make }
}

const attach = (manager: HeartbeatManager, connection: FakeConnection, reconnection = false): void => {
  manager.onAttach({ connection: connection.asConnection, reconnection })
}

const snapshotOf = (manager: HeartbeatManager) =>
  manager.snapshot() as { pingsSent: number, terminations: number, watched: boolean, lastInboundAt: string | null }

// Silence timeouts are long beside the ping interval wherever a socket must stay: a loaded machine may stall the
// event loop for tens of milliseconds, and a stall longer than the silence timeout would end it, as it should.
t.test('a phone that answers is pinged every PING_INTERVAL_MS, never sooner, and never terminated', async t => {
  const { sweep, heartbeat } = setup(t, { pingIntervalMs: 30, silenceTimeoutMs: 300 })
  const phone = new FakeConnection('c1', true)
  const attachedAt = Date.now()
  attach(heartbeat, phone)
  t.ok(sweep.has(heartbeat), 'watched by the node\'s sweep from the attach')
  t.same(phone.pings, [], 'no ping at the attach')
  await eventually(() => phone.pings.length >= 12 && Date.now() - attachedAt > 300, 'pings past the silence timeout', 3000)
  t.ok((phone.pings[0] as number) >= attachedAt + 15, 'the first at least half an interval after the attach')
  const gaps = phone.pings.slice(1).map((at, i) => at - (phone.pings[i] as number))
  t.ok(gaps.every(gap => gap >= 29), `an interval apart (${gaps.join(', ')} ms)`)
  t.same(phone.terminations, [], 'answered pings keep it alive past SILENCE_TIMEOUT_MS')
  t.match(snapshotOf(heartbeat), { watched: true, terminations: 0 })
  t.ok(snapshotOf(heartbeat).pingsSent >= 12, 'pings counted')
})

t.test('sockets that attach together have their first pings spread over half an interval, then keep the interval', async t => {
  const timing = { pingIntervalMs: 400, silenceTimeoutMs: 4000 }
  const { make } = setup(t, timing)
  const phones = Array.from({ length: 40 }, (_, i) => new FakeConnection(`c${i}`, true))
  const attachedAt = Date.now()
  for (const phone of phones) attach(make(), phone)
  await eventually(() => phones.every(phone => phone.pings.length >= 2), 'two pings each', 5000)
  const firsts = phones.map(phone => (phone.pings[0] as number) - attachedAt)
  // The sweep ticks every 40 ms (a tenth of the interval): a ping is up to a tick late.
  t.ok(firsts.every(ms => ms >= 200 && ms <= 400 + 40 + 60), `each first ping half an interval to an interval after the attach (${firsts.join(', ')} ms)`)
  // Forty uniform draws over 200 ms span less than 100 ms with a probability below 1e-10.
  t.ok(Math.max(...firsts) - Math.min(...firsts) >= 100, `spread, not together (${Math.min(...firsts)} to ${Math.max(...firsts)} ms)`)
  const seconds = phones.map(phone => (phone.pings[1] as number) - (phone.pings[0] as number))
  t.ok(seconds.every(gap => gap >= 399), `the next a whole interval later (${seconds.join(', ')} ms)`)
})

t.test('a silent phone is terminated once SILENCE_TIMEOUT_MS has passed, once, and is watched no more', async t => {
  const { sweep, heartbeat } = setup(t, { pingIntervalMs: 30, silenceTimeoutMs: 240 })
  const phone = new FakeConnection('c1', false)
  const lastHeard = phone.lastInboundAt
  attach(heartbeat, phone)
  await eventually(() => phone.terminations.length > 0, 'terminated', 2000)
  t.ok((phone.terminations[0] as number) - lastHeard >= 240, 'not before the silence timeout')
  t.ok(phone.pings.length >= 2, 'pinged while it could still answer')
  t.notOk(sweep.has(heartbeat), 'removed from the sweep')
  t.equal(sweep.size, 0)
  const pings = phone.pings.length
  await delay(100)
  t.equal(phone.terminations.length, 1, 'terminated once')
  t.equal(phone.pings.length, pings, 'no ping after the termination')
  t.match(snapshotOf(heartbeat), { terminations: 1, watched: false, lastInboundAt: null })
})

t.test('any inbound frame counts: a phone that talks but never pongs stays', async t => {
  const { heartbeat } = setup(t, { pingIntervalMs: 30, silenceTimeoutMs: 200 })
  const phone = new FakeConnection('c1', false)
  attach(heartbeat, phone)
  const talking = setInterval(() => { phone.lastInboundAt = Date.now() }, 10)
  t.teardown(() => clearInterval(talking))
  await delay(450)
  t.same(phone.terminations, [], 'not terminated')
  clearInterval(talking)
  await eventually(() => phone.terminations.length === 1, 'terminated once it stops talking', 2000)
})

t.test('detach and dispose stop the heartbeat; an attach after a detach starts it again', async t => {
  const { sweep, heartbeat } = setup(t, { pingIntervalMs: 20, silenceTimeoutMs: 1000 })
  const first = new FakeConnection('c1', false)
  attach(heartbeat, first)
  await eventually(() => first.pings.length >= 1, 'pinged')
  heartbeat.onDetach()
  t.equal(sweep.size, 0, 'out of the sweep at the detach (the sweep\'s timer stops with its last member)')
  const pings = first.pings.length
  await delay(100)
  t.equal(first.pings.length, pings, 'no ping in grace')
  t.same(first.terminations, [], 'and no termination of a socket already gone')

  const second = new FakeConnection('c2', true)
  attach(heartbeat, second, true)
  await eventually(() => second.pings.length >= 1, 'the resumed socket is pinged')
  heartbeat.dispose()
  heartbeat.dispose()
  t.equal(sweep.size, 0, 'out of the sweep at dispose, which may be called twice')
  const after = second.pings.length
  await delay(80)
  t.equal(second.pings.length, after, 'nothing after dispose')
  t.equal(first.pings.length, pings, 'nor to the old socket')
})

t.test('a replacing socket is watched instead of the old one (no detach in between)', async t => {
  const { sweep, heartbeat } = setup(t, { pingIntervalMs: 20, silenceTimeoutMs: 200 })
  const old = new FakeConnection('old', false)
  attach(heartbeat, old)
  await eventually(() => old.pings.length >= 1, 'the old socket pinged')
  const replacing = new FakeConnection('new', true)
  attach(heartbeat, replacing, true)
  const oldPings = old.pings.length
  t.equal(sweep.size, 1, 'one member per session')
  await delay(300)
  t.ok(replacing.pings.length >= 3, 'the new socket is pinged')
  t.equal(old.pings.length, oldPings, 'the old one no more')
  t.same(old.terminations, [], 'the old socket\'s silence is not this session\'s concern')
  t.same(replacing.terminations, [], 'the new one answers')
})

t.test('one sweep serves every session: a silent one ends, the others carry on', async t => {
  const { sweep, heartbeat, make } = setup(t, { pingIntervalMs: 20, silenceTimeoutMs: 200 })
  const other = make()
  const silent = new FakeConnection('silent', false)
  const alive = new FakeConnection('alive', true)
  attach(heartbeat, silent)
  attach(other, alive)
  t.equal(sweep.size, 2)
  await eventually(() => silent.terminations.length === 1, 'the silent one terminated', 2000)
  t.notOk(sweep.has(heartbeat))
  t.ok(sweep.has(other), 'the other still watched')
  const pings = alive.pings.length
  await eventually(() => alive.pings.length >= pings + 2, 'the other still pinged')
  t.same(alive.terminations, [])
})
