/** PROTOCOL 1.4 and 1.6: bad frames get an error and the socket stays open; limits close with documented codes. */
import t from 'tap'
import { connectAcked, delay, eventually } from '../../helper.js'
import { startServer } from '../../helper.js'

t.test('bad frames get the documented error and the socket stays open', async t => {
  const server = await startServer(t)
  const { client } = await connectAcked(t, server, 'bad@example.com')
  const { client: bystander } = await connectAcked(t, server, 'bystander@example.com')
  const cases: Array<[string, string, string]> = [
    ['not JSON', '{nope', 'MALFORMED_MESSAGE'],
    ['a JSON array', '[1,2]', 'MALFORMED_MESSAGE'],
    ['a JSON string', '"hello"', 'MALFORMED_MESSAGE'],
    ['null', 'null', 'MALFORMED_MESSAGE'],
    ['missing type', '{"buttonId":"x"}', 'MALFORMED_MESSAGE'],
    ['numeric type', '{"type":42}', 'MALFORMED_MESSAGE'],
    ['unknown type', '{"type":"launch_rocket"}', 'UNKNOWN_TYPE'],
    ['wrong field type', '{"type":"button_press","buttonId":"main","pressType":"sideways"}', 'INVALID_MESSAGE'],
    ['missing field', '{"type":"start_app"}', 'INVALID_MESSAGE'],
    ['__proto__ key', '{"type":"button_press","buttonId":"m","pressType":"short","__proto__":{"admin":true}}', 'INVALID_MESSAGE'],
    ['nested constructor key', '{"type":"location_update","where":{"constructor":{"prototype":1}}}', 'INVALID_MESSAGE'],
    ['prototype key', '{"type":"calendar_event","prototype":1}', 'INVALID_MESSAGE']
  ]
  for (const [name, frame, code] of cases) {
    const from = client.messages.length
    client.send(frame)
    const error = await client.next('error', 2000, from)
    t.equal(error.code, code, name)
    t.type(error.message, 'string', `${name}: message`)
  }
  client.send({ type: 'ping' })
  await client.next('pong')
  t.equal(client.closeCode, null, 'still open')
  t.equal(server.app.sessions.get('bad@example.com')?.state, 'active')
  t.equal(bystander.count('error'), 0, 'the bystander saw nothing')
})

t.test('accepted types produce no error, including relay-only MentraOS types and values like "constructor"', async t => {
  const server = await startServer(t)
  const { client } = await connectAcked(t, server, 'good@example.com')
  const frames = [
    { type: 'button_press', buttonId: 'main', pressType: 'long' },
    { type: 'head_position', position: 'up' },
    { type: 'touch_event', gesture_name: 'forward_swipe' },
    { type: 'VAD', status: true },
    { type: 'local_transcription', text: 'constructor prototype', isFinal: true },
    { type: 'glasses_battery_update', level: 80 },
    { type: 'core_status_update', status: { anything: 1 } },
    { type: 'stop_app', packageName: 'com.example.app', extraField: 'ignored' }
  ]
  for (const frame of frames) client.send(frame)
  client.send({ type: 'ping' })
  await client.next('pong')
  t.equal(client.count('error'), 0)
  const data = server.app.sessions.get('good@example.com')?.stats.counts()
  t.equal(data?.transcripts, 1, 'the transcript was counted')
  t.equal(data?.messagesIn, frames.length + 1)
})

t.test('more than MAX_BAD_FRAMES bad frames in a minute close 1008; others are unaffected', async t => {
  const server = await startServer(t, { maxBadFrames: 5 })
  const { client } = await connectAcked(t, server, 'flood@example.com')
  const { client: bystander } = await connectAcked(t, server, 'calm@example.com')
  for (let i = 0; i < 5; i++) client.send('garbage')
  await client.until(() => client.count('error') === 5, 'five errors')
  t.equal(client.closeCode, null, 'five bad frames are tolerated')
  client.send('garbage')
  t.equal(await client.waitClosed(), 1008)
  t.equal(client.closeReason, 'too many bad frames')
  await eventually(() => server.app.sessions.get('flood@example.com')?.state === 'grace', 'grace')
  bystander.send({ type: 'ping' })
  await bystander.next('pong')
  t.equal(bystander.closeCode, null)
})

t.test('a frame over MAX_MESSAGE_BYTES closes 1009; a frame just under is fine', async t => {
  const server = await startServer(t, { maxMessageBytes: 4096 })
  const { client } = await connectAcked(t, server, 'big@example.com')
  const { client: bystander } = await connectAcked(t, server, 'small@example.com')
  client.send({ type: 'phone_notification', body: 'x'.repeat(3000) })
  client.send({ type: 'ping' })
  await client.next('pong')
  client.send({ type: 'phone_notification', body: 'x'.repeat(5000) })
  t.equal(await client.waitClosed(), 1009)
  bystander.send({ type: 'ping' })
  await bystander.next('pong')
  await eventually(() => server.app.sessions.get('big@example.com')?.state === 'grace', 'grace')
  const metrics = await (await fetch(`${server.httpUrl}/metrics`)).text()
  t.match(metrics, /tether_close_codes_sent_total\{code="1009"\} 1/, 'counted as sent by the server')
  t.match(server.app.sessions.get('big@example.com')?.recentEvents().at(-1), { event: 'session.detached', closeCode: 1009, reason: 'server_closed' })
})

t.test('invalid UTF-8 in a text frame closes 1007', async t => {
  const server = await startServer(t)
  const { client } = await connectAcked(t, server, 'utf8@example.com')
  client.ws.send(Buffer.from([0x7b, 0xff, 0xfe, 0x7d]), { binary: false })
  t.equal(await client.waitClosed(), 1007)
})

t.test('binary frames are counted as audio', async t => {
  const server = await startServer(t)
  const { client } = await connectAcked(t, server, 'audio@example.com')
  client.ws.send(Buffer.alloc(640))
  client.ws.send(Buffer.alloc(320))
  client.send({ type: 'ping' })
  await client.next('pong')
  await delay(10)
  const data = server.app.sessions.get('audio@example.com')?.stats.counts()
  t.equal(data?.audioBytes, 960)
  t.equal(data?.audioChunks, 2)
})
