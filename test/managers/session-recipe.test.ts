/**
 * The session recipe without a socket server: for one FakeSession it builds the
 * managers in the documented dispatch order (docs/ARCHITECTURE.md "Managers, and
 * who talks to whom"), heartbeat and token expiry first, and wires the app side
 * to each other and to the node's AppsService.
 */
import t from 'tap'
import { AppLifecycleManager } from '../../managers/app-lifecycle-manager.js'
import { AudioManager } from '../../managers/audio-manager.js'
import { DeviceStateManager } from '../../managers/device-state-manager.js'
import { DisplayManager } from '../../managers/display-manager.js'
import { HeartbeatManager } from '../../managers/heartbeat-manager.js'
import { sessionRecipe } from '../../managers/session-recipe.js'
import { SubscriptionManager } from '../../managers/subscription-manager.js'
import type { GlassesMessage } from '../../protocol/glasses-messages.js'
import type { GlassesConnection } from '../../sessions/glasses-connection.js'
import { HeartbeatSweep } from '../../sessions/heartbeat-sweep.js'
import { silentLog } from '../../sessions/log.js'
import type { Manager, ManagerFactory } from '../../sessions/manager.js'
import { delay, eventually, type Teardown } from '../helper.js'
import { lc3Frames } from '../lc3-vectors.js'
import { appEntry, appsService } from './apps-fixture.js'
import { FakeSession } from './fake-session.js'

const ORDER = ['heartbeat', 'token', 'apps', 'phone', 'transcripts', 'subscriptions', 'audio', 'display', 'device', 'microphone']

/** Build one session's managers as UserSession does: each factory in turn, groups flattened; disposed in teardown. */
function build (t: Teardown, extra: readonly ManagerFactory[] = []) {
  const fixture = appsService(t, [appEntry('com.app'), appEntry('system.dash', { type: 'system_dashboard' })],
    { micDebounceMs: 10, micMinIntervalMs: 300, displayIntervalMs: 10 })
  const session = new FakeSession()
  const heartbeat = new HeartbeatSweep(session.config, silentLog)
  const factories = sessionRecipe({ heartbeat, apps: fixture.service, extra })
  const managers = factories.flatMap(factory => ([] as Manager[]).concat(factory(session)))
  t.teardown(async () => { for (const manager of managers) await manager.dispose('manual') })
  const find = <M extends Manager>(type: abstract new (...args: never[]) => M): M => {
    const found = managers.find((manager): manager is M => manager instanceof type)
    if (found === undefined) throw new Error(`no ${type.name}`)
    return found
  }
  /** The manager that owns a listed message: the first whose handle says so, as the session dispatches. */
  const owner = (message: GlassesMessage): string | null => managers.find(manager => manager.handle?.(message) === true)?.name ?? null
  return { ...fixture, session, heartbeat, factories, managers, find, owner }
}

t.test('the managers, in dispatch order: heartbeat and token expiry first, then extras, then the app side', async t => {
  const { factories, managers } = build(t)
  t.equal(factories.length, 2, 'the session core\'s pair and the app side, as two factories')
  t.same(managers.map(m => m.name), ORDER)
  for (const manager of managers) t.equal(typeof manager.snapshot, 'function', `${manager.name} has a snapshot`)

  const extra: Manager = { name: 'extra', snapshot: () => null, dispose: () => {} }
  const withExtra = build(t, [() => extra, () => [{ ...extra, name: 'extra-2' }]])
  t.same(withExtra.managers.map(m => m.name), ['heartbeat', 'token', 'extra', 'extra-2', ...ORDER.slice(2)],
    'extras after heartbeat and token, before the app side (whose relay would own their messages)')
})

t.test('each call builds a session of its own', async t => {
  const { factories, session, managers } = build(t)
  const again = factories.flatMap(factory => ([] as Manager[]).concat(factory(session)))
  t.teardown(async () => { for (const manager of again) await manager.dispose('manual') })
  t.same(again.map(m => m.name), ORDER)
  t.ok(again.every((manager, i) => manager !== managers[i]), 'no manager shared between sessions')
})

t.test('dispatch: each listed message has the owner the order promises', async t => {
  const { owner, session } = build(t)
  t.equal(owner({ type: 'start_app', packageName: 'com.nope' }), 'apps')
  t.match(session.of('error'), [{ code: 'UNKNOWN_APP' }], 'the app manager answered it')
  t.equal(owner({ type: 'audio_play_response', requestId: 'none' }), 'phone', 'answers to app requests, asked for or not')
  t.equal(owner({ type: 'location_update' }), 'subscriptions', 'a fix that answers no poll: relayed to subscribers')
  t.equal(owner({ type: 'local_transcription', text: 'hi', isFinal: true }), 'transcripts', 'before the subscription relay')
  t.equal(owner({ type: 'button_press', buttonId: 'b', pressType: 'short' }), 'subscriptions')
  t.equal(owner({ type: 'connection_init' }), null, 'control messages are the session\'s own')
})

t.test('the app side is wired: relay outlet, microphone, display and device state', async t => {
  const { session, find } = build(t)
  const subscriptions = find(SubscriptionManager)
  const apps = find(AppLifecycleManager)
  t.equal(subscriptions.outlet, apps.sockets, 'the subscription relay delivers through the app sockets')

  subscriptions.set('com.app', ['audio_chunk'])
  await eventually(() => session.of('microphone_state_change').length === 1, 'the microphone follows subscriptions')
  t.match(session.of('microphone_state_change')[0], { requiredData: ['pcm'], bypassVad: true })

  const device = find(DeviceStateManager)
  const display = find(DisplayManager)
  device.apply({ connected: false }, true)
  display.show('com.app', { type: 'display_event', layout: { layoutType: 'text_wall', text: 'held' } })
  t.same(session.of('display_event'), [], 'the display follows the device state: held while the glasses are away')
  device.apply({ connected: true }, true)
  t.match(session.of('display_event'), [{ packageName: 'com.app', view: 'main', layout: { text: 'held' } }], 'and released when they come')

  display.show('system.dash', { type: 'display_event', view: 'dashboard', layout: { layoutType: 'text_wall', text: 'dash' } })
  display.show('com.app', { type: 'display_event', view: 'dashboard', layout: { layoutType: 'text_wall', text: 'not dash' } })
  await eventually(() => session.of('display_event').length === 3, 'both shown')
  t.same(session.of('display_event').map(m => m.view), ['main', 'dashboard', 'main'],
    'the catalogue says which app is the system dashboard')
})

t.test('the node\'s sweep and LC3 decoding are the ones given', async t => {
  const { managers, heartbeat, decoding, decodingErrors, find } = build(t)
  const beat = find(HeartbeatManager)
  const fake = { id: 'c1', lastInboundAt: Date.now(), ping () {}, terminate () {}, identity: { userId: 'u', subject: 's', expiresAt: null } }
  for (const manager of managers.slice(0, 2)) manager.onAttach?.({ connection: fake as unknown as GlassesConnection, reconnection: false })
  t.ok(heartbeat.has(beat), 'the heartbeat joined the node\'s sweep')
  beat.onDetach()
  t.equal(heartbeat.size, 0)

  find(SubscriptionManager).set('com.app', ['audio_chunk'])
  const audio = find(AudioManager)
  audio.configure({ format: 'lc3', frameSizeBytes: 40 })
  audio.handleBinary(lc3Frames(40).subarray(0, 80))
  t.match(decoding.stats(), { streams: 1, framesDecoded: 2 }, 'decoded by the AppsService\'s decoding')
  t.same(decodingErrors, [])
})

t.test('a reconnection before the app side is built: its stand-in re-sends "off", and the microphone carries on from it', async t => {
  const { factories } = build(t)
  const appSide = factories[1]
  if (appSide?.standIn === undefined) throw new Error('the app side has no stand-in')
  const fake = { id: 'c1' } as unknown as GlassesConnection
  const buildFor = (session: FakeSession): Manager[] => {
    const managers = ([] as Manager[]).concat(appSide(session))
    t.teardown(async () => { for (const manager of managers) await manager.dispose('manual') })
    return managers
  }
  const subscriptionsOf = (managers: Manager[]): SubscriptionManager =>
    managers.find((m): m is SubscriptionManager => m instanceof SubscriptionManager) as SubscriptionManager

  // Told off by the stand-in: the microphone keeps the minimum interval from that message on.
  const session = new FakeSession()
  const standIn = appSide.standIn(session)
  t.teardown(() => { standIn.dispose() })
  standIn.onAttach({ connection: fake, reconnection: false })
  await delay(150)
  t.same(session.of('microphone_state_change'), [], 'a first attach is not a reconnection: nothing to re-send')
  standIn.onAttach({ connection: fake, reconnection: true })
  const attachedAt = Date.now()
  await eventually(() => session.of('microphone_state_change').length === 1, 'off re-sent after the attach')
  const offAt = Date.now()
  t.ok(offAt - attachedAt >= 90, `about 100 ms after the attach (${offAt - attachedAt} ms)`)
  t.match(session.of('microphone_state_change')[0], { isMicrophoneEnabled: false, requiredData: [], bypassVad: false })
  const managers = buildFor(session)
  subscriptionsOf(managers).set('com.app', ['audio_chunk'])
  await eventually(() => session.of('microphone_state_change').length === 2, 'on')
  const onAt = Date.now()
  // The minimum interval here is 300 ms, the debounce 10.
  t.ok(onAt - offAt >= 290, `"on" kept the minimum interval from the stand-in's "off" (${onAt - offAt} ms)`)
  t.match(managers.find(m => m.name === 'microphone')?.snapshot(), { sent: 2 }, 'and counts the stand-in\'s message')

  // Built while the stand-in's re-send was pending: the microphone sends it, once, at its time.
  const early = new FakeSession()
  const pending = appSide.standIn(early)
  t.teardown(() => { pending.dispose() })
  pending.onAttach({ connection: fake, reconnection: true })
  const pendingFrom = Date.now()
  buildFor(early)
  await eventually(() => early.of('microphone_state_change').length === 1, 're-sent by the microphone')
  t.ok(Date.now() - pendingFrom >= 90, 'when the stand-in would have')
  await delay(250)
  t.equal(early.of('microphone_state_change').length, 1, 'once: the stand-in sent nothing more')
})
