/**
 * The transcript manager without a socket server: local transcripts go to the apps
 * subscribed to their language, in the shape the SDK's onTranscription reads.
 */
import t from 'tap'
import { SubscriptionManager } from '../../managers/subscription-manager.js'
import { TranscriptManager } from '../../managers/transcript-manager.js'
import type { GlassesMessage } from '../../protocol/glasses-messages.js'
import { RecordingOutlet } from './fake-session.js'

function setup () {
  const subscriptions = new SubscriptionManager()
  const outlet = new RecordingOutlet()
  subscriptions.outlet = outlet
  const transcripts = new TranscriptManager(subscriptions)
  return { subscriptions, outlet, transcripts }
}

const local = (extra: Partial<Extract<GlassesMessage, { type: 'local_transcription' }>> = {}): GlassesMessage =>
  ({ type: 'local_transcription', text: 'hello there', isFinal: false, ...extra })

t.test('a transcript reaches its language\'s subscribers as `transcription`, under each app\'s own string', async t => {
  const { subscriptions, outlet, transcripts } = setup()
  subscriptions.set('com.bare', ['transcription'])
  subscriptions.set('com.us', ['Transcription:en-US?hints=tether'])
  subscriptions.set('com.de', ['transcription:de-DE'])
  t.ok(transcripts.handle(local({ isFinal: true, startTime: 1000, endTime: 2500, language: 'en-US' })))
  t.same(outlet.data.map(d => [d.packageName, d.streamType]), [['com.bare', 'transcription'], ['com.us', 'Transcription:en-US?hints=tether']])
  t.same(outlet.data[0]?.data, {
    type: 'transcription', text: 'hello there', isFinal: true, transcribeLanguage: 'en-US', startTime: 1000, endTime: 2500
  }, 'the SDK\'s shape: type, text, isFinal, transcribeLanguage, startTime, endTime; nothing else of the phone\'s message')
})

t.test('the language: iOS\'s transcribeLanguage, else Android\'s language, else en-US', async t => {
  const { subscriptions, outlet, transcripts } = setup()
  subscriptions.set('com.de', ['transcription:de-de'])
  subscriptions.set('com.fr', ['transcription:fr-FR'])
  subscriptions.set('com.en', ['transcription:en-US'])
  transcripts.handle(local({ transcribeLanguage: 'fr-FR', language: 'de-DE' }))
  transcripts.handle(local({ language: 'DE-DE' }))
  transcripts.handle(local())
  t.same(outlet.data.map(d => [d.packageName, (d.data as { transcribeLanguage: string }).transcribeLanguage]), [
    ['com.fr', 'fr-FR'], ['com.de', 'DE-DE'], ['com.en', 'en-US']
  ], 'matched case-insensitively; the language is passed on as the phone spelled it')
})

t.test('times default to now when the phone sends none', async t => {
  const { subscriptions, outlet, transcripts } = setup()
  subscriptions.set('com.en', ['transcription'])
  const before = Date.now()
  transcripts.handle(local())
  const data = outlet.data[0]?.data as { startTime: number, endTime: number }
  t.ok(data.startTime >= before && data.startTime <= Date.now(), 'startTime: now')
  t.ok(data.endTime >= before && data.endTime <= Date.now(), 'endTime: now')
})

t.test('owned even with no subscriber; other messages are not the transcript manager\'s', async t => {
  const { subscriptions, outlet, transcripts } = setup()
  subscriptions.set('com.tr', ['translation:en-US-to-de-DE', 'local_transcription'])
  t.ok(transcripts.handle(local()), 'a transcript nobody wants is still owned (not relayed raw by the subscription relay)')
  t.same(outlet.data, [], 'translation subscribers get nothing from a transcript, nor does a subscriber to the raw type')
  t.notOk(transcripts.handle({ type: 'button_press', buttonId: 'b', pressType: 'short' }))
  t.notOk(transcripts.handle({ type: 'VAD', status: true }))
})

t.test('the snapshot counts deliveries and lists the languages seen; dispose forgets them', async t => {
  const { subscriptions, transcripts } = setup()
  subscriptions.set('com.a', ['transcription'])
  subscriptions.set('com.b', ['transcription', 'transcription:en-US'])
  transcripts.handle(local())
  transcripts.handle(local({ language: 'ja-JP' }))
  t.same(transcripts.snapshot(), { relayed: 3, languages: ['en-US', 'ja-JP'] }, 'com.b gets it once per subscription string')
  transcripts.dispose()
  t.same(transcripts.snapshot(), { relayed: 3, languages: [] })
})
