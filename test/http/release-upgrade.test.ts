/**
 * A session lives for hours after its upgrade: the upgrade's HTTP request must
 * not stay reachable from the glasses or app socket (it costs kilobytes per
 * session). Checked with WeakRefs and a forced GC while both sockets are open.
 */
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import type { IncomingMessage } from 'node:http'
import t from 'tap'
import { connectAcked, delay, eventually, startServer } from '../helper.js'
import { connectApp, rawAppIdentity, startWebhookReceiver } from '../raw-app.js'
import { writeCatalogue } from '../sdk-app.js'

setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc') as () => void

/** True once nothing holds the object: GC runs in a later turn than the WeakRef's creation. */
async function collected (ref: WeakRef<object>): Promise<boolean> {
  for (let attempt = 0; attempt < 10; attempt += 1) {
    gc()
    await delay(10)
    if (ref.deref() === undefined) return true
  }
  return false
}

t.test('neither the glasses nor the app upgrade request is retained by its live socket', async t => {
  const hooks = await startWebhookReceiver(t)
  const app = rawAppIdentity('com.example.raw', hooks.url)
  const server = await startServer(t, { appsFile: writeCatalogue(t.testdir(), [app]) })
  const upgrades: Array<WeakRef<IncomingMessage>> = []
  server.app.server.on('upgrade', (request: IncomingMessage) => { upgrades.push(new WeakRef(request)) })

  const { client: glasses } = await connectAcked(t, server, 'released@example.com')
  glasses.send({ type: 'start_app', packageName: app.packageName })
  const hook = await eventually(() => hooks.received.find(h => h.type === 'session_request'), 'webhook')
  const appSocket = await connectApp(t, server, { sessionId: hook.sessionId, packageName: app.packageName, apiKey: app.apiKey })
  await appSocket.next('tpa_connection_ack')
  t.equal(upgrades.length, 2, 'one glasses and one app upgrade')

  for (const [index, ref] of upgrades.entries()) t.ok(await collected(ref), `upgrade request ${index + 1} was collected`)
  glasses.send({ type: 'ping' })
  await glasses.next('pong')
  t.equal(appSocket.closeCode, null, 'the app socket is still open')
  t.equal(server.app.sessions.get('released@example.com')?.state, 'active', 'and the session still live')
})
