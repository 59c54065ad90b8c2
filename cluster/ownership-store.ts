/**
 * Who owns each user, on Redis: the records, the index the admin list pages
 * through, and node liveness. Every multi-key step is a Lua script over the
 * keys of one user (or of the node list), so each is atomic and touches one slot
 * of a Redis Cluster.
 *
 * Nothing here is written while sessions sit idle. A record is written when its
 * user is claimed, taken over, changes state or apps, or is let go. Liveness is
 * per node: one key per node, renewed every third of LEASE_TTL_MS; a record is
 * as alive as its node's incarnation (a random id the node draws at start and
 * again whenever its liveness lapsed).
 *
 * Fencing is clock-independent: a record's token is `<counter>:<nonce>`, where
 * the counter is the user's fence (moved on by every claim) and the nonce is
 * drawn by the claiming node; owners compare tokens for equality, so no two
 * claims can share one. A fence that is missing (Redis lost its data, or a shard
 * failed over to a replica behind it) starts again from the claiming node's
 * clock in milliseconds rather than from 1, so in practice a token made after
 * the loss is also greater than every token made before it; correctness never
 * depends on that.
 */
import { randomBytes } from 'node:crypto'
import type { SessionSnapshot } from '../sessions/session-snapshot.js'
import type { Summary } from '../protocol/admin.js'
import { keys, type RedisClient } from './keys.js'

/** The next value of a user's fence, seeded from ARGV[seed] when Redis has none. */
const FENCE_NEXT = `
local function fence_next (key, seed)
  if redis.call('EXISTS', key) == 0 then
    redis.call('SET', key, seed)
    return seed
  end
  return tostring(redis.call('INCR', key))
end
`

/**
 * KEYS: owner, fence. ARGV: nodeId, incarnation, nonce, seed.
 * -> {1, token} when the user is now (or already was) ours | {0, nodeId, incarnation, token} of its owner.
 */
const CLAIM = `${FENCE_NEXT}
if redis.call('HGET', KEYS[1], 'revoked') == '1' then redis.call('DEL', KEYS[1]) end
local owner = redis.call('HMGET', KEYS[1], 'nodeId', 'inc', 'token')
if owner[1] then
  if owner[1] ~= ARGV[1] then return {0, owner[1], owner[2] or '', owner[3] or ''} end
  redis.call('HSET', KEYS[1], 'inc', ARGV[2])
  redis.call('PERSIST', KEYS[1])
  return {1, owner[3]}
end
local token = fence_next(KEYS[2], ARGV[4]) .. ':' .. ARGV[3]
redis.call('HSET', KEYS[1], 'nodeId', ARGV[1], 'inc', ARGV[2], 'token', token)
return {1, token}
`

/**
 * KEYS: owner, fence, state. ARGV: nodeId, incarnation, nonce, seed, expected token, expected incarnation.
 * Takes a user whose owner's incarnation is dead, if the record is still the one that was read. -> token | false
 */
const TAKEOVER = `${FENCE_NEXT}
local current = redis.call('HMGET', KEYS[1], 'token', 'inc')
if current[1] ~= ARGV[5] or current[2] ~= ARGV[6] then return false end
local token = fence_next(KEYS[2], ARGV[4]) .. ':' .. ARGV[3]
redis.call('HSET', KEYS[1], 'nodeId', ARGV[1], 'inc', ARGV[2], 'token', token)
redis.call('PERSIST', KEYS[1])
redis.call('PERSIST', KEYS[3])
return token
`

/**
 * KEYS: owner, state. ARGV: token, state, position, summary, snapshot.
 * -> {1, previous position, previous state} | {0} when the token is no longer the owner's.
 */
const WRITE = `
local current = redis.call('HMGET', KEYS[1], 'token', 'position', 'state')
if current[1] ~= ARGV[1] then return {0} end
redis.call('HSET', KEYS[1], 'state', ARGV[2], 'position', ARGV[3], 'summary', ARGV[4])
redis.call('HDEL', KEYS[1], 'expiresAt')
redis.call('SET', KEYS[2], ARGV[5])
return {1, current[2] or '', current[3] or ''}
`

/**
 * KEYS: owner, state. ARGV: token, keep state ('1' | '0'), state TTL.
 * -> {1, position, state} | {0} when not ours.
 */
const RELEASE = `
local current = redis.call('HMGET', KEYS[1], 'token', 'position', 'state')
if current[1] ~= ARGV[1] then return {0} end
redis.call('DEL', KEYS[1])
if ARGV[2] == '1' then redis.call('PEXPIRE', KEYS[2], ARGV[3]) else redis.call('DEL', KEYS[2]) end
return {1, current[2] or '', current[3] or ''}
`

/**
 * KEYS: owner, fence, state. ARGV: nodeId, incarnation, token, state, position, summary, snapshot.
 * After this node's liveness lapsed: keep a user under the new incarnation if nobody claimed it meanwhile.
 * -> 1 still ours | 2 re-created (Redis had lost it) | 0 no longer ours.
 */
const REASSERT = `
local token = redis.call('HGET', KEYS[1], 'token')
if token then
  if token ~= ARGV[3] then return 0 end
  redis.call('HSET', KEYS[1], 'inc', ARGV[2])
  return 1
end
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local counter = string.match(ARGV[3], '^(%d+):')
local fence = redis.call('GET', KEYS[2])
if not counter or (fence and fence ~= counter) then return 0 end
if not fence then redis.call('SET', KEYS[2], counter) end
redis.call('HSET', KEYS[1], 'nodeId', ARGV[1], 'inc', ARGV[2], 'token', ARGV[3], 'state', ARGV[4],
  'position', ARGV[5], 'summary', ARGV[6])
redis.call('SET', KEYS[3], ARGV[7])
return 2
`

/**
 * KEYS: owner, fence, state. ARGV: marker TTL, seed. Ends a user's session whose owner does not answer:
 * the fence moves on, and a `revoked` marker tells that owner, should it wake, that the end was on purpose.
 * -> {existed, nodeId, position, state}
 */
const REVOKE = `${FENCE_NEXT}
local current = redis.call('HMGET', KEYS[1], 'nodeId', 'position', 'state', 'token')
redis.call('DEL', KEYS[1], KEYS[3])
fence_next(KEYS[2], ARGV[2])
redis.call('HSET', KEYS[1], 'nodeId', '', 'revoked', '1')
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return {current[4] and 1 or 0, current[1] or '', current[2] or '', current[3] or ''}
`

/** KEYS: owner. ARGV: nodeId. Drops this node's record of a user it holds no session of. -> {1, position, state} | {0} */
const DROP_IDLE = `
local current = redis.call('HMGET', KEYS[1], 'nodeId', 'position', 'state')
if current[1] ~= ARGV[1] then return {0} end
redis.call('DEL', KEYS[1])
return {1, current[2] or '', current[3] or ''}
`

/**
 * KEYS: owner, state. ARGV: nodeId, keep ms, expires at, its live incarnation ('' when none). A user of a dead
 * incarnation of that node: its session is in grace from now on, kept for a reconnect elsewhere until then.
 * -> {1, position, previous state} | {0}
 */
const REAP = `
local current = redis.call('HMGET', KEYS[1], 'nodeId', 'position', 'state', 'inc')
if current[1] ~= ARGV[1] or current[4] == ARGV[4] then return {0} end
redis.call('HSET', KEYS[1], 'state', 'grace', 'expiresAt', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('PEXPIRE', KEYS[2], ARGV[2])
return {1, current[2] or '', current[3] or ''}
`

/**
 * KEYS: node, nodes. ARGV: nodeId, incarnation, next incarnation, info, ttl, now.
 * -> 0 renewed | 1 had lapsed (renewed under the next incarnation) | 2 held by another incarnation (overwritten).
 */
const RENEW = `
local current = redis.call('GET', KEYS[1])
local result = 0
local inc = ARGV[2]
if not current then
  result = 1
  inc = ARGV[3]
elseif string.sub(current, 1, #ARGV[2] + 1) ~= ARGV[2] .. '|' then
  result = 2
  inc = ARGV[3]
end
redis.call('SET', KEYS[1], inc .. '|' .. ARGV[4], 'PX', ARGV[5])
redis.call('ZADD', KEYS[2], ARGV[6], ARGV[1])
return result
`

type Reply = Array<string | number | null>

interface Scripts {
  tetherClaim: (owner: string, fence: string, nodeId: string, inc: string, nonce: string, seed: string) => Promise<Reply>
  tetherTakeover: (owner: string, fence: string, state: string, nodeId: string, inc: string, nonce: string, seed: string,
    token: string, expectedInc: string) => Promise<string | null>
  tetherWrite: (owner: string, state: string, token: string, sessionState: string, position: string, summary: string,
    snapshot: string) => Promise<Reply>
  tetherRelease: (owner: string, state: string, token: string, keep: string, ttl: number) => Promise<Reply>
  tetherReassert: (owner: string, fence: string, state: string, nodeId: string, inc: string, token: string,
    sessionState: string, position: string, summary: string, snapshot: string) => Promise<number>
  tetherRevoke: (owner: string, fence: string, state: string, ttl: number, seed: string) => Promise<Reply>
  tetherDropIdle: (owner: string, nodeId: string) => Promise<Reply>
  tetherReap: (owner: string, state: string, nodeId: string, keepMs: number, expiresAt: number, liveInc: string) => Promise<Reply>
  tetherRenew: (node: string, nodes: string, nodeId: string, inc: string, next: string, info: string, ttl: number, now: number) => Promise<number>
}

export type ClaimResult = { ok: true, token: string } | { ok: false, owner: OwnerRecord }

/** Who holds a user, as its record says. */
export interface OwnerRecord { nodeId: string, incarnation: string, token: string }

/** Where a session sat in the index, so the index can follow it. */
export interface Placement { position: string, state: string }

/** A record's stored view, for the admin list and a silent owner's detail. */
export interface StoredSession { nodeId: string, summary: Summary }

export interface SessionWrite {
  userId: string
  token: string
  state: 'active' | 'grace'
  position: string
  summary: Summary
  snapshot: SessionSnapshot
}

export const newIncarnation = (): string => randomBytes(6).toString('hex')
const nonce = (): string => randomBytes(6).toString('hex')
/** A fence seed: see the header comment. */
const seed = (): string => String(Date.now())

const placement = (reply: Reply, from: number): Placement | null =>
  reply[0] === 1 && reply[from] !== '' ? { position: String(reply[from]), state: String(reply[from + 1]) } : null

export class OwnershipStore {
  private readonly scripts: Scripts

  constructor (readonly redis: RedisClient, private readonly nodeId: string) {
    const define = (name: keyof Scripts, numberOfKeys: number, lua: string): void => { redis.defineCommand(name, { numberOfKeys, lua }) }
    define('tetherClaim', 2, CLAIM)
    define('tetherTakeover', 3, TAKEOVER)
    define('tetherWrite', 2, WRITE)
    define('tetherRelease', 2, RELEASE)
    define('tetherReassert', 3, REASSERT)
    define('tetherRevoke', 3, REVOKE)
    define('tetherDropIdle', 1, DROP_IDLE)
    define('tetherReap', 2, REAP)
    define('tetherRenew', 2, RENEW)
    // defineCommand adds the methods at run time; this view gives them types.
    this.scripts = redis as unknown as Scripts
  }

  async claim (userId: string, incarnation: string): Promise<ClaimResult> {
    const reply = await this.scripts.tetherClaim(keys.owner(userId), keys.fence(userId), this.nodeId, incarnation, nonce(), seed())
    if (reply[0] === 1) return { ok: true, token: String(reply[1]) }
    return { ok: false, owner: { nodeId: String(reply[1]), incarnation: String(reply[2]), token: String(reply[3]) } }
  }

  /** Take a user from a dead incarnation, if its record is still `expected`. Null when it changed meanwhile. */
  async takeover (userId: string, incarnation: string, expected: OwnerRecord): Promise<string | null> {
    const token = await this.scripts.tetherTakeover(keys.owner(userId), keys.fence(userId), keys.state(userId), this.nodeId,
      incarnation, nonce(), seed(), expected.token, expected.incarnation)
    return typeof token === 'string' ? token : null
  }

  /** Write a session's summary and snapshot; null when the token is no longer the owner's (fenced). */
  async write (update: SessionWrite): Promise<{ previous: Placement | null } | null> {
    const reply = await this.scripts.tetherWrite(keys.owner(update.userId), keys.state(update.userId), update.token, update.state,
      update.position, JSON.stringify(update.summary), JSON.stringify(update.snapshot))
    return reply[0] === 1 ? { previous: placement(reply, 1) } : null
  }

  /** Let a user go; `keepState` (for `stateTtlMs`) when the session moved rather than ended. */
  async release (userId: string, token: string, keepState: boolean, stateTtlMs: number): Promise<Placement | null> {
    return placement(await this.scripts.tetherRelease(keys.owner(userId), keys.state(userId), token, keepState ? '1' : '0', stateTtlMs), 1)
  }

  async reassert (update: SessionWrite, incarnation: string): Promise<'kept' | 'recreated' | 'lost'> {
    const result = await this.scripts.tetherReassert(keys.owner(update.userId), keys.fence(update.userId), keys.state(update.userId),
      this.nodeId, incarnation, update.token, update.state, update.position, JSON.stringify(update.summary), JSON.stringify(update.snapshot))
    return result === 1 ? 'kept' : result === 2 ? 'recreated' : 'lost'
  }

  async revoke (userId: string, markerTtlMs: number): Promise<{ existed: boolean, nodeId: string, placement: Placement | null }> {
    const reply = await this.scripts.tetherRevoke(keys.owner(userId), keys.fence(userId), keys.state(userId), markerTtlMs, seed())
    return { existed: reply[0] === 1, nodeId: String(reply[1]), placement: placement(reply, 2) }
  }

  async dropIdle (userId: string): Promise<Placement | null> {
    return placement(await this.scripts.tetherDropIdle(keys.owner(userId), this.nodeId), 1)
  }

  /** Turn a user of a dead incarnation of `nodeId` to grace for `keepMs`; `liveIncarnation` ('' for none) is spared. */
  async reap (userId: string, nodeId: string, liveIncarnation: string, keepMs: number): Promise<Placement | null> {
    return placement(await this.scripts.tetherReap(keys.owner(userId), keys.state(userId), nodeId, keepMs, Date.now() + keepMs, liveIncarnation), 1)
  }

  /** The user's owner as its record says; nodeId '' for a revoked session; null for none. */
  async owner (userId: string): Promise<OwnerRecord | null> {
    const [nodeId = null, incarnation, token] = await this.redis.hmget(keys.owner(userId), 'nodeId', 'inc', 'token')
    return nodeId === null ? null : { nodeId, incarnation: incarnation ?? '', token: token ?? '' }
  }

  async lastState (userId: string): Promise<SessionSnapshot | null> {
    const text = await this.redis.get(keys.state(userId))
    return text === null ? null : JSON.parse(text) as SessionSnapshot
  }

  /** A session as last written, its state as the record says now (a dead node's sessions turn to grace). */
  async stored (userId: string): Promise<StoredSession | null> {
    const [nodeId = null, state, text = null, expiresAt = null] = await this.redis.hmget(keys.owner(userId), 'nodeId', 'state', 'summary', 'expiresAt')
    if (nodeId === null || nodeId === '' || text === null) return null
    const summary = JSON.parse(text) as Summary
    if (state === 'grace' || state === 'active') summary.state = state
    if (expiresAt !== null) summary.graceExpiresAt = new Date(Number(expiresAt)).toISOString()
    return { nodeId, summary }
  }

  // ---- the index ----

  /** Move a session's entry to where it now belongs (`previous`: where the record said it was). */
  async place (position: string, state: 'active' | 'grace', previous: Placement | null): Promise<void> {
    const work: Array<Promise<unknown>> = []
    if (previous !== null && previous.position !== position) {
      work.push(this.redis.zrem(keys.index('active'), previous.position), this.redis.zrem(keys.index('grace'), previous.position))
    } else if (previous === null || previous.state !== state) {
      work.push(this.redis.zrem(keys.index(state === 'active' ? 'grace' : 'active'), position))
    }
    work.push(this.redis.zadd(keys.index(state), 0, position))
    await Promise.all(work)
  }

  async unplace (placement: Placement): Promise<void> {
    await Promise.all([this.redis.zrem(keys.index('active'), placement.position), this.redis.zrem(keys.index('grace'), placement.position)])
  }

  /** Up to `limit` positions after `after` in one state's index. */
  async positions (state: 'active' | 'grace', after: string | null, limit: number): Promise<string[]> {
    return await this.redis.zrangebylex(keys.index(state), after === null ? '-' : `(${after}`, '+', 'LIMIT', 0, limit)
  }

  async counts (): Promise<{ active: number, grace: number }> {
    const [active, grace] = await Promise.all([this.redis.zcard(keys.index('active')), this.redis.zcard(keys.index('grace'))])
    return { active, grace }
  }

  async expire (position: string, at: number): Promise<void> { await this.redis.zadd(keys.expiring, at, position) }

  /** Positions of dead nodes' sessions whose kept state has run out. */
  async expired (limit: number): Promise<string[]> {
    return await this.redis.zrangebyscore(keys.expiring, '-inf', Date.now(), 'LIMIT', 0, limit)
  }

  async forgetExpired (position: string): Promise<void> { await this.redis.zrem(keys.expiring, position) }

  async positionOf (userId: string): Promise<string | null> { return await this.redis.hget(keys.owner(userId), 'position') }

  // ---- nodes ----

  async holdUser (userId: string): Promise<void> { await this.redis.sadd(keys.nodeUsers(this.nodeId), userId) }

  async dropUser (nodeId: string, userId: string): Promise<void> { await this.redis.srem(keys.nodeUsers(nodeId), userId) }

  /** One batch of a node's users, SSCAN style: [next cursor, users]. */
  async usersOf (nodeId: string, cursor: string): Promise<[string, string[]]> {
    return await this.redis.sscan(keys.nodeUsers(nodeId), cursor, 'COUNT', 500)
  }

  async renew (incarnation: string, next: string, info: string, ttlMs: number): Promise<0 | 1 | 2> {
    return await this.scripts.tetherRenew(keys.node(this.nodeId), keys.nodes, this.nodeId, incarnation, next, info, ttlMs, Date.now()) as 0 | 1 | 2
  }

  /**
   * Which server processes hold the data: the run ids of every master. It changes when a Redis restarts
   * (maybe empty) or a shard fails over to a replica (maybe behind): then what was written may be gone.
   */
  async fingerprint (): Promise<string> {
    const servers = 'nodes' in this.redis ? this.redis.nodes('master') : [this.redis]
    const ids = await Promise.all(servers.map(async server => /run_id:(\w+)/.exec(await server.info('server'))?.[1] ?? ''))
    return ids.sort().join(',')
  }

  async retire (): Promise<void> {
    await Promise.all([this.redis.zrem(keys.nodes, this.nodeId), this.redis.del(keys.node(this.nodeId))])
  }

  /** The live incarnation of a node, or null when its liveness lapsed. */
  async incarnation (nodeId: string): Promise<string | null> {
    const text = await this.redis.get(keys.node(nodeId))
    return text === null ? null : text.slice(0, text.indexOf('|'))
  }

  /** Every node listed, with its liveness text (null once lapsed). */
  async listedNodes (): Promise<Array<{ nodeId: string, text: string | null }>> {
    const ids = await this.redis.zrange(keys.nodes, 0, -1)
    if (ids.length === 0) return []
    // One command whatever the number of nodes: their keys share the `{nodes}` slot.
    const texts = await this.redis.mget(ids.map(keys.node))
    return ids.map((nodeId, i) => ({ nodeId, text: texts[i] ?? null }))
  }

  /** Only one node settles a dead node's users: true for the one that gets to. */
  async lockReaper (deadNodeId: string, ttlMs: number): Promise<boolean> {
    return await this.redis.set(keys.reaper(deadNodeId), this.nodeId, 'PX', ttlMs, 'NX') === 'OK'
  }

  async forgetNode (nodeId: string): Promise<void> {
    await Promise.all([this.redis.zrem(keys.nodes, nodeId), this.redis.del(keys.nodeUsers(nodeId))])
  }
}
