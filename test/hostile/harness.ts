/**
 * The hostile-input harness: a real server with a bystander (a pair of glasses
 * and an app subscribed to its button presses). After every attack the
 * bystander must still work and lose nothing: every press it sends reaches its
 * app, in order, and its ping is answered.
 */
import type { Test } from 'tap'
import type { Config } from '../../config.js'
import { connectAcked, eventually, startServer, type Client, type Server } from '../helper.js'
import { connectApp, rawAppIdentity, startWebhookReceiver, type RawAppIdentity, type WebhookReceiver } from '../raw-app.js'
import { writeCatalogue } from '../sdk-app.js'

export interface HostileWorld {
  server: Server
  hooks: WebhookReceiver
  app: RawAppIdentity
  other: RawAppIdentity
  bystander: { glasses: Client, app: Client }
  /** Assert the bystander is unaffected: presses arrive in order, ping answered, no errors. */
  checkBystander: (t: Test, label: string) => Promise<void>
  /** Start `app` for a user and connect it; resolves with the acked app socket and its session id. */
  startApp: (glasses: Client, user: string, app?: RawAppIdentity) => Promise<{ client: Client, sessionId: string }>
}

export async function hostileWorld (t: Test, overrides: Partial<Config> = {}): Promise<HostileWorld> {
  const hooks = await startWebhookReceiver(t)
  const app = rawAppIdentity('com.example.hostile', hooks.url)
  const other = rawAppIdentity('com.example.neighbour', hooks.url)
  const appsFile = writeCatalogue(t.testdir(), [app, other])
  const server = await startServer(t, { appsFile, appInitTimeoutMs: 300, maxBadFrames: 20, ...overrides })

  const startApp = async (glasses: Client, user: string, which = app): Promise<{ client: Client, sessionId: string }> => {
    const before = hooks.received.length
    glasses.send({ type: 'start_app', packageName: which.packageName })
    const hook = await eventually(() => hooks.received.slice(before).find(h => h.userId === user && h.type === 'session_request'), 'webhook')
    const client = await connectApp(t, server, { sessionId: hook.sessionId, packageName: which.packageName, apiKey: which.apiKey })
    await client.next('tpa_connection_ack')
    return { client, sessionId: hook.sessionId }
  }

  const { client: glasses } = await connectAcked(t, server, 'bystander@example.com')
  const { client: bystanderApp } = await startApp(glasses, 'bystander@example.com', other)
  bystanderApp.send({ type: 'subscription_update', subscriptions: ['button_press'] })
  await eventually(() => server.app.sessions.get('bystander@example.com')?.view().appSubscriptions[other.packageName] !== undefined, 'bystander subscribed')

  let sequence = 0
  const checkBystander = async (t: Test, label: string): Promise<void> => {
    const ids = Array.from({ length: 5 }, () => `press-${++sequence}`)
    for (const id of ids) glasses.send({ type: 'button_press', buttonId: id, pressType: 'short' })
    const from = glasses.messages.length
    glasses.send({ type: 'ping' })
    await glasses.next('pong', 3000, from)
    const received = await bystanderApp.until(() => {
      const got = bystanderApp.messages.filter(m => m.type === 'data_stream').map(m => (m.data as { buttonId: string }).buttonId)
      return got.length >= sequence ? got : undefined
    }, `${label}: bystander presses`, 3000)
    t.same(received, Array.from({ length: sequence }, (_, i) => `press-${i + 1}`), `${label}: bystander lost nothing, in order`)
    t.equal(glasses.closeCode, null, `${label}: bystander glasses open`)
    t.equal(bystanderApp.closeCode, null, `${label}: bystander app open`)
    t.equal(glasses.count('error'), 0, `${label}: bystander saw no error`)
  }

  return { server, hooks, app, other, bystander: { glasses, app: bystanderApp }, checkBystander, startApp }
}
