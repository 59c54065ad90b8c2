/**
 * Drain (issue 5) on a real server process: 2,000 sessions closed 1001 in
 * batches after /ready turns 503, all disposed with reason `shutdown`, exit 0
 * within SHUTDOWN_TIMEOUT_MS; a second signal exits at once.
 */
import { once } from 'node:events'
import t from 'tap'
import WebSocket from 'ws'
import { SECRET, eventually, glassesToken, type Teardown } from '../helper.js'
import { startServerProcess, type ServerProcess } from '../server-process.js'

async function startDrainingServer (t: Teardown, env: Record<string, string>): Promise<ServerProcess> {
  return await startServerProcess(t, { AUGMENTOS_AUTH_JWT_SECRET: SECRET, UPGRADE_RATE_LIMIT: '100000', ...env })
}

interface Glasses { ws: WebSocket, closed: Promise<{ code: number, at: number }> }

/** Connect `count` glasses, `parallel` at a time, each resolved once acked. */
async function connectMany (t: Teardown, port: number, count: number, parallel = 100): Promise<Glasses[]> {
  const all: Glasses[] = []
  for (let start = 0; start < count; start += parallel) {
    const batch = await Promise.all(Array.from({ length: Math.min(parallel, count - start) }, async (_, i) => {
      const ws = new WebSocket(`ws://127.0.0.1:${port}/glasses-ws`, { headers: { authorization: `Bearer ${glassesToken(`drain${start + i}@example.com`)}` } })
      t.teardown(() => ws.terminate())
      const closed = new Promise<{ code: number, at: number }>(resolve => ws.on('close', code => resolve({ code, at: Date.now() })))
      ws.on('error', () => {})
      await new Promise<void>((resolve, reject) => {
        ws.once('message', () => resolve())
        ws.once('close', () => reject(new Error('closed before ack')))
      })
      return { ws, closed }
    }))
    all.push(...batch)
  }
  return all
}

t.test('SIGTERM drains 2,000 sessions in batches with 1001 and exits 0 within budget', async t => {
  const server = await startDrainingServer(t, { SHUTDOWN_TIMEOUT_MS: '8000', DRAIN_BATCH_SIZE: '500', DRAIN_BATCH_INTERVAL_MS: '400' })
  const glasses = await connectMany(t, server.port, 2000)
  t.equal(glasses.length, 2000, 'all acked')
  const signalledAt = Date.now()
  server.child.kill('SIGTERM')
  const closes = await Promise.all(glasses.map(async g => await g.closed))
  const [code] = await once(server.child, 'exit') as [number | null]
  const tookMs = Date.now() - signalledAt
  t.equal(code, 0, 'exit 0')
  t.ok(tookMs < 8000, `within SHUTDOWN_TIMEOUT_MS (took ${tookMs} ms)`)
  t.equal(closes.filter(c => c.code === 1001).length, 2000, 'every socket closed 1001')
  const times = closes.map(c => c.at).sort((a, b) => a - b)
  // Four batches 400 ms apart: 1.2 s from first to last nominally; a busy machine may squeeze it, not halve it.
  const spread = (times.at(-1) ?? 0) - (times[0] ?? 0)
  t.ok(spread >= 600, `closed in batches, not all at once (${spread} ms from first to last)`)
  const disposed = server.output().split('\n').filter(l => l.includes('"msg":"session.disposed"') && l.includes('"reason":"shutdown"'))
  t.equal(disposed.length, 2000, 'every session disposed with reason shutdown')
})

t.test('/ready and upgrades answer 503 while draining; a second signal exits at once', async t => {
  const server = await startDrainingServer(t, { SHUTDOWN_TIMEOUT_MS: '20000', DRAIN_BATCH_SIZE: '20', DRAIN_BATCH_INTERVAL_MS: '500' })
  const glasses = await connectMany(t, server.port, 200)
  server.child.kill('SIGTERM')
  await eventually(() => glasses.some(g => g.ws.readyState !== WebSocket.OPEN), 'the first batch closing', 5000)
  const ready = await fetch(`http://127.0.0.1:${server.port}/ready`)
  t.equal(ready.status, 503, '/ready is 503 while draining')
  const refused = await new Promise<number>(resolve => {
    const ws = new WebSocket(`ws://127.0.0.1:${server.port}/glasses-ws`, { headers: { authorization: `Bearer ${glassesToken('late@example.com')}` } })
    ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0))
    ws.on('open', () => { ws.terminate(); resolve(101) })
    ws.on('error', () => {})
  })
  t.equal(refused, 503, 'new upgrades get 503')
  const secondAt = Date.now()
  server.child.kill('SIGTERM')
  const [code] = await once(server.child, 'exit') as [number | null]
  t.ok(Date.now() - secondAt < 2000, 'the second signal ends the process at once')
  t.equal(code, 1, 'exit 1: the drain did not finish')
  const closes = await Promise.all(glasses.map(async g => await g.closed))
  const polite = closes.filter(c => c.code === 1001).length
  t.ok(polite > 0 && polite < 200, `the drain was cut short (${polite} of 200 closed 1001)`)
})
