/** One structured JSON log line per lifecycle transition, read from the real logger stream. */
import t from 'tap'
import { admin, connectAcked, eventually, startServer } from '../helper.js'

t.test('each transition logs one line with the documented fields', async t => {
  const server = await startServer(t, { logLevel: 'info', gracePeriodMs: 5000 })
  const first = await connectAcked(t, server, 'log@example.com')
  first.client.terminate()
  await eventually(() => server.app.sessions.get('log@example.com')?.state === 'grace', 'grace')
  await connectAcked(t, server, 'log@example.com')
  await connectAcked(t, server, 'log@example.com')
  t.equal((await admin(server, 'DELETE', '/sessions/log@example.com')).statusCode, 204)

  const lines = server.logs().filter(l => typeof l.msg === 'string' && l.msg.startsWith('session.'))
  t.same(lines.map(l => l.msg), [
    'session.created', 'session.attached', 'session.detached', 'session.resumed', 'session.attached',
    'session.replaced', 'session.attached', 'session.disposed'
  ])
  const sessionInstanceId = first.ack.sessionInstanceId
  for (const line of lines) {
    t.match(line, { event: line.msg, userId: 'log@example.com', sessionInstanceId, nodeId: 'test-node', reconnections: Number, at: String })
  }
  const byName = (name: string): Record<string, unknown> | undefined => lines.find(l => l.msg === name)
  t.match(byName('session.attached'), { connectionId: first.ack.connectionId, reason: 'created', ackMs: Number })
  t.match(byName('session.detached'), { connectionId: first.ack.connectionId, reason: 'client_closed', closeCode: 1006, silenceMs: Number })
  t.match(byName('session.resumed'), { reconnections: 1, downtimeMs: Number })
  t.match(byName('session.replaced'), { reconnections: 2, reason: /^replaced / })
  t.match(byName('session.disposed'), { reason: 'manual', closeCode: 4002, durationMs: Number, reconnections: 2, failures: [] })
})
