/**
 * Token expiry without a socket server: the socket is closed 1008 "token expired"
 * when the token's `exp` (plus the clock tolerance) passes, and not otherwise.
 */
import t from 'tap'
import { TokenExpiryManager } from '../../managers/token-expiry-manager.js'
import { CloseCode } from '../../protocol/close-codes.js'
import type { GlassesConnection, GlassesIdentity } from '../../sessions/glasses-connection.js'
import { HeartbeatSweep } from '../../sessions/heartbeat-sweep.js'
import { silentLog } from '../../sessions/log.js'
import { Resources } from '../../sessions/resources.js'
import { delay, eventually, type Teardown } from '../helper.js'
import { ConfiguredSession } from './fake-session.js'

/** What TokenExpiryManager uses of a GlassesConnection: the token's identity and `close()`. */
class FakeConnection {
  readonly closes: Array<{ code: number, reason: string | undefined, at: number }> = []
  readonly identity: GlassesIdentity

  constructor (expiresAt: number | null) {
    this.identity = { userId: 'unit@example.com', subject: 'sub', expiresAt }
  }

  close (code: number, reason?: string): void { this.closes.push({ code, reason, at: Date.now() }) }

  get asConnection (): GlassesConnection { return this as unknown as GlassesConnection }
}

/** Timers may fire a millisecond early by Date.now(). */
const SLACK_MS = 2

function setup (t: Teardown, tokenClockToleranceMs = 0) {
  const res = new Resources()
  const expiry = new TokenExpiryManager(new ConfiguredSession({ tokenClockToleranceMs }), res)
  t.teardown(() => expiry.dispose())
  const attach = (connection: FakeConnection, reconnection = false): void =>
    expiry.onAttach({ connection: connection.asConnection, reconnection })
  return { res, expiry, attach }
}

t.test('closed 1008 "token expired" when exp passes, not before', async t => {
  const { expiry, attach } = setup(t)
  const expiresAt = Date.now() + 80
  const phone = new FakeConnection(expiresAt)
  attach(phone)
  t.same(expiry.snapshot(), { expiresAt: new Date(expiresAt).toISOString() })
  await delay(30)
  t.same(phone.closes, [], 'still valid')
  await eventually(() => phone.closes.length === 1, 'closed', 2000)
  t.match(phone.closes[0], { code: CloseCode.POLICY_VIOLATION, reason: 'token expired' })
  t.ok((phone.closes[0]?.at ?? 0) >= expiresAt - SLACK_MS, 'at or after exp')
  await delay(30)
  t.equal(phone.closes.length, 1, 'once')
})

t.test('the clock tolerance is added to exp', async t => {
  const { attach } = setup(t, 100)
  const expiresAt = Date.now() + 20
  const phone = new FakeConnection(expiresAt)
  attach(phone)
  await delay(70)
  t.same(phone.closes, [], 'exp passed, but not exp + tolerance')
  await eventually(() => phone.closes.length === 1, 'closed', 2000)
  t.ok((phone.closes[0]?.at ?? 0) >= expiresAt + 100 - SLACK_MS, 'at or after exp + TOKEN_CLOCK_TOLERANCE_MS')
})

t.test('a token without exp is never closed for it: no timer at all', async t => {
  const { res, expiry, attach } = setup(t)
  const phone = new FakeConnection(null)
  attach(phone)
  t.equal(res.size, 0, 'nothing scheduled')
  t.same(expiry.snapshot(), { expiresAt: null })
  await delay(30)
  t.same(phone.closes, [])
})

t.test('a token already expired at the attach is closed on the next turn', async t => {
  const { attach } = setup(t)
  const phone = new FakeConnection(Date.now() - 1000)
  attach(phone)
  t.same(phone.closes, [], 'not from inside the attach')
  await eventually(() => phone.closes.length === 1, 'closed', 500)
  t.equal(phone.closes[0]?.code, CloseCode.POLICY_VIOLATION)
})

t.test('detach and dispose cancel the timer; a later attach schedules again', async t => {
  const { res, expiry, attach } = setup(t)
  const first = new FakeConnection(Date.now() + 40)
  attach(first)
  t.equal(res.size, 1)
  expiry.onDetach()
  t.equal(res.size, 0, 'cancelled at the detach')
  await delay(80)
  t.same(first.closes, [], 'a socket gone to grace is not closed again')

  const second = new FakeConnection(Date.now() + 40)
  attach(second, true)
  t.equal(res.size, 1, 'scheduled for the resumed socket')
  expiry.dispose()
  expiry.dispose()
  t.equal(res.size, 0, 'cancelled at dispose, which may be called twice')
  await delay(80)
  t.same(second.closes, [])
  attach(new FakeConnection(Date.now()))
  t.equal(res.size, 0, 'a disposed manager schedules nothing')
})

t.test('a socket that replaces another with a fresh token: only the new token counts', async t => {
  const { attach } = setup(t)
  const old = new FakeConnection(Date.now() + 40)
  attach(old)
  const fresh = new FakeConnection(Date.now() + 150)
  attach(fresh, true)
  await delay(90)
  t.same(old.closes, [], 'the old token\'s timer went with the old socket')
  t.same(fresh.closes, [], 'the new one is still valid')
  await eventually(() => fresh.closes.length === 1, 'the new one closed at its own exp', 2000)
  t.same(old.closes, [])
})

t.test('an exp beyond setTimeout\'s range is reached in steps, not fired at once', async t => {
  const { res, expiry, attach } = setup(t)
  // Node fires a timer longer than 2^31 - 1 ms after 1 ms, with a warning.
  const expiresAt = Date.now() + 2 ** 31 + 60_000
  const phone = new FakeConnection(expiresAt)
  attach(phone)
  await delay(50)
  t.same(phone.closes, [], 'not closed')
  t.equal(res.size, 1, 'one step waiting')
  t.same(expiry.snapshot(), { expiresAt: new Date(expiresAt).toISOString() })
})

t.test('with the node\'s sweep: a far exp waits in the sweep, no timer, and the timer is armed two ticks before it', async t => {
  const sweep = new HeartbeatSweep({ pingIntervalMs: 100, silenceTimeoutMs: 100 }, silentLog)
  const res = new Resources()
  const expiry = new TokenExpiryManager(new ConfiguredSession({ tokenClockToleranceMs: 0 }), res, sweep)
  t.teardown(() => expiry.dispose())
  const expiresAt = Date.now() + 150
  const phone = new FakeConnection(expiresAt)
  expiry.onAttach({ connection: phone.asConnection, reconnection: false })
  t.equal(res.size, 0, 'no timer yet')
  t.equal(sweep.size, 1, 'waiting in the sweep')
  await eventually(() => res.size === 1, 'timer armed near exp', 2000)
  t.equal(sweep.size, 0, 'out of the sweep once the timer is armed')
  t.same(phone.closes, [], 'not closed before exp')
  await eventually(() => phone.closes.length === 1, 'closed', 2000)
  t.ok((phone.closes[0]?.at ?? 0) >= expiresAt - SLACK_MS, 'at or after exp, as with a timer alone')

  const later = new FakeConnection(Date.now() + 10_000)
  expiry.onAttach({ connection: later.asConnection, reconnection: true })
  t.equal(sweep.size, 1)
  expiry.onDetach()
  t.equal(sweep.size, 0, 'out of the sweep at the detach')
  expiry.onAttach({ connection: later.asConnection, reconnection: true })
  expiry.dispose()
  t.equal(sweep.size, 0, 'and at dispose')
  expiry.onAttach({ connection: later.asConnection, reconnection: true })
  t.equal(sweep.size + res.size, 0, 'a disposed manager waits for nothing')
})
