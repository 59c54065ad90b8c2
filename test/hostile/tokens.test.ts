/** Hostile tokens (issue 5): each refused with the documented answer, the bystander unaffected. */
import { createHmac } from 'node:crypto'
import t from 'tap'
import { SECRET, connectGlasses, glassesToken, refusedUpgrade, sign } from '../helper.js'
import { hostileWorld } from './harness.js'

const b64 = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url')

/** A token with any header, signed HMAC-SHA256 with the right secret. */
function forged (header: Record<string, unknown>, payload: Record<string, unknown>): string {
  const body = `${b64(header)}.${b64(payload)}`
  return `${body}.${createHmac('sha256', SECRET).update(body).digest('base64url')}`
}

t.test('hostile tokens', async t => {
  const w = await hostileWorld(t)
  const now = Math.floor(Date.now() / 1000)
  const claims = { email: 'attacker@example.com', sub: 'x' }
  const cases: Array<[string, Record<string, string>, string, number, string]> = [
    ['no token', {}, '', 401, 'NO_TOKEN'],
    ['alg none', { authorization: `Bearer ${b64({ alg: 'none', typ: 'JWT' })}.${b64(claims)}.` }, '', 401, 'INVALID_TOKEN'],
    ['HS384 with the right secret', { authorization: `Bearer ${sign(claims, { algorithm: 'HS384' })}` }, '', 401, 'INVALID_TOKEN'],
    ['HS512 with the right secret', { authorization: `Bearer ${sign(claims, { algorithm: 'HS512' })}` }, '', 401, 'INVALID_TOKEN'],
    ['RS256 header over an HMAC signature', { authorization: `Bearer ${forged({ alg: 'RS256', typ: 'JWT' }, claims)}` }, '', 401, 'INVALID_TOKEN'],
    ['wrong secret', { authorization: `Bearer ${sign(claims, { key: 'not-the-secret-not-the-secret-xx' })}` }, '', 401, 'INVALID_TOKEN'],
    ['expired', { authorization: `Bearer ${sign({ ...claims, exp: now - 600 })}` }, '', 401, 'INVALID_TOKEN'],
    ['not yet valid', { authorization: `Bearer ${sign({ ...claims, nbf: now + 600 })}` }, '', 401, 'INVALID_TOKEN'],
    ['far-future iat', { authorization: `Bearer ${sign({ ...claims, iat: now + 10 * 365 * 86400 })}` }, '', 401, 'INVALID_TOKEN'],
    ['missing email', { authorization: `Bearer ${sign({ sub: 'x' })}` }, '', 401, 'INVALID_TOKEN'],
    ['empty email', { authorization: `Bearer ${sign({ email: '', sub: 'x' })}` }, '', 401, 'INVALID_TOKEN'],
    ['array email', { authorization: `Bearer ${sign({ email: ['a@example.com'], sub: 'x' })}` }, '', 401, 'INVALID_TOKEN'],
    ['numeric email', { authorization: `Bearer ${sign({ email: 42, sub: 'x' })}` }, '', 401, 'INVALID_TOKEN'],
    ['non-string sub', { authorization: `Bearer ${sign({ email: 'a@example.com', sub: 7 })}` }, '', 401, 'INVALID_TOKEN'],
    ['10 KB token', { authorization: `Bearer ${sign({ ...claims, pad: 'x'.repeat(10_000) })}` }, '', 401, 'INVALID_TOKEN'],
    ['bad header, good query: the header decides', { authorization: 'Bearer garbage' }, `?token=${glassesToken('q@example.com')}`, 401, 'INVALID_TOKEN']
  ]
  for (const [name, headers, query, status, code] of cases) {
    const answer = await refusedUpgrade(w.server, headers, query)
    t.equal(answer.status, status, `${name}: status`)
    t.equal(answer.body.code, code, `${name}: code`)
    await w.checkBystander(t, name)
  }
  t.equal(w.server.app.sessions.size, 1, 'no attacker got a session')

  // Header and query that disagree, both valid: the header's user gets the session.
  const both = await connectGlasses(t, w.server, glassesToken('header@example.com'), 'header')
  both.ws.close()
  const mixed = await refusedUpgrade(w.server, { authorization: 'Bearer x' }, `?token=${glassesToken('query@example.com')}`)
  t.equal(mixed.status, 401)
  await w.checkBystander(t, 'disagreeing header and query')
})
