import t from 'tap'
import { parseGlassesFrame, parseJsonObject } from '../../protocol/parse-frame.js'

t.test('parseGlassesFrame', async t => {
  t.match(parseGlassesFrame('{"type":"VAD","status":false}'), { ok: true, message: { type: 'VAD', status: false } })
  t.match(parseGlassesFrame('{"type":"VAD","status":"yes"}'), { ok: false, code: 'INVALID_MESSAGE', message: /\/status/ })
  t.match(parseGlassesFrame('{"type":"nope","x":1}'), { ok: true, listed: false, message: { type: 'nope', x: 1 } })
  t.match(parseGlassesFrame('{"type":"VAD","status":"true"}'), { ok: true, listed: true, message: { status: 'true' } })
  t.match(parseGlassesFrame('{"type":"local_transcription","text":"hallo","isFinal":true,"language":"de-DE"}'),
    { ok: true, listed: true, message: { language: 'de-DE' } })
  const long = parseGlassesFrame(`{"type":"${'x'.repeat(500)}"}`)
  t.match(long, { ok: false, code: 'INVALID_MESSAGE' })
  t.ok(!long.ok && long.message.length < 120, 'a huge type is not echoed whole')
  t.match(parseGlassesFrame('{"type":"local_transcription","text":"a","isFinal":true,"timestamp":1700000000000}'), { ok: true })
  t.match(parseGlassesFrame('{"type":"local_transcription","text":"a","isFinal":true,"timestamp":{}}'), { ok: false })
})

t.test('parseJsonObject refuses prototype keys but not such words as values', async t => {
  t.match(parseJsonObject('{"type":"a","__proto__":{}}'), { ok: false, code: 'INVALID_MESSAGE' })
  t.match(parseJsonObject('{"type":"a","list":[{"constructor":1}]}'), { ok: false, code: 'INVALID_MESSAGE' })
  t.match(parseJsonObject('{"type":"a","text":"__proto__ constructor prototype"}'), { ok: true })
  t.match(parseJsonObject('{"type":"a"} trailing'), { ok: false, code: 'MALFORMED_MESSAGE' })
})
