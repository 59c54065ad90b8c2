/** The microphone manager without a socket server: what it tells the phone, and when. */
import t from 'tap'
import { MicrophoneManager, requiredBy } from '../../managers/microphone-manager.js'
import { SubscriptionManager } from '../../managers/subscription-manager.js'
import { delay, eventually, type Teardown } from '../helper.js'
import { FakeSession } from './fake-session.js'

const timings = { micDebounceMs: 20, micOffDelayMs: 150, micMinIntervalMs: 100, micRefreshMs: 400 }

function setup (t: Teardown, overrides: Partial<typeof timings> = {}) {
  const session = new FakeSession()
  const subscriptions = new SubscriptionManager()
  const mic = new MicrophoneManager(session, subscriptions, { ...timings, ...overrides })
  t.teardown(() => mic.dispose())
  const states = (): Array<{ requiredData: string[], bypassVad: boolean }> =>
    session.of('microphone_state_change').map(m => ({ requiredData: m.requiredData as string[], bypassVad: m.bypassVad as boolean }))
  return { session, subscriptions, mic, states }
}

t.test('what the apps need decides the state', async t => {
  t.same(requiredBy(['audio_chunk']), { requiredData: ['pcm'], bypassVad: true })
  t.same(requiredBy(['transcription:de-de']), { requiredData: ['transcription'], bypassVad: false })
  t.same(requiredBy(['translation:es-es-to-en-us', 'vad']), { requiredData: ['transcription'], bypassVad: false })
  t.same(requiredBy(['audio_chunk', 'transcription:en-us']), { requiredData: ['pcm', 'transcription'], bypassVad: true })
  t.same(requiredBy(['vad', 'button_press']), { requiredData: [], bypassVad: false }, 'VAD alone needs nothing')
})

t.test('an app subscribing to audio turns it on after the debounce, with the message the phone reads', async t => {
  const { session, subscriptions, states } = setup(t)
  subscriptions.set('com.a', ['audio_chunk'])
  t.same(states(), [], 'nothing before the debounce')
  await eventually(() => states().length === 1, 'sent')
  t.match(session.of('microphone_state_change')[0], {
    type: 'microphone_state_change', sessionId: 'unit@example.com', isMicrophoneEnabled: true, requiredData: ['pcm'], bypassVad: true
  })
})

t.test('off waits the hold-down, and a subscriber that comes back inside it keeps the microphone on', async t => {
  const { subscriptions, states } = setup(t, { micRefreshMs: 5000 })
  subscriptions.set('com.a', ['transcription:en-US'])
  await eventually(() => states().length === 1, 'on')
  subscriptions.remove('com.a')
  await delay(80)
  subscriptions.set('com.b', ['transcription:en-US'])
  await delay(250)
  t.same(states(), [{ requiredData: ['transcription'], bypassVad: false }], 'never turned off')
  subscriptions.remove('com.b')
  await delay(100)
  t.equal(states().length, 1, 'still on within the hold-down')
  await eventually(() => states().length === 2, 'off after the hold-down')
  t.same(states()[1], { requiredData: [], bypassVad: false })
})

t.test('changes closer than the minimum interval are merged: the latest wins', async t => {
  const { subscriptions, states } = setup(t, { micMinIntervalMs: 300, micRefreshMs: 5000 })
  subscriptions.set('com.a', ['audio_chunk'])
  await eventually(() => states().length === 1, 'first')
  subscriptions.set('com.b', ['transcription:en-US'])
  await delay(40)
  subscriptions.set('com.a', [])
  await delay(40)
  t.equal(states().length, 1, 'held back by the interval')
  await eventually(() => states().length === 2, 'second', 1000)
  t.same(states()[1], { requiredData: ['transcription'], bypassVad: false }, 'only the latest state went out')
})

t.test('re-sent every refresh interval while on, and not while off', async t => {
  const { subscriptions, states } = setup(t, { micRefreshMs: 150 })
  subscriptions.set('com.a', ['audio_chunk'])
  await eventually(() => states().length >= 3, 'refreshed twice', 1000)
  t.ok(states().every(s => s.requiredData[0] === 'pcm'))
  subscriptions.remove('com.a')
  await eventually(() => states().at(-1)?.requiredData.length === 0, 'off', 1000)
  const count = states().length
  await delay(400)
  t.equal(states().length, count, 'no refresh of "off"')
})

t.test('every attach to an existing session re-sends the state shortly after, also when off; a new session says nothing', async t => {
  const { mic, states } = setup(t)
  mic.onAttach({ reconnection: false, connection: null as never })
  await delay(150)
  t.same(states(), [], 'a new session with nothing to ask')
  mic.onAttach({ reconnection: true, connection: null as never })
  await eventually(() => states().length === 1, 'sent after a resume')
  t.same(states()[0], { requiredData: [], bypassVad: false })
})

t.test('the glasses connecting re-sends the state', async t => {
  const { subscriptions, mic, states } = setup(t)
  subscriptions.set('com.a', ['audio_chunk'])
  await eventually(() => states().length === 1, 'on')
  await delay(120)
  mic.glassesConnection(true)
  await eventually(() => states().length === 2, 're-sent')
})

t.test('audio nobody needs: told "off" at once, and not again within the interval', async t => {
  const { mic, states } = setup(t)
  mic.unwantedAudio()
  t.same(states(), [{ requiredData: [], bypassVad: false }], 'sent synchronously')
  mic.unwantedAudio()
  mic.unwantedAudio()
  t.equal(states().length, 1)
  await delay(120)
  mic.unwantedAudio()
  t.equal(states().length, 2, 'again once the interval passed and audio still comes')
})

t.test('a detached phone hears nothing; the next attach brings it up to date', async t => {
  const { session, subscriptions, mic, states } = setup(t)
  session.phoneConnected = false
  subscriptions.set('com.a', ['audio_chunk'])
  await delay(60)
  t.same(states(), [])
  session.phoneConnected = true
  mic.onAttach({ reconnection: false, connection: null as never })
  await eventually(() => states().length === 1, 'after attach')
  t.same(states()[0], { requiredData: ['pcm'], bypassVad: true })
})
