/** PROTOCOL 1.1: authentication happens before the upgrade; every failure is an HTTP 401 with no socket. */
import t from 'tap'
import WebSocket from 'ws'
import { connectGlasses, glassesToken, refusedUpgrade, sign, startServer } from '../../helper.js'

const bearer = (token: string): Record<string, string> => ({ authorization: `Bearer ${token}` })

t.test('refused tokens get 401 connection_error and no socket', async t => {
  const server = await startServer(t)
  const now = Math.floor(Date.now() / 1000)
  const cases: Array<[string, Record<string, string>, string, string]> = [
    ['no token', {}, '', 'NO_TOKEN'],
    ['garbage', bearer('not-a-jwt'), '', 'INVALID_TOKEN'],
    ['wrong secret', bearer(sign({ email: 'a@x.io', sub: 's' }, { key: 'another-secret-another-secret-xx' })), '', 'INVALID_TOKEN'],
    ['alg none', bearer(`${Buffer.from('{"alg":"none","typ":"JWT"}').toString('base64url')}.${Buffer.from('{"email":"a@x.io","sub":"s"}').toString('base64url')}.`), '', 'INVALID_TOKEN'],
    ['HS512 with the right secret', bearer(sign({ email: 'a@x.io', sub: 's' }, { algorithm: 'HS512' })), '', 'INVALID_TOKEN'],
    ['expired', bearer(sign({ email: 'a@x.io', sub: 's', exp: now - 3600 })), '', 'INVALID_TOKEN'],
    ['not yet valid', bearer(sign({ email: 'a@x.io', sub: 's', nbf: now + 3600 })), '', 'INVALID_TOKEN'],
    ['missing email', bearer(sign({ sub: 's' })), '', 'INVALID_TOKEN'],
    ['blank email', bearer(sign({ email: '  ', sub: 's' })), '', 'INVALID_TOKEN'],
    ['missing sub', bearer(sign({ email: 'a@x.io' })), '', 'INVALID_TOKEN'],
    ['bad token in the query', {}, '?token=garbage', 'INVALID_TOKEN']
  ]
  for (const [name, headers, query, code] of cases) {
    const { status, body } = await refusedUpgrade(server, headers, query)
    t.equal(status, 401, `${name}: status`)
    t.equal(body.type, 'connection_error', `${name}: body type`)
    t.equal(body.code, code, `${name}: code`)
    t.type(body.timestamp, 'string', `${name}: timestamp`)
  }
  t.equal(server.app.sessions.size, 0, 'no session was created')
})

t.test('a valid token in the header or the query is accepted; email is lower-cased and trimmed', async t => {
  const server = await startServer(t)
  const header = await connectGlasses(t, server, glassesToken('  Alice@Example.COM '))
  const ack = await header.next('connection_ack')
  t.equal(ack.sessionId, 'alice@example.com')
  const query = await connectGlasses(t, server, glassesToken('bob@example.com'), 'query')
  t.equal((await query.next('connection_ack')).sessionId, 'bob@example.com')
})

t.test('the header wins over the query string', async t => {
  const server = await startServer(t)
  const { status } = await refusedUpgrade(server, bearer('garbage'), `?token=${glassesToken('c@example.com')}`)
  t.equal(status, 401)
})

t.test('REQUIRE_TOKEN_EXP rejects tokens without exp and accepts tokens with one', async t => {
  const server = await startServer(t, { requireTokenExp: true })
  const { status, body } = await refusedUpgrade(server, bearer(glassesToken('d@example.com')))
  t.equal(status, 401)
  t.equal(body.code, 'INVALID_TOKEN')
  const client = await connectGlasses(t, server, sign({ email: 'd@example.com', sub: 's' }, { expiresIn: 60_000 }))
  await client.next('connection_ack')
})

t.test('a token in the query string never appears in the logs', async t => {
  const server = await startServer(t, { logLevel: 'trace' })
  const token = glassesToken('e@example.com')
  const client = await connectGlasses(t, server, token, 'query')
  await client.next('connection_ack')
  await refusedUpgrade(server, {}, '?token=not.a.valid-token-value')
  const raw = server.rawLogs()
  t.ok(raw.includes('/glasses-ws?token=[redacted]'), 'the URL is logged, redacted')
  t.notOk(raw.includes(token), 'the good token is not logged')
  t.notOk(raw.includes('not.a.valid-token-value'), 'the bad token is not logged')
})

t.test('a plain GET without an upgrade gets no session', async t => {
  const server = await startServer(t)
  const res = await fetch(`${server.httpUrl}/glasses-ws`)
  t.equal(res.status, 404)
  t.equal(server.app.sessions.size, 0)
})

t.test('an upgrade on a route that is not a WebSocket route gets 404 and its token is not logged', async t => {
  const server = await startServer(t, { logLevel: 'trace' })
  for (const path of ['/health?token=secret-in-url-1', '/sessions?token=secret-in-url-1', '/nowhere?token=secret-in-url-1']) {
    const ws = new WebSocket(`${server.wsUrl}${path}`)
    const status = await new Promise<number>(resolve => {
      ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0))
      ws.on('open', () => { ws.terminate(); resolve(101) })
      ws.on('error', () => {})
    })
    t.equal(status, 404, path)
  }
  t.notOk(server.rawLogs().includes('secret-in-url-1'))
})
