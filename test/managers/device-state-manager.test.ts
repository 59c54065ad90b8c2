/**
 * The device state manager without a socket server: which keys of a phone's report
 * are news to the apps, and who hears that the glasses came or went.
 */
import t from 'tap'
import { DeviceStateManager, type AppBroadcast, type GlassesConnectionFollower } from '../../managers/device-state-manager.js'

class Broadcasts implements AppBroadcast {
  readonly sent: Array<{ type: string, [key: string]: unknown }> = []
  broadcast (message: { type: string, [key: string]: unknown }): void { this.sent.push(message) }
  /** The `state` of each device_state_update. */
  get states (): unknown[] { return this.sent.map(m => m.state) }
}

class Follower implements GlassesConnectionFollower {
  readonly heard: boolean[] = []
  glassesConnection (connected: boolean): void { this.heard.push(connected) }
}

function setup () {
  const apps = new Broadcasts()
  const microphone = new Follower()
  const display = new Follower()
  const device = new DeviceStateManager(apps, [microphone, display])
  return { apps, microphone, display, device }
}

t.test('the first report goes to the apps whole; later ones only with the keys that changed', async t => {
  const { apps, device } = setup()
  const before = Date.now()
  t.same(device.apply({ connected: true, modelName: 'Even G1', batteryLevel: 80 }, true),
    { isGlassesConnected: true, isPhoneConnected: true, modelName: 'Even G1' })
  t.match(apps.sent[0], { type: 'device_state_update', state: { connected: true, modelName: 'Even G1', batteryLevel: 80 }, fullSnapshot: false })
  t.ok(Date.parse(apps.sent[0]?.timestamp as string) >= before - 1, 'a timestamp of now')
  device.apply({ connected: true, modelName: 'Even G1', batteryLevel: 75, wifiSsid: 'home' }, true)
  t.same(apps.states[1], { batteryLevel: 75, wifiSsid: 'home' }, 'unchanged keys left out; new keys are news too')
  device.apply({ connected: true, batteryLevel: 75, brightness: undefined }, false)
  t.equal(apps.sent.length, 2, 'nothing changed (an undefined value is no value): no update')
  t.same(device.snapshot(), {
    state: { connected: true, modelName: 'Even G1', batteryLevel: 75, wifiSsid: 'home' }, glassesConnected: true, updates: 2
  })
})

t.test('the glasses\' connection: `connected` when sent, else a non-empty modelName', async t => {
  const { apps, device } = setup()
  t.match(device.apply({ modelName: 'Mentra Live' }, true), { isGlassesConnected: true, modelName: 'Mentra Live' })
  t.same(apps.states[0], { modelName: 'Mentra Live', connected: true }, 'the derived `connected` is told to the apps')
  t.same(device.apply({ modelName: '' }, true), { isGlassesConnected: false, isPhoneConnected: true, modelName: '' })
  t.same(apps.states[1], { modelName: '', connected: false })
  t.match(device.apply({ connected: true, modelName: null }, true), { isGlassesConnected: true }, 'an explicit `connected` wins')
  t.same(apps.states[2], { connected: true, modelName: null })
  t.match(device.apply({ batteryLevel: 3 }, true), { isGlassesConnected: true }, 'a report without either keeps what was known')
})

t.test('followers hear each change of the connection, once, and not a repeat', async t => {
  const { microphone, display, device } = setup()
  device.apply({ batteryLevel: 50 }, true)
  t.same(display.heard, [], 'no word on the connection: nothing to tell')
  device.apply({ connected: false }, true)
  device.apply({ connected: false, batteryLevel: 49 }, true)
  device.apply({ connected: true }, true)
  device.apply({ modelName: 'Even G1' }, true)
  t.same(microphone.heard, [false, true], 'a repeated state is not news')
  t.same(display.heard, [false, true], 'every follower, in the same order')
})

t.test('unknown until the phone reports: only an explicit "not connected" holds displays', async t => {
  const { device } = setup()
  t.ok(device.glassesConnected, 'unknown counts as connected')
  t.same((device.snapshot() as { glassesConnected: unknown }).glassesConnected, null, 'and is shown as unknown')
  device.apply({ connected: false }, true)
  t.notOk(device.glassesConnected)
  t.same(device.apply({}, false), { isGlassesConnected: false, isPhoneConnected: false, modelName: null },
    'an empty report changes nothing and answers what is known')
})

t.test('dispose drops the kept state', async t => {
  const { apps, device } = setup()
  device.apply({ batteryLevel: 10 }, true)
  device.dispose()
  t.same((device.snapshot() as { state: unknown }).state, {})
  device.apply({ batteryLevel: 10 }, true)
  t.same(apps.states, [{ batteryLevel: 10 }, { batteryLevel: 10 }], 'so the same value is news again')
})
