/**
 * Property-based (fast-check): random sequences of glasses frames, drops,
 * reconnects and app traffic never throw out of a handler, never leave a session
 * in an illegal state, and never leak a timer once the session is disposed.
 */
import fc from 'fast-check'
import t from 'tap'
import { admin, connectAcked, delay, eventually, type Client } from '../helper.js'
import { hostileWorld } from './harness.js'

type Step =
  | { kind: 'text', frame: string }
  | { kind: 'json', message: Record<string, unknown> }
  | { kind: 'binary', size: number }
  | { kind: 'drop' }
  | { kind: 'reconnect' }
  | { kind: 'app', message: Record<string, unknown> }

const glassesMessage = fc.oneof(
  fc.record({ type: fc.constantFrom('ping', 'pong', 'connection_init') }),
  fc.record({ type: fc.constant('button_press'), buttonId: fc.string({ maxLength: 8 }), pressType: fc.constantFrom('short', 'long', 'other') }),
  fc.record({ type: fc.constant('local_transcription'), text: fc.string(), isFinal: fc.boolean(), transcribeLanguage: fc.constantFrom('en-US', 'fr-FR', 'x') }),
  fc.record({ type: fc.constant('touch_event'), gesture_name: fc.string({ maxLength: 12 }) }),
  fc.record({ type: fc.constantFrom('start_app', 'stop_app'), packageName: fc.constantFrom('com.example.hostile', 'com.none', '') }),
  fc.record({ type: fc.string({ maxLength: 12 }) }),
  fc.dictionary(fc.string({ maxLength: 6 }), fc.jsonValue({ maxDepth: 3 }))
)

const step: fc.Arbitrary<Step> = fc.oneof(
  { weight: 5, arbitrary: glassesMessage.map(message => ({ kind: 'json' as const, message })) },
  { weight: 2, arbitrary: fc.string({ maxLength: 40 }).map(frame => ({ kind: 'text' as const, frame })) },
  { weight: 1, arbitrary: fc.integer({ min: 1, max: 2048 }).map(size => ({ kind: 'binary' as const, size })) },
  { weight: 1, arbitrary: fc.constant({ kind: 'drop' as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'reconnect' as const }) },
  {
    weight: 2,
    arbitrary: fc.oneof(
      fc.record({ type: fc.constant('subscription_update'), subscriptions: fc.array(fc.constantFrom('button_press', 'audio_chunk', 'transcription', 'touch_event:x', 'VAD', 'bogus'), { maxLength: 4 }) }),
      fc.record({ type: fc.constant('display_event'), layout: fc.record({ layoutType: fc.constant('text_wall'), text: fc.string() }) }),
      fc.dictionary(fc.string({ maxLength: 6 }), fc.jsonValue({ maxDepth: 2 }))
    ).map(message => ({ kind: 'app' as const, message }))
  }
)

t.test('random sequences keep every session legal, leak no timer, and spare the bystander', async t => {
  // Any number of reconnects in a row: the takeover cool-down (tested on its own) must not refuse them.
  const w = await hostileWorld(t, { maxBadFrames: 1000, gracePeriodMs: 60_000, logLevel: 'error', takeoverLimit: 1000 })
  const timersAtRest = (): number => process.getActiveResourcesInfo().filter(r => r === 'Timeout').length
  const baseline = timersAtRest()
  let run = 0
  await fc.assert(fc.asyncProperty(fc.array(step, { minLength: 1, maxLength: 30 }), async steps => {
    const user = `prop${++run}@example.com`
    let glasses: Client | null = (await connectAcked(t, w.server, user)).client
    const { client: app } = await w.startApp(glasses, user)
    for (const s of steps) {
      if (s.kind === 'drop') { glasses?.terminate(); glasses = null; continue }
      if (s.kind === 'reconnect') { glasses = (await connectAcked(t, w.server, user)).client; continue }
      if (s.kind === 'app') { if (app.closeCode === null) app.send(s.message); continue }
      if (glasses === null || glasses.closeCode !== null) continue
      if (s.kind === 'text') glasses.send(s.frame)
      else if (s.kind === 'json') glasses.send(s.message)
      else glasses.ws.send(Buffer.alloc(s.size))
    }
    await delay(20)
    const session = w.server.app.sessions.get(user)
    if (session !== undefined) {
      if (!['active', 'grace'].includes(session.state)) throw new Error(`illegal state ${session.state}`)
      if (session.state === 'active' && session.currentConnection === null) throw new Error('active without a socket')
      if (session.state === 'grace' && session.times.graceExpiresAt === null) throw new Error('grace without a timer')
    }
    const res = await admin(w.server, 'DELETE', `/sessions/${user}`)
    if (![204, 404].includes(res.statusCode)) throw new Error(`delete answered ${res.statusCode}`)
    await eventually(() => w.server.app.sessions.get(user) === undefined, 'disposed')
  }), { numRuns: 40 })
  // Timers owned by the disposed sessions are gone; what is left belongs to the bystander and the server.
  await delay(50)
  t.ok(timersAtRest() <= baseline, `no timer leaked (${timersAtRest()} now, ${baseline} before)`)
  t.equal(w.server.logs().filter(l => Number(l.level) >= 50).length, 0, 'nothing was logged at error level: no handler threw')
  await w.checkBystander(t, 'after the property run')
})
