/** Hostile glasses frames (issue 5): the documented answer each time, the bystander unaffected. */
import t from 'tap'
import { connectAcked, eventually } from '../helper.js'
import { hostileWorld } from './harness.js'

t.test('hostile glasses frames', async t => {
  const w = await hostileWorld(t, { maxMessageBytes: 1024 * 1024 })

  /** A fresh attacker session, so one case's close does not hide the next case. */
  const attacker = async (name: string) => (await connectAcked(t, w.server, `${name.replace(/\W+/g, '-')}@attack.example`)).client

  const errors: Array<[string, string, string]> = [
    ['text garbage where JSON is expected', '\u0001\u0002garbage\u00ff', 'MALFORMED_MESSAGE'],
    ['1e5-deep nesting', `{"type":"location_update","x":${'['.repeat(100_000)}${']'.repeat(100_000)}}`, 'INVALID_MESSAGE'],
    ['__proto__ payload', '{"type":"location_update","__proto__":{"polluted":true}}', 'INVALID_MESSAGE'],
    ['constructor.prototype payload', '{"type":"VAD","status":true,"constructor":{"prototype":{"polluted":true}}}', 'INVALID_MESSAGE'],
    ['unknown type', '{"type":"format_c"}', 'UNKNOWN_TYPE'],
    ['wrong field types', '{"type":"local_transcription","text":42,"isFinal":"yes"}', 'INVALID_MESSAGE'],
    ['type of the wrong type', '{"type":["button_press"]}', 'MALFORMED_MESSAGE']
  ]
  for (const [name, frame, code] of errors) {
    const client = await attacker(name)
    client.send(frame)
    t.equal((await client.next('error', 3000)).code, code, name)
    t.equal(client.closeCode, null, `${name}: socket stays open`)
    await w.checkBystander(t, name)
  }
  t.equal(({} as Record<string, unknown>).polluted, undefined, 'no prototype was polluted')

  const utf8 = await attacker('invalid utf8')
  utf8.ws.send(Buffer.from([0x7b, 0x22, 0xc3, 0x28, 0x22, 0x7d]), { binary: false })
  t.equal(await utf8.waitClosed(), 1007, 'invalid UTF-8: 1007')
  await w.checkBystander(t, 'invalid UTF-8')

  const huge = await attacker('2 MiB frame')
  huge.send({ type: 'phone_notification', body: 'x'.repeat(2 * 1024 * 1024) })
  t.equal(await huge.waitClosed(5000), 1009, '2 MiB frame: 1009')
  await w.checkBystander(t, '2 MiB frame')

  const strings = await attacker('huge strings')
  strings.send({ type: 'phone_notification', title: 'y'.repeat(900_000) })
  strings.send({ type: 'ping' })
  await strings.next('pong', 5000)
  t.equal(strings.count('error'), 0, 'a large but legal message is accepted')
  await w.checkBystander(t, 'huge strings')

  const flood = await attacker('flood of 10k')
  const { client: floodApp } = await w.startApp(flood, 'flood-of-10k@attack.example')
  floodApp.send({ type: 'subscription_update', subscriptions: ['button_press'] })
  await eventually(() => w.server.app.sessions.get('flood-of-10k@attack.example')?.view().appSubscriptions[w.app.packageName] !== undefined, 'flood app subscribed')
  for (let i = 0; i < 10_000; i++) flood.send({ type: 'button_press', buttonId: String(i), pressType: 'short' })
  const got = await floodApp.until(() => {
    const ids = floodApp.messages.filter(m => m.type === 'data_stream').map(m => Number((m.data as { buttonId: string }).buttonId))
    return ids.length === 10_000 ? ids : undefined
  }, '10k relayed', 20_000)
  t.ok(got.every((id, i) => id === i), '10k messages handled one at a time, in arrival order, none lost')
  await w.checkBystander(t, 'flood of 10k')

  const pings = await attacker('ping flood')
  for (let i = 0; i < 10_000; i++) pings.ws.ping()
  t.equal(await pings.waitClosed(3000), 1006, 'a WebSocket ping flood is terminated (more than 60 pongs pending)')
  await eventually(() => w.server.app.sessions.get('ping-flood@attack.example')?.state === 'grace', 'its session waits in grace')
  await w.checkBystander(t, 'WebSocket ping flood')

  const jsonPings = await attacker('json ping flood')
  for (let i = 0; i < 1000; i++) jsonPings.send({ type: 'ping' })
  await jsonPings.until(() => jsonPings.count('pong') === 1000, '1000 JSON pongs', 10_000)
  t.equal(jsonPings.closeCode, null, 'JSON pings are answered one for one')
  await w.checkBystander(t, 'JSON ping flood')

  const bad = await attacker('bad frame flood')
  for (let i = 0; i < 25; i++) bad.send('nope')
  t.equal(await bad.waitClosed(), 1008, 'past MAX_BAD_FRAMES: 1008')
  await w.checkBystander(t, 'bad frame flood')

  const inits = await attacker('init storm')
  for (let i = 0; i < 500; i++) inits.send({ type: 'connection_init' })
  await inits.until(() => inits.count('connection_ack') === 501, '501 acks', 10_000)
  t.equal(w.server.app.sessions.get('init-storm@attack.example')?.reconnections, 0, 'connection_init has no side effect')
  await w.checkBystander(t, 'init storm')

  const unknownApp = await attacker('unknown app')
  unknownApp.send({ type: 'start_app', packageName: '../../etc/passwd' })
  t.equal((await unknownApp.next('error')).code, 'UNKNOWN_APP')
  unknownApp.send({ type: 'stop_app', packageName: 'com.never.started' })
  unknownApp.send({ type: 'ping' })
  await unknownApp.next('pong')
  t.equal(unknownApp.count('error'), 1, 'stopping an app that is not running changes nothing')
  await w.checkBystander(t, 'unknown app')
})
