/** Stream names and matching (managers/streams.ts): the keys subscriptions and glasses messages meet on. */
import t from 'tap'
import {
  AUDIO_STREAM, DEFAULT_LANGUAGE, baseStream, forApps, keysOf, keysOfUnlisted, streamKey, subscriptionString, transcriptLanguage
} from '../../managers/streams.js'
import type { GlassesMessage } from '../../protocol/glasses-messages.js'

t.test('a subscription is kept as written; objects by their stream', async t => {
  t.equal(subscriptionString('Button_Press?x=1'), 'Button_Press?x=1')
  t.equal(subscriptionString({ stream: 'location_stream', rate: 'high' }), 'location_stream')
})

t.test('the key: no ?query, trimmed, lower-cased, and a bare transcription is en-US', async t => {
  t.equal(streamKey('Button_Press'), 'button_press')
  t.equal(streamKey(' audio_chunk '), AUDIO_STREAM)
  t.equal(streamKey('transcription:de-DE?hints=a,b'), 'transcription:de-de')
  t.equal(streamKey('transcription'), 'transcription:en-us')
  t.equal(streamKey('Transcription?hints=x'), 'transcription:en-us', 'a bare transcription with a query too')
  t.equal(streamKey('translation:es-ES-to-en-US'), 'translation:es-es-to-en-us', 'translations keep their pair')
  t.equal(DEFAULT_LANGUAGE, 'en-US')
})

t.test('the base stream: the part before the first colon', async t => {
  t.equal(baseStream('transcription:en-us'), 'transcription')
  t.equal(baseStream('touch_event:single_tap'), 'touch_event')
  t.equal(baseStream('button_press'), 'button_press')
})

t.test('the keys of a glasses message', async t => {
  const keys = (message: GlassesMessage): string[] => keysOf(message)
  for (const type of ['connection_init', 'ping', 'pong'] as const) t.same(keys({ type }), [], `${type}: control, never relayed`)
  t.same(keys({ type: 'start_app', packageName: 'com.a' }), [])
  t.same(keys({ type: 'stop_app', packageName: 'com.a' }), [])
  t.same(keys({ type: 'button_press', buttonId: 'b', pressType: 'long' }), ['button_press'])
  t.same(keys({ type: 'VAD', status: true }), ['vad'], 'lower-cased: both spellings meet')
  t.same(keys({ type: 'touch_event', gesture_name: 'Forward_Swipe' }), ['touch_event', 'touch_event:forward_swipe'])
  t.same(keys({ type: 'local_transcription', text: '', isFinal: true, language: 'de-DE' }), ['transcription:de-de'])
  t.same(keys({ type: 'local_transcription', text: '', isFinal: true, transcribeLanguage: 'ja-JP', language: 'de-DE' }), ['transcription:ja-jp'])
  t.same(keys({ type: 'local_transcription', text: '', isFinal: true }), ['transcription:en-us'])
  t.same(keysOfUnlisted({ type: 'Custom_Sensor' }), ['custom_sensor'], 'unlisted: the exact type, lower-cased')
})

t.test('a transcript\'s language: transcribeLanguage, language, en-US', async t => {
  t.equal(transcriptLanguage({ transcribeLanguage: 'fr-FR', language: 'de-DE' }), 'fr-FR')
  t.equal(transcriptLanguage({ language: 'de-DE' }), 'de-DE')
  t.equal(transcriptLanguage({}), 'en-US')
})

t.test('as apps receive it: VAD status a boolean; anything else untouched', async t => {
  t.same(forApps({ type: 'VAD', status: 'true' }), { type: 'VAD', status: true })
  t.same(forApps({ type: 'vad', status: 'false' }), { type: 'vad', status: false })
  const boolean: GlassesMessage = { type: 'vad', status: false }
  t.equal(forApps(boolean), boolean, 'already a boolean: the same object')
  const button: GlassesMessage = { type: 'button_press', buttonId: 'b', pressType: 'short' }
  t.equal(forApps(button), button)
})
