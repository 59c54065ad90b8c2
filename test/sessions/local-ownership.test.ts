/**
 * Ownership on one node alone: claims are granted synchronously (the connect path
 * never waits on it), nothing is forwarded, and the admin views are this node's.
 */
import t from 'tap'
import { LocalOwnership } from '../../sessions/local-ownership.js'
import type { SessionPage } from '../../sessions/ownership.js'
import { sessionPosition } from '../../sessions/session-position.js'
import type { UserSession } from '../../sessions/user-session.js'
import { connectAcked, startServer } from '../helper.js'

t.test('a claim is granted at once, with nothing to resume', async t => {
  const ownership = new LocalOwnership('solo')
  const claim = ownership.claim()
  t.notOk(claim instanceof Promise, 'not a promise: the connect path never awaits it')
  t.equal(claim, null)
  t.equal(await ownership.forward(), null, 'no other node to forward to')
  t.ok(ownership.healthy)
})

t.test('the views are the node\'s own sessions, paged by start order with one cursor format', async t => {
  const server = await startServer(t)
  for (const user of ['c@example.com', 'a@example.com', 'b@example.com']) await connectAcked(t, server, user)
  const ownership = server.app.ownership
  const first = await ownership.page({ after: null, limit: 2 })
  t.same(first.sessions.map(s => s.userId), ['c@example.com', 'a@example.com'], 'in the order they started')
  t.same(first.counts, { active: 3, grace: 0, total: 3 })
  t.type(first.next, 'string')
  const rest = await ownership.page({ after: first.next, limit: 2 })
  t.same(rest.sessions.map(s => s.userId), ['b@example.com'])
  t.equal(rest.next, null)
  t.same((await ownership.nodes()).map(n => [n.nodeId, n.active]), [[server.config.nodeId, 3]])
  t.equal((await ownership.detail('a@example.com'))?.userId, 'a@example.com')
  t.equal(await ownership.detail('nobody@example.com'), null)
})

t.test('every session change reaches the change listeners (the admin feed) until they unsubscribe', async t => {
  const server = await startServer(t)
  let changes = 0
  const stop = server.app.ownership.onChange(() => { changes += 1 })
  const { client } = await connectAcked(t, server, 'watched@example.com')
  t.ok(changes >= 1, `a new session is a change (${changes})`)
  const seen = changes
  client.terminate()
  await client.closed
  await new Promise(resolve => setTimeout(resolve, 50))
  t.ok(changes > seen, 'a drop to grace is one too')
  stop()
  const after = changes
  await connectAcked(t, server, 'unwatched@example.com')
  t.equal(changes, after, 'none after unsubscribing')
})

/** A session as the admin views read it: enough of UserSession for `page` and `summarize`. */
function fakeSession (userId: string, startedAt: number, state: 'active' | 'grace'): UserSession {
  return {
    userId,
    sessionInstanceId: `i-${userId}`,
    startedAt,
    state,
    isLive: true,
    nodeId: 'solo',
    reconnections: 0,
    times: { startedAt, connectedAt: startedAt, disconnectedAt: null, graceExpiresAt: null },
    stats: { connectedMs: () => 0, counts: () => ({}) },
    view: () => ({ activeAppSessions: [] })
  } as unknown as UserSession
}

t.test('pages walk every session once in position order, however the node holds them', async t => {
  // Start times out of order and shared (handovers restore old ones; one millisecond starts many).
  // Users numbered in a scrambled order, so equal start times are met in no particular position order.
  const sessions = Array.from({ length: 300 }, (_, i) =>
    fakeSession(`u${String((i * 37) % 300).padStart(3, '0')}@x.io`, 1_700_000_000_000 + ((i * 7919) % 97), i % 5 === 0 ? 'grace' : 'active'))
  const ownership = new LocalOwnership('solo')
  await ownership.start({ local: () => undefined, all: () => sessions, locked: async (_u, task) => await task(), end: async () => false })
  const order = (list: UserSession[]): string[] => list
    .map(s => sessionPosition(s.startedAt, s.sessionInstanceId, s.userId)).sort().map(p => p.slice(p.lastIndexOf('|') + 1))
  for (const [limit, state] of [[1, undefined], [7, undefined], [50, 'grace'], [299, undefined], [300, 'active'], [1000, undefined]] as const) {
    const seen: string[] = []
    let after: string | null = null
    let pages = 0
    do {
      const page: SessionPage = await ownership.page({ after, limit, state })
      t.ok(page.sessions.length <= limit)
      seen.push(...page.sessions.map(s => s.userId))
      after = page.next
      pages += 1
    } while (after !== null && pages < 400)
    const expected = order(sessions.filter(s => state === undefined || s.state === state))
    t.same(seen, expected, `limit ${limit}, state ${state ?? 'any'}: every session once, in order`)
  }
})
