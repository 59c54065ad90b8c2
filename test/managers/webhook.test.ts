/**
 * postWebhook against a loopback HTTP server of the test's own: the request, the
 * one retry on a 5xx or a network error, no retry on a 4xx, the deadline and the abort.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import t from 'tap'
import { postWebhook } from '../../managers/webhook.js'
import { listenOnLoopback, type Teardown } from '../helper.js'

interface Received { method: string | undefined, url: string | undefined, headers: IncomingMessage['headers'], body: string }

/** A server that answers the n-th request (from 0) as `answer` says, recording every request. */
async function webhookServer (t: Teardown, answer: (n: number, response: ServerResponse, request: IncomingMessage) => void) {
  const received: Received[] = []
  const server = createServer((request, response) => {
    let body = ''
    request.on('data', (chunk: Buffer) => { body += chunk.toString() })
    request.on('end', () => {
      received.push({ method: request.method, url: request.url, headers: request.headers, body })
      answer(received.length - 1, response, request)
    })
  }).listen(0, '127.0.0.1')
  const port = await listenOnLoopback(t, server)
  return { url: `http://127.0.0.1:${port}/webhook`, received }
}

const status = (code: number) => (_n: number, response: ServerResponse): void => { response.writeHead(code).end('{}') }
const soon = (ms = 2000): number => Date.now() + ms

t.test('a JSON POST, without an Authorization header; a 2xx is ok at once', async t => {
  const { url, received } = await webhookServer(t, status(200))
  const body = { type: 'session_request', sessionId: 'abc', userId: 'u@x.io' }
  t.same(await postWebhook(url, body, { deadline: soon() }), { ok: true, status: 200 })
  t.equal(received.length, 1)
  t.match(received[0], { method: 'POST', url: '/webhook', headers: { 'content-type': 'application/json' } })
  t.same(JSON.parse(received[0]?.body ?? ''), body)
  t.notOk('authorization' in (received[0]?.headers ?? {}), 'no Authorization: the SDK would read it as a user token')
})

t.test('a 4xx is an answer: not retried', async t => {
  const { url, received } = await webhookServer(t, status(404))
  t.same(await postWebhook(url, {}, { deadline: soon() }), { ok: false, status: 404 })
  t.equal(received.length, 1)
})

t.test('a 5xx is retried once, and the retry\'s answer counts', async t => {
  const failing = await webhookServer(t, status(503))
  t.same(await postWebhook(failing.url, {}, { deadline: soon() }), { ok: false, status: 503 })
  t.equal(failing.received.length, 2, 'one retry')

  const recovering = await webhookServer(t, (n, response) => { response.writeHead(n === 0 ? 500 : 200).end() })
  t.same(await postWebhook(recovering.url, {}, { deadline: soon() }), { ok: true, status: 200 })
  t.equal(recovering.received.length, 2)

  const once = await webhookServer(t, status(502))
  t.same(await postWebhook(once.url, {}, { deadline: soon(), retries: 0 }), { ok: false, status: 502 })
  t.equal(once.received.length, 1, 'retries: 0 sends once')
})

t.test('a network error is retried once and reported', async t => {
  const { url, received } = await webhookServer(t, (_n, _response, request) => { request.socket.destroy() })
  const result = await postWebhook(url, {}, { deadline: soon() })
  t.equal(result.ok, false)
  t.equal(result.status, undefined)
  t.type(result.error, 'string')
  t.equal(received.length, 2, 'sent twice')
})

t.test('every attempt within one deadline; a deadline already past sends nothing', async t => {
  const { url, received } = await webhookServer(t, () => { /* never answers */ })
  const started = Date.now()
  const result = await postWebhook(url, {}, { deadline: started + 150 })
  const took = Date.now() - started
  t.equal(result.ok, false)
  t.type(result.error, 'string')
  t.ok(took >= 140 && took < 1000, `gave up at the deadline (${took} ms)`)
  t.equal(received.length, 1, 'no retry once the deadline passed')

  t.same(await postWebhook(url, {}, { deadline: Date.now() - 1 }), { ok: false, error: 'not sent' })
  t.equal(received.length, 1)
})

t.test('the session\'s signal aborts the call, and there is no retry after it', async t => {
  const { url, received } = await webhookServer(t, () => { /* never answers */ })
  const controller = new AbortController()
  setTimeout(() => controller.abort(new Error('the user session ended')), 50).unref()
  const started = Date.now()
  const result = await postWebhook(url, {}, { deadline: soon(5000), signal: controller.signal })
  t.ok(Date.now() - started < 1000, 'returns at the abort, long before the deadline')
  t.equal(result.ok, false)
  t.equal(received.length, 1)

  t.same(await postWebhook(url, {}, { deadline: soon(), signal: AbortSignal.abort() }), { ok: false, error: 'not sent' },
    'an aborted signal sends nothing')
  t.equal(received.length, 1)
})
