/** A scripted lifecycle and the exact counters a scrape then shows. */
import t from 'tap'
import { admin, connectAcked, eventually, refusedUpgrade, startServer } from '../helper.js'

function value (text: string, series: string): number {
  const line = text.split('\n').find(l => l.startsWith(`${series} `))
  if (line === undefined) throw new Error(`no series ${series}`)
  return Number(line.slice(series.length + 1))
}

t.test('connect, drop, resume, replace, expire, admin delete: exact counters', async t => {
  const server = await startServer(t, { gracePeriodMs: 100 })
  // a: connect, drop, resume, replaced by a newer socket, then ended by an admin.
  const a1 = await connectAcked(t, server, 'a@example.com')
  a1.client.terminate()
  await eventually(() => server.app.sessions.get('a@example.com')?.state === 'grace', 'a in grace')
  const a2 = await connectAcked(t, server, 'a@example.com')
  await connectAcked(t, server, 'a@example.com')
  t.equal(await a2.client.waitClosed(), 4001)
  // b: connect, send traffic, drop, expire.
  const b = await connectAcked(t, server, 'b@example.com')
  b.client.send({ type: 'local_transcription', text: 'hello', isFinal: true })
  b.client.ws.send(Buffer.alloc(320))
  b.client.send('not json')
  b.client.send({ type: 'ping' })
  await b.client.next('pong')
  b.client.ws.close(1000)
  await eventually(() => server.app.sessions.get('b@example.com') === undefined && server.app.sessions.size === 1, 'b expired', 2000)
  t.equal((await admin(server, 'DELETE', '/sessions/a@example.com')).statusCode, 204)

  const text = await (await fetch(`${server.httpUrl}/metrics`)).text()
  const expected: Record<string, number> = {
    'tether_sessions{state="active"}': 0,
    'tether_sessions{state="grace"}': 0,
    tether_sessions_created_total: 2,
    tether_sessions_resumed_total: 1,
    tether_sessions_replaced_total: 1,
    'tether_sessions_disposed_total{reason="grace_expired"}': 1,
    'tether_sessions_disposed_total{reason="manual"}': 1,
    'tether_close_codes_sent_total{code="4001"}': 1,
    'tether_close_codes_sent_total{code="4002"}': 1,
    'tether_close_codes_received_total{code="1006"}': 1,
    'tether_close_codes_received_total{code="1000"}': 1,
    'tether_messages_total{direction="in",kind="local_transcription"}': 1,
    'tether_messages_total{direction="in",kind="invalid"}': 1,
    'tether_messages_total{direction="in",kind="audio"}': 1,
    'tether_messages_total{direction="in",kind="ping"}': 1,
    'tether_messages_total{direction="out",kind="connection_ack"}': 4,
    'tether_messages_total{direction="out",kind="pong"}': 1,
    'tether_messages_total{direction="out",kind="error"}': 1,
    'tether_bytes_total{direction="in",kind="audio"}': 320,
    tether_audio_bytes_total: 320,
    tether_audio_chunks_total: 1,
    tether_transcripts_total: 1,
    tether_heartbeat_terminations_total: 0,
    tether_grace_downtime_seconds_count: 1,
    tether_session_duration_seconds_count: 2,
    tether_time_to_ack_seconds_count: 4
  }
  for (const [series, want] of Object.entries(expected)) t.equal(value(text, series), want, series)
  // Traffic series are read from one tally at each scrape: a second scrape shows the same totals.
  const again = await (await fetch(`${server.httpUrl}/metrics`)).text()
  for (const series of ['tether_audio_chunks_total', 'tether_transcripts_total', 'tether_messages_total{direction="in",kind="audio"}']) {
    t.equal(value(again, series), expected[series], `${series}, scraped again`)
  }
  t.ok(value(text, 'tether_event_loop_lag_seconds') >= 0, 'event-loop lag is reported')
  t.match(text, /process_cpu_user_seconds_total/, 'default process metrics')
})

t.test('upgrade rejections are counted by status and code', async t => {
  const server = await startServer(t)
  await refusedUpgrade(server, {})
  await refusedUpgrade(server, {}, '?token=bad')
  const text = await (await fetch(`${server.httpUrl}/metrics`)).text()
  t.match(text, /tether_upgrade_rejections_total\{status="401",code="NO_TOKEN"\} 1/)
  t.match(text, /tether_upgrade_rejections_total\{status="401",code="INVALID_TOKEN"\} 1/)
})
