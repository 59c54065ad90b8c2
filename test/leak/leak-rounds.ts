/**
 * Leak proof (issue 5), run by test/leak.test.ts in its own process with
 * --expose-gc: rounds of 2,000 sessions connecting, exchanging messages,
 * dropping, resuming, dropping again and being disposed from their grace period. Prints one JSON line of findings.
 */
import { once } from 'node:events'
import WebSocket from 'ws'
import { buildApp } from '../../app.js'
import { glassesToken, testConfig } from '../helper.js'

const SESSIONS = Number(process.env.LEAK_SESSIONS ?? 2000)
const ROUNDS = Number(process.env.LEAK_ROUNDS ?? 5)
const PARALLEL = 200

const gc = (globalThis as { gc?: () => void }).gc
if (gc === undefined) throw new Error('run with --expose-gc')

function resources (): Record<string, number> {
  const counts: Record<string, number> = {}
  for (const kind of process.getActiveResourcesInfo()) counts[kind] = (counts[kind] ?? 0) + 1
  return counts
}

async function settle (): Promise<number> {
  for (let i = 0; i < 3; i++) {
    await new Promise(resolve => setImmediate(resolve))
    gc?.()
  }
  return process.memoryUsage().heapUsed
}

const app = await buildApp(testConfig({ gracePeriodMs: 60_000, pingIntervalMs: 1000, silenceTimeoutMs: 5000 }))
await app.listen({ port: 0, host: '127.0.0.1' })
const port = (app.server.address() as { port: number }).port
await settle()
const before = resources()

/** Open a glasses socket for each user and wait for its ack; returns the sockets and their acks. */
async function connectAll (users: string[]): Promise<Array<{ ws: WebSocket, ack: { reconnection: boolean } }>> {
  const out: Array<{ ws: WebSocket, ack: { reconnection: boolean } }> = []
  for (let i = 0; i < users.length; i += PARALLEL) {
    out.push(...await Promise.all(users.slice(i, i + PARALLEL).map(async user => {
      const ws = new WebSocket(`ws://127.0.0.1:${port}/glasses-ws`, { headers: { authorization: `Bearer ${glassesToken(user)}` } })
      const [data] = await once(ws, 'message') as [Buffer]
      return { ws, ack: JSON.parse(data.toString()) as { reconnection: boolean } }
    })))
  }
  return out
}

async function until (check: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 30_000
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out: ${what}`)
    await new Promise(resolve => setTimeout(resolve, 20))
  }
}

const heap: number[] = []
let resumed = 0
for (let round = 0; round < ROUNDS; round++) {
  const users = Array.from({ length: SESSIONS }, (_, i) => `leak${i}@example.com`)
  const first = await connectAll(users)
  await Promise.all(first.map(async ({ ws }) => {
    ws.send(JSON.stringify({ type: 'button_press', buttonId: 'b', pressType: 'short' }))
    ws.send(JSON.stringify({ type: 'local_transcription', text: 'leak check', isFinal: true }))
    ws.send(Buffer.alloc(640))
    ws.send(JSON.stringify({ type: 'ping' }))
    await once(ws, 'message')
  }))
  for (const { ws } of first) ws.terminate()
  await until(() => app.sessions.counts().grace === SESSIONS, 'all in grace')
  const second = await connectAll(users)
  resumed += second.filter(s => s.ack.reconnection).length
  for (const { ws } of second) ws.terminate()
  await until(() => app.sessions.counts().grace === SESSIONS, 'all in grace again')
  // Sessions in their grace period, ended the way an admin or a shutdown ends them.
  await Promise.all(users.map(async user => await app.sessions.dispose(user, 'manual')))
  await until(() => app.sessions.size === 0, 'all disposed')
  heap.push(await settle())
}
await new Promise(resolve => setTimeout(resolve, 100))
await settle()
const after = resources()
await app.close()
process.stdout.write(JSON.stringify({ heap, resumed, sessionsLeft: app.sessions.size, before, after }) + '\n')
