/** server.ts as a real process: zero-config dev mode, no tokens with a secret, SIGTERM drains and exits 0. */
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import WebSocket from 'ws'
import { Client, SECRET, eventually, glassesToken } from '../helper.js'
import { startServerProcess } from '../server-process.js'

const serverFile = fileURLToPath(new URL('../../server.ts', import.meta.url))

const run = startServerProcess

t.test('without a secret: loud dev mode with working tokens; SIGTERM closes 1001 and exits 0', async t => {
  const server = await run(t, {})
  const output = await eventually(() => server.output().includes('=======\n') ? server.output() : undefined, 'banner', 5000)
  t.match(output, /DEV MODE/)
  const glasses = /glasses token[^\n]*\n\s+(\S+)/.exec(output)?.[1]
  const adminToken = /admin token[^\n]*\n\s+(\S+)/.exec(output)?.[1]
  t.ok(glasses !== undefined && adminToken !== undefined, 'both tokens printed')
  const ws = new WebSocket(`ws://127.0.0.1:${server.port}/glasses-ws`, { headers: { authorization: `Bearer ${glasses ?? ''}` } })
  const client = new Client(ws)
  t.teardown(() => ws.terminate())
  await client.next('connection_ack', 5000)
  const list = await fetch(`http://127.0.0.1:${server.port}/sessions`, { headers: { authorization: `Bearer ${adminToken ?? ''}` } })
  t.equal(list.status, 200)
  t.equal((await list.json() as { counts: { active: number } }).counts.active, 1)
  server.child.kill('SIGTERM')
  const [code] = await once(server.child, 'exit') as [number | null]
  t.equal(code, 0, 'exit 0')
  t.equal(await client.waitClosed(5000), 1001, 'glasses closed 1001')
  t.match(server.output(), /"reason":"shutdown"/, 'the session was disposed with reason shutdown')
})

t.test('with a secret: no tokens printed, no dev mode', async t => {
  const server = await run(t, { AUGMENTOS_AUTH_JWT_SECRET: SECRET })
  const ws = new WebSocket(`ws://127.0.0.1:${server.port}/glasses-ws`, { headers: { authorization: `Bearer ${glassesToken('prod@example.com')}` } })
  const client = new Client(ws)
  t.teardown(() => ws.terminate())
  await client.next('connection_ack', 5000)
  server.child.kill('SIGINT')
  const [code] = await once(server.child, 'exit') as [number | null]
  t.equal(code, 0)
  t.notMatch(server.output(), /DEV MODE/)
  t.notMatch(server.output(), /eyJ/, 'no token anywhere in the output')
})

t.test('invalid configuration fails at boot naming the variable', async t => {
  const child = spawn(process.execPath, [...process.execArgv, serverFile], {
    env: { ...process.env, GRACE_PERIOD_MS: 'soon', PORT: '0' },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let stderr = ''
  child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString() })
  const [code] = await once(child, 'exit') as [number | null]
  t.equal(code, 2)
  t.match(stderr, /GRACE_PERIOD_MS/)
})

t.test('a secret shorter than 32 bytes is accepted with a warning', async t => {
  const server = await run(t, { AUGMENTOS_AUTH_JWT_SECRET: 'too-short' })
  await eventually(() => server.output().includes('shorter than 32 bytes') ? true : undefined, 'the warning', 5000)
  server.child.kill('SIGTERM')
  const [code] = await once(server.child, 'exit') as [number | null]
  t.equal(code, 0)
  t.notMatch(server.output(), /DEV MODE/)
})
