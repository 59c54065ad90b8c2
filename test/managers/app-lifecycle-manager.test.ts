/**
 * Which apps of a session run, without a socket server: real webhooks to a loopback
 * receiver (webhook-receiver.ts), app sockets as in-memory channels admitted through
 * the node's AppsService as /app-ws would, and short configured timers.
 */
import { createHash } from 'node:crypto'
import t from 'tap'
import { AppLifecycleManager } from '../../managers/app-lifecycle-manager.js'
import { AppMessageRouter } from '../../managers/app-message-router.js'
import type { AppsService } from '../../managers/apps-service.js'
import { DisplayManager } from '../../managers/display-manager.js'
import { PhoneRelayManager } from '../../managers/phone-relay-manager.js'
import { SubscriptionManager } from '../../managers/subscription-manager.js'
import type { Config } from '../../config.js'
import type { GlassesConnection } from '../../sessions/glasses-connection.js'
import type { AttachContext } from '../../sessions/manager.js'
import { delay, eventually, type Teardown } from '../helper.js'
import { appEntry, appsService } from './apps-fixture.js'
import { FakeAppChannel } from './fake-app-channel.js'
import { FakeSession } from './fake-session.js'
import { webhookReceiver, type ReceivedWebhook } from './webhook-receiver.js'

const keyOf = (packageName: string): string => `key-of-${packageName}`
const sha256 = (text: string): string => createHash('sha256').update(text).digest('hex')

/** One session's app side, as the recipe wires it, around the lifecycle manager. */
function buildApps (t: Teardown, session: FakeSession, service: AppsService) {
  const subscriptions = new SubscriptionManager(service.events)
  const display = new DisplayManager(session, { intervalMs: 1, isSystemDashboard: () => false })
  const phone = new PhoneRelayManager(session, subscriptions, { appEntry: () => undefined })
  const manager = new AppLifecycleManager(session, service, subscriptions, display, new AppMessageRouter(session, subscriptions, display, phone))
  subscriptions.outlet = manager.sockets
  t.teardown(() => { manager.dispose('manual'); display.dispose(); phone.dispose() })
  return { manager, subscriptions }
}

/** What the lifecycle reported to the node's events (which metrics count), in order. */
function reportsOf (service: AppsService): string[] {
  const reports: string[] = []
  const { events } = service
  events.on('app.start_requested', (packageName, reason) => { reports.push(`startRequested ${packageName} ${reason}`) })
  events.on('app.started', (packageName, reason) => { reports.push(`started ${packageName} ${reason}`) })
  events.on('app.start_failed', (packageName, failure) => { reports.push(`startFailed ${packageName} ${failure}`) })
  events.on('app.stopped', packageName => { reports.push(`stopped ${packageName}`) })
  return reports
}

async function setup (t: Teardown, config: Partial<Config> = {}, answer?: (hook: ReceivedWebhook) => number) {
  const receiver = await webhookReceiver(t, answer)
  const entries = ['com.a', 'com.b'].map(packageName =>
    appEntry(packageName, { webhookUrl: receiver.urlFor(packageName), apiKeySha256: sha256(keyOf(packageName)) }))
  const { service, directory } = appsService(t, entries, { appStartTimeoutMs: 2000, appGracePeriodMs: 2000, ...config })
  const session = new FakeSession()
  const { manager, subscriptions } = buildApps(t, session, service)
  const reports = reportsOf(service)
  /** The app's answer to its webhook, as the SDK gives it: a socket whose init names the app session. */
  const connect = (packageName: string, sessionId: string, apiKey = keyOf(packageName)) => {
    const channel = new FakeAppChannel()
    const refusal = service.admit({ type: 'tpa_connection_init', sessionId, packageName, apiKey }, channel)
    return { channel, refusal }
  }
  /** The n-th (from 0) session_request webhook, once it has arrived. */
  const sessionRequest = async (n = 0): Promise<ReceivedWebhook> =>
    await eventually(() => receiver.of('session_request')[n], `session_request #${n}`)
  /** Start an app and connect it as its webhook asks; resolves once it runs. */
  const run = async (packageName: string) => {
    const started = manager.start(packageName, 'user')
    const hook = await eventually(() => receiver.of('session_request').find(h => h.packageName === packageName), 'its webhook')
    const { channel } = connect(packageName, hook.body.sessionId)
    if (!await outcome(started)) throw new Error(`${packageName} did not start`)
    return { channel, appSessionId: hook.body.sessionId }
  }
  const apps = () => session.apps?.view()
  const status = (packageName: string): unknown => (manager.snapshot() as Record<string, { status: string }>)[packageName]?.status
  return { receiver, service, directory, session, manager, subscriptions, reports, connect, sessionRequest, run, apps, status }
}

/** A start's outcome, or a failure of the test if it has none within `ms` (a start that never settles is a bug). */
async function outcome (start: Promise<boolean>, ms = 2000): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<never>((_resolve, reject) => { timer = setTimeout(() => reject(new Error('the start never settled')), ms) })
  try {
    return await Promise.race([start, late])
  } finally {
    clearTimeout(timer)
  }
}

const attach = (reconnection: boolean): AttachContext => ({ connection: {} as unknown as GlassesConnection, reconnection })

t.test('start: the webhook and `loading`, then the app\'s accepted init makes it `running`', async t => {
  const { manager, session, receiver, directory, reports, connect, sessionRequest, apps } = await setup(t)
  const started = manager.start('com.a', 'user')
  t.same(apps()?.loadingApps, ['com.a'], 'loading at once')
  t.match(session.of('app_state_change')[0], { userSession: { loadingApps: ['com.a'] } }, 'and the phone told')
  const joined = manager.start('com.a', 'user')

  const hook = await sessionRequest()
  t.match(hook.body, { userId: session.userId, mentraOSWebsocketUrl: 'wss://tether.test/app-ws', sessionId: String })
  const { channel, refusal } = connect('com.a', hook.body.sessionId)
  t.equal(refusal, null, 'admitted')
  t.equal(await outcome(started), true)
  t.equal(await outcome(joined), true, 'a second start while the first was pending joined it')
  t.equal(receiver.of('session_request').length, 1, 'one webhook for both')

  t.match(channel.of('tpa_connection_ack'), [{ sessionId: hook.body.sessionId }])
  t.same(apps()?.activeAppSessions, ['com.a'])
  t.same(apps()?.loadingApps, [])
  t.match(manager.snapshot(), { 'com.a': { status: 'running', connected: true, restarts: 0, startedAt: String } })
  t.ok(manager.isRunning('com.a'))
  t.same(session.apps?.running(), [{ packageName: 'com.a', appSessionId: hook.body.sessionId }])
  await eventually(async () => (await directory.runningApps(session.userId)).includes('com.a'), 'remembered as running')
  t.same(reports, ['startRequested com.a user', 'started com.a user'])
  t.equal(await outcome(manager.start('com.a', 'user')), true, 'starting a running app: already started, no webhook')
  t.equal(receiver.of('session_request').length, 1)
})

t.test('no init within APP_START_TIMEOUT_MS: the start fails as a timeout', async t => {
  const { manager, session, reports, connect, sessionRequest, apps } = await setup(t, { appStartTimeoutMs: 40 })
  const started = manager.start('com.a', 'user')
  const hook = await sessionRequest()
  t.equal(await outcome(started), false)
  t.same(reports, ['startRequested com.a user', 'startFailed com.a timeout'])
  t.same(apps()?.loadingApps, [], 'no longer loading')
  t.same(apps()?.activeAppSessions, [])
  t.match(session.of('app_state_change').at(-1), { userSession: { loadingApps: [], activeAppSessions: [] } }, 'the phone told')
  t.match(connect('com.a', hook.body.sessionId).refusal, { code: 'APP_NOT_STARTED' }, 'a late init is refused')
})

t.test('an init with the wrong key fails the pending start at once, as refused', async t => {
  // A start timeout far longer than the test: only the refusal can end this start in time.
  const { manager, reports, connect, sessionRequest, apps } = await setup(t, { appStartTimeoutMs: 60_000 })
  const started = manager.start('com.a', 'user')
  const hook = await sessionRequest()
  const { channel, refusal } = connect('com.a', hook.body.sessionId, 'a wrong key')
  t.match(refusal, { code: 'INVALID_API_KEY' })
  t.equal(await outcome(started), false)
  t.same(reports, ['startRequested com.a user', 'startFailed com.a refused'])
  t.same(apps()?.loadingApps, [])
  t.equal(channel.of('tpa_connection_ack').length, 0, 'never acknowledged')
})

t.test('a webhook that fails fails the start', async t => {
  const { manager, reports, receiver } = await setup(t, {}, () => 500)
  t.equal(await outcome(manager.start('com.a', 'user')), false)
  t.same(reports, ['startRequested com.a user', 'startFailed com.a webhook'])
  t.equal(receiver.of('session_request').length, 2, 'after the one retry a 5xx gets')
})

t.test('an app that drops has its grace period, then is restarted by webhook as the same app session', async t => {
  const { manager, reports, connect, sessionRequest, run, apps, status } = await setup(t, { appGracePeriodMs: 30 })
  const { channel, appSessionId } = await run('com.a')
  channel.drop(1006)
  t.match(manager.snapshot(), { 'com.a': { status: 'reconnecting', connected: false } })
  t.same(apps()?.activeAppSessions, ['com.a'], 'still the session\'s app in its grace')

  const again = await sessionRequest(1)
  t.equal(again.body.sessionId, appSessionId, 'the same app session id: the SDK resumes')
  t.equal(status('com.a'), 'loading')
  t.match(manager.snapshot(), { 'com.a': { restarts: 1 } })
  const { refusal } = connect('com.a', appSessionId)
  t.equal(refusal, null)
  t.equal(status('com.a'), 'running')
  t.same(reports, ['startRequested com.a user', 'started com.a user', 'startRequested com.a restart', 'started com.a restart'])
})

t.test('an app back within its grace period is not restarted', async t => {
  const { manager, receiver, connect, run, status } = await setup(t, { appGracePeriodMs: 30 })
  const { channel, appSessionId } = await run('com.a')
  channel.drop(1006)
  const back = connect('com.a', appSessionId)
  t.equal(back.refusal, null)
  t.equal(status('com.a'), 'running')
  await delay(60)
  t.equal(receiver.of('session_request').length, 1, 'no restart webhook after the grace period passed')
  t.match(manager.snapshot(), { 'com.a': { restarts: 0, connected: true } })
})

t.test('stop: the stop_request webhook, then app_stopped and close 1000; the app is forgotten', async t => {
  let openAtStopRequest: boolean | null = null
  let app: FakeAppChannel | null = null
  const fixture = await setup(t, { appGracePeriodMs: 5 }, hook => {
    if (hook.body.type === 'stop_request') openAtStopRequest = app?.isOpen ?? null
    return 200
  })
  const { manager, receiver, subscriptions, directory, session, reports, run, apps } = fixture
  const { channel, appSessionId } = await run('com.a')
  app = channel
  channel.receive({ type: 'subscription_update', subscriptions: ['button_press'] })
  t.same(subscriptions.all(), { 'com.a': ['button_press'] })

  t.ok(manager.handle({ type: 'stop_app', packageName: 'com.a' }), 'stop_app is the lifecycle\'s')
  channel.receive({ type: 'subscription_update', subscriptions: ['audio_chunk'] })
  t.same(subscriptions.all(), {}, 'subscriptions removed, and a stopping app\'s last words change nothing')
  t.same(apps()?.activeAppSessions, [])
  t.notOk(manager.isRunning('com.a'))

  await eventually(() => channel.closedWith !== null, 'its socket closed')
  t.match(receiver.of('stop_request'), [{ body: { sessionId: appSessionId, userId: session.userId, reason: 'user_stopped' } }])
  t.equal(openAtStopRequest, true, 'the socket was open while the app heard its stop_request')
  t.match(channel.of('app_stopped'), [{ reason: 'App stopped' }])
  t.same(channel.closedWith, { code: 1000, reason: 'App stopped' })
  await eventually(async () => (await directory.runningApps(session.userId)).length === 0, 'forgotten by the user store')
  await eventually(() => reports.includes('stopped com.a'), 'reported')
  await delay(20)
  t.equal(receiver.of('session_request').length, 1, 'a stopped app is not restarted')
})

t.test('dispose: pending starts fail, every app is told and closed, and its app session ids are gone', async t => {
  const { manager, service, receiver, connect, run } = await setup(t)
  const { channel, appSessionId } = await run('com.a')
  const pending = manager.start('com.b', 'user')
  await eventually(() => receiver.of('session_request').length === 2, 'com.b\'s webhook')
  manager.dispose('manual')
  t.equal(await outcome(pending), false, 'the pending start settled')
  t.match(channel.of('app_stopped'), [{ reason: 'User session ended' }])
  t.same(channel.closedWith, { code: 1000, reason: 'User session ended' })
  t.equal(service.slots.size, 0, 'no app session id outlives its session')
  t.match(connect('com.a', appSessionId).refusal, { code: 'SESSION_NOT_FOUND' })
  t.equal(await outcome(manager.start('com.a', 'user')), false, 'nothing starts after')
  t.equal(receiver.of('stop_request').length, 0, 'no stop webhook at session end')
  t.same(manager.snapshot(), {})
})

t.test('dispose for a handover leaves the apps untold: they move with the session', async t => {
  const { manager, run } = await setup(t)
  const { channel } = await run('com.a')
  manager.dispose('handover')
  t.equal(channel.of('app_stopped').length, 0)
  t.equal(channel.closedWith, null)
  t.notOk(channel.bound, 'but no longer heard here')
})

t.test('snapshot and restore: running apps move with their app session ids and start here as a handover', async t => {
  const { manager, session, service, receiver, reports, connect, run } = await setup(t)
  await run('com.a')
  const moving = session.apps?.running() ?? []
  t.match(moving, [{ packageName: 'com.a', appSessionId: String }])
  manager.dispose('handover')

  const there = new FakeSession()
  const data = { audioBytes: 0, audioChunks: 0, transcripts: 0, messagesIn: 0, messagesOut: 0 }
  there.restored = { userId: session.userId, sessionInstanceId: 'moved', startedAt: 0, reconnections: 0, state: 'active', data, connectedMs: 0, apps: moving }
  const moved = buildApps(t, there, service).manager
  moved.onAttach(attach(false))
  const hook = await eventually(() => receiver.of('session_request')[1], 'the webhook asking the app here')
  t.equal(hook.body.sessionId, moving[0]?.appSessionId, 'the same app session id: the SDK switches clouds')
  t.equal(connect('com.a', hook.body.sessionId).refusal, null, 'and the new session takes the app\'s socket')
  t.match(moved.snapshot(), { 'com.a': { status: 'running' } })
  t.same(there.apps?.running(), moving)
  t.same(reports.slice(-2), ['startRequested com.a handover', 'started com.a handover'])
})

t.test('a fresh session restarts the apps its user had running; a resumed one restarts none', async t => {
  const { service, directory, session, receiver, reports } = await setup(t)
  await directory.appStarted(session.userId, 'com.b')
  const resumed = buildApps(t, new FakeSession(), service).manager
  resumed.onAttach(attach(true))
  await delay(30)
  t.equal(receiver.received.length, 0, 'a resumed session starts nothing')

  const fresh = buildApps(t, new FakeSession(), service).manager
  fresh.onAttach(attach(false))
  const hook = await eventually(() => receiver.of('session_request')[0], 'the restore webhook')
  t.equal(hook.packageName, 'com.b')
  t.same(reports, ['startRequested com.b restore'])
  t.match(fresh.snapshot(), { 'com.b': { status: 'loading' } })
})

t.test('an app not in the catalogue: the phone is told UNKNOWN_APP and nothing starts', async t => {
  const { manager, session, receiver } = await setup(t)
  t.ok(manager.handle({ type: 'start_app', packageName: 'com.nope' }))
  t.match(session.of('error'), [{ code: 'UNKNOWN_APP' }])
  t.equal(await outcome(manager.start('com.nope', 'user')), false)
  t.same(session.apps?.running(), [])
  t.equal(receiver.received.length, 0)
})
