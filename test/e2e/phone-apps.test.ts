/**
 * Real phones end to end, apps side: the phone emulator against the real server
 * with @mentra/sdk apps: apps over REST, the vocabulary, transcripts, REST data
 * and the requests apps make through the phone.
 */
import t from 'tap'
import type { AppSession } from '@mentra/sdk'
import { delay, eventually } from '../helper.js'
import { phone, running, world } from '../phone-world.js'
import type { RecordingApp, RunningApp, SdkAppOptions } from '../sdk-app.js'

t.test('apps over REST: list with hardware requirements, a start that holds its reply, one standard app at a time, stop', async t => {
  const { server, sdk } = await world(t, [
    { packageName: 'com.example.notes', entry: { hardwareRequirements: [{ type: 'DISPLAY', level: 'REQUIRED' }], logoUrl: 'https://x/logo.png' } },
    { packageName: 'com.example.music' },
    { packageName: 'com.example.steps', entry: { type: 'background' } }
  ])
  const [notes, music, steps] = sdk as [RunningApp, RunningApp, RunningApp]
  const p = await phone(t, server, 'rest@example.com')
  await p.waitForRest('GET', '/api/client/apps')
  const listed = (await p.listApps()).body as { data: Array<Record<string, unknown>> }
  t.same(listed.data.map(a => a.packageName), ['com.example.notes', 'com.example.music', 'com.example.steps'])
  t.ok(listed.data.every(a => Array.isArray(a.hardwareRequirements) && Array.isArray(a.permissions)), 'always arrays')
  t.match(listed.data[0], { logoUrl: 'https://x/logo.png', webviewUrl: '', type: 'standard', running: false, healthy: true, hardwareRequirements: [{ type: 'DISPLAY', level: 'REQUIRED' }] })

  const started = await p.startApp(notes.packageName)
  // The reply was held until the app's socket was acknowledged.
  t.match(started, { status: 200, body: { success: true, data: { status: 'started', isRunning: true } } })
  t.same(server.app.sessions.get('rest@example.com')?.view().activeAppSessions, [notes.packageName], 'running when the reply came')
  await eventually(() => notes.app.sessions.length === 1, 'onSession')

  await p.startApp(steps.packageName)
  t.match(await p.startApp(music.packageName), { status: 200, body: { data: { isRunning: true } } })
  await eventually(() => notes.app.stops.length === 1, 'the other standard app stopped', 3000)
  t.equal(notes.app.stops[0]?.reason, 'user_stopped')
  const now = (await p.listApps()).body as { data: unknown[] }
  t.same([running(now.data, notes.packageName), running(now.data, music.packageName), running(now.data, steps.packageName)], [false, true, true],
    'the background app runs beside the standard one')

  t.match(await p.stopApp(music.packageName), { status: 200, body: { success: true, data: { status: 'stopped', isRunning: false } } })
  await eventually(() => music.app.stops.length === 1, 'stopped')
  t.match(await p.request('POST', '/apps/com.example.nope/start'), { status: 404, body: { success: false } })
  // The phone refetches the list after each app_state_change (throttled) and after start and stop.
  t.ok(p.restCalls.filter(c => c.method === 'GET' && c.path === '/api/client/apps').length >= 3)
})

t.test('transcripts: an Android-shape German transcript reaches transcription:de-DE subscribers only', async t => {
  const german: SdkAppOptions = {
    extra: (session: AppSession, app: RecordingApp) => {
      session.events.onTranscriptionForLanguage('de-DE', data => { app.received.push({ kind: 'de', data }) })
    }
  }
  const { server, sdk } = await world(t, [{ packageName: 'com.example.german', options: german }, { packageName: 'com.example.english', entry: { type: 'background' } }])
  const [de, en] = sdk as [RunningApp, RunningApp]
  const p = await phone(t, server, 'android@example.com', { platform: 'android' })
  await p.startApp(de.packageName)
  await p.startApp(en.packageName)
  await eventually(() => p.micState.requiredData.includes('transcription'), 'transcripts asked for')
  await eventually(() => (server.app.sessions.get('android@example.com')?.view().appSubscriptions[de.packageName] ?? []).includes('transcription:de-DE'), 'subscribed')
  t.ok(p.sendTranscript('Guten Morgen', true, 'de-DE'))
  p.sendTranscript('Good morning', true, 'en-US')
  await eventually(() => de.app.of('de').length === 1 && en.app.of('transcription').length === 1, 'delivered')
  t.match(de.app.of('de')[0]?.data, { text: 'Guten Morgen', isFinal: true, transcribeLanguage: 'de-DE' })
  t.equal(de.app.of('transcription').length, 0, 'the German app subscribed to no English')
  t.match(en.app.of('transcription')[0]?.data, { text: 'Good morning' })
  await delay(100)
  t.equal(en.app.of('de').length + en.app.of('transcription').length, 1, 'the English app got only English')
})

/** One well-formed message of every type a current phone sends (docs/PHONE.md section 4). */
const PHONE_MESSAGES: Array<Record<string, unknown>> = [
  { type: 'button_press', buttonId: 'main', pressType: 'short' },
  { type: 'head_position', position: 'up' },
  { type: 'touch_event', gesture_name: 'forward_swipe' },
  { type: 'VAD', status: 'true' },
  { type: 'VAD', status: false },
  { type: 'glasses_battery_update', level: 80, charging: false },
  { type: 'location_update', lat: 1, lng: 2, correlationId: 'nobody-asked' },
  { type: 'local_transcription', text: 'hi', isFinal: false, startTime: 1, endTime: 2, speakerId: 0, transcribeLanguage: 'en-US', provider: 'apple' },
  { type: 'local_transcription', text: 'hi', isFinal: true, language: 'en-US' },
  { type: 'audio_play_response', requestId: 'unknown', success: true, error: null, duration: 1 },
  { type: 'rgb_led_control_response', requestId: 'x', success: true },
  { type: 'stream_status', status: 'active' },
  { type: 'keep_alive_ack', streamId: 's' },
  { type: 'swipe_volume_status', enabled: true },
  { type: 'switch_status', switchType: 1, value: 0 },
  { type: 'phone_subscription_update', subscriptions: [] },
  { type: 'stream_request', streamUrl: 'rtmp://x' },
  { type: 'stream_stop' },
  { type: 'managed_stream_request' },
  { type: 'managed_stream_stop' },
  { type: 'video_stream_response', success: true },
  { type: 'udp_register', userIdHash: 1 },
  { type: 'udp_unregister' },
  { type: 'connection_init' },
  { type: 'glasses_connection_state', status: 'CONNECTED' },
  { type: 'core_status_update', status: {} },
  { type: 'calendar_event', title: 'x' },
  { type: 'phone_notification', title: 'x' },
  { type: 'photo_response', requestId: 'x' },
  { type: 'rtmp_stream_status', status: 'x' },
  { type: 'config' },
  { type: 'vad', status: true }
]

t.test('the phone\'s whole vocabulary, 30 times each in a minute: no close, no error; relayed to subscribers of the exact type', async t => {
  const watcher: SdkAppOptions = {
    extra: (session: AppSession, app: RecordingApp) => {
      session.events.on('swipe_volume_status', data => { app.received.push({ kind: 'swipe_volume_status', data }) })
      session.events.onVoiceActivity(data => { app.received.push({ kind: 'vad', data }) })
    }
  }
  const { server, sdk } = await world(t, [{ packageName: 'com.example.watcher', options: watcher }])
  const watcherApp = sdk[0] as RunningApp
  const p = await phone(t, server, 'chatty@example.com')
  await p.startApp(watcherApp.packageName)
  await eventually(() => (server.app.sessions.get('chatty@example.com')?.view().appSubscriptions[watcherApp.packageName] ?? []).includes('swipe_volume_status'), 'subscribed')
  for (let round = 0; round < 30; round++) {
    for (const message of PHONE_MESSAGES) p.send(message)
  }
  p.send({ type: 'something_new', value: 1 })
  p.send({ type: 'something_new', value: 2 })
  await eventually(() => watcherApp.app.of('swipe_volume_status').length === 30, 'an unlisted-by-the-SDK type relayed', 5000)
  await eventually(() => watcherApp.app.of('vad').length >= 60, 'VAD relayed', 5000)
  t.ok(watcherApp.app.of('vad').every(r => typeof (r.data as { status: unknown }).status === 'boolean'), 'VAD status is a boolean at the app')
  p.sendButton()
  await p.waitForMessage('pong', 3000, p.received.length)
  const errors = p.messages('error')
  t.same(errors.map(e => e.code), ['UNKNOWN_TYPE'], 'one error in all: the first message of a type nobody knows')
  t.equal(p.closes.length, 0, 'never closed')
  t.equal(p.acks, 1 + 30, 'connection_init is answered with the ack again')
  const metrics = await (await fetch(`${server.httpUrl}/metrics`)).text()
  t.match(metrics, /tether_messages_total\{direction="in",kind="other"\} 2/, 'unlisted types share one label')
  t.notMatch(metrics, /kind="something_new"/)
})

t.test('location, calendar and notifications over REST reach the apps; latecomers get the last fix and the events', async t => {
  const listener: SdkAppOptions = {
    extra: (session: AppSession, app: RecordingApp) => {
      session.events.onLocation(data => { app.received.push({ kind: 'location', data }) })
      session.events.onCalendarEvent(data => { app.received.push({ kind: 'calendar', data }) })
      session.events.onPhoneNotifications(data => { app.received.push({ kind: 'notification', data }) })
      session.events.onPhoneNotificationDismissed(data => { app.received.push({ kind: 'dismissed', data }) })
    }
  }
  const { server, sdk } = await world(t, [{ packageName: 'com.example.listener', options: listener }, { packageName: 'com.example.late', options: listener, entry: { type: 'background' } }])
  const [first, late] = sdk as [RunningApp, RunningApp]
  const p = await phone(t, server, 'data@example.com', {
    calendarEvents: [{ id: 'ev1', title: 'Standup', startDate: '2030-01-01T09:00:00Z', endDate: '2030-01-01T09:15:00Z', timeZone: 'UTC', allDay: false }]
  })
  await p.startApp(first.packageName)
  await eventually(() => (server.app.sessions.get('data@example.com')?.view().appSubscriptions[first.packageName] ?? []).length >= 8, 'subscribed')
  t.match(await p.postLocation({ lat: 48.14, lng: 11.58, accuracy: 12 }), { status: 200 })
  t.match(await p.request('POST', '/api/client/location', { coords: {} }), { status: 400 })
  t.match(await p.postNotification({ notificationId: 'n1', app: 'Mail', title: 'New mail', content: 'Hello' }), { status: 200 })
  t.match(await p.request('POST', '/api/client/notifications', { title: 'no id' }), { status: 400 })
  t.match(await p.postNotificationDismissed({ notificationId: 'n1', notificationKey: 'k1', packageName: 'com.mail' }), { status: 200 })
  t.match(await p.postCalendar(), { status: 200 })
  t.match(await p.request('POST', '/api/client/calendar', { calendars: [] }), { status: 400 })
  await eventually(() => first.app.of('location').length === 1 && first.app.of('notification').length === 1 &&
    first.app.of('dismissed').length === 1 && first.app.of('calendar').length >= 1, 'all delivered', 3000)
  t.match(first.app.of('location')[0]?.data, { lat: 48.14, lng: 11.58, accuracy: 12 })
  t.match(first.app.of('notification')[0]?.data, { notificationId: 'n1', app: 'Mail', title: 'New mail', content: 'Hello', priority: 'normal' })
  t.match(first.app.of('dismissed')[0]?.data, { notificationId: 'n1', notificationKey: 'k1' })
  t.match(first.app.of('calendar').at(-1)?.data, { eventId: 'ev1', title: 'Standup', dtStart: '2030-01-01T09:00:00.000Z' })

  await p.startApp(late.packageName)
  await eventually(() => late.app.of('location').length === 1 && late.app.of('calendar').length >= 1, 'the latecomer got the kept data', 3000)
  t.match(late.app.of('location')[0]?.data, { lat: 48.14 })
  t.equal(late.app.of('notification').length, 0, 'notifications are not kept')
})

t.test('requests through the phone are answered to the asking app only; with no phone they fail at once', async t => {
  const { server, sdk } = await world(t, [{ packageName: 'com.example.player' }, { packageName: 'com.example.bystander', entry: { type: 'background' } }])
  const [player, bystander] = sdk as [RunningApp, RunningApp]
  const p = await phone(t, server, 'relay@example.com', { location: { lat: 40.7, lng: -74, accuracy: 3 } })
  await p.startApp(player.packageName)
  await p.startApp(bystander.packageName)
  await eventually(() => player.app.sessions.length === 1 && bystander.app.sessions.length === 1, 'both running')
  const session = (player.app.sessions[0] as { session: AppSession }).session
  const played = await session.audio.playAudio({ audioUrl: 'https://example.com/chime.mp3' })
  t.match(played, { success: true })
  t.match(p.messages('audio_play_request')[0], { sessionId: 'relay@example.com', packageName: player.packageName, audioUrl: 'https://example.com/chime.mp3' })
  const fix = await session.location.getLatestLocation({ accuracy: 'high' })
  t.match(fix, { lat: 40.7, lng: -74 })
  t.equal(p.messages('request_single_location').length, 1)
  const again = await session.location.getLatestLocation({ accuracy: 'kilometer' })
  t.match(again, { lat: 40.7 })
  t.equal(p.messages('request_single_location').length, 1, 'a fresh fix answers a coarse poll without the phone')
  t.equal(bystander.app.received.length, 0, 'the other app heard none of it')

  await p.stop()
  await eventually(() => server.app.sessions.get('relay@example.com')?.state === 'grace', 'phone gone')
  const failed = await session.audio.playAudio({ audioUrl: 'https://example.com/chime.mp3' })
  t.match(failed, { success: false, error: /not connected/ })
})
