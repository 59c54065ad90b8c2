/**
 * The cluster's session directory on Redis (ioredis). Each user's session is a
 * lease `{nodeId, sessionInstanceId, token, state, updatedAt, summary}` that its
 * node refreshes; a dead node's leases expire after LEASE_TTL_MS. Claim,
 * refresh, release and revoke are Lua scripts, so each is atomic.
 *
 * Fencing is clock-independent: every claim of a user increments that user's
 * fence counter, and the lease's token is that value joined with a nonce the
 * claiming node drew (`<counter>:<nonce>`). A node that slept past its lease and
 * wakes up refreshes with its old token and is refused, even if the lease key
 * has expired meanwhile, because the counter has moved on. The nonce keeps the
 * tokens of two claims apart when the counter could not tell them: after Redis
 * lost its data the counter starts again, and a claim made then may draw the
 * very number an old owner, still away, holds.
 */
import { randomBytes } from 'node:crypto'
import type { Redis } from 'ioredis'
import type { Summary } from '../protocol/admin.js'
import { MAX_FAILED_STARTS, type AudioFormat, type SessionDirectory, type UserSettings } from './session-directory.js'
import type { SessionSnapshot } from './session-snapshot.js'

const PREFIX = 'tether:'
const leaseKey = (userId: string): string => `${PREFIX}lease:${userId}`
const fenceKey = (userId: string): string => `${PREFIX}fence:${userId}`
const stateKey = (userId: string): string => `${PREFIX}state:${userId}`
const appsKey = (userId: string): string => `${PREFIX}apps:${userId}`
const userKey = (userId: string): string => `${PREFIX}user:${userId}`
const blockKey = (userId: string): string => `${PREFIX}block:${userId}`
const NODES = `${PREFIX}nodes`
const nodeKey = (nodeId: string): string => `${PREFIX}node:${nodeId}`

/** KEYS: lease, fence. ARGV: nodeId, instanceId, now, ttl, summary, nonce. -> {1, token} | {0, ownerNodeId} */
const CLAIM = `
if redis.call('HGET', KEYS[1], 'revoked') == '1' then redis.call('DEL', KEYS[1]) end
local owner = redis.call('HGET', KEYS[1], 'nodeId')
if owner and owner ~= ARGV[1] then return {0, owner} end
if owner == ARGV[1] then
  redis.call('HSET', KEYS[1], 'instanceId', ARGV[2], 'updatedAt', ARGV[3], 'summary', ARGV[5])
  redis.call('PEXPIRE', KEYS[1], ARGV[4])
  return {1, redis.call('HGET', KEYS[1], 'token')}
end
local token = redis.call('INCR', KEYS[2]) .. ':' .. ARGV[6]
redis.call('HSET', KEYS[1], 'nodeId', ARGV[1], 'instanceId', ARGV[2], 'token', token, 'state', 'active',
  'updatedAt', ARGV[3], 'summary', ARGV[5])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return {1, token}
`

/**
 * KEYS: lease, fence, state. ARGV: nodeId, token, now, ttl, summary, snapshot, stateTtl, state, instanceId.
 * -> 1 refreshed | 0 fenced. A lease that expired with nobody claiming since (fence unchanged, or gone with
 * the rest of Redis's data) is re-created.
 */
const REFRESH = `
local token = redis.call('HGET', KEYS[1], 'token')
if token then
  if token ~= ARGV[2] then return 0 end
else
  local counter = string.match(ARGV[2], '^(%d+):')
  local fence = redis.call('GET', KEYS[2])
  if not counter or (fence and fence ~= counter) then return 0 end
  -- No fence at all: Redis lost its data (a restart without persistence) and nobody claimed the user
  -- since (a claim would have made both keys): the lease is ours again, its counter where ours was.
  if not fence then redis.call('SET', KEYS[2], counter) end
  redis.call('HSET', KEYS[1], 'nodeId', ARGV[1], 'token', ARGV[2])
end
redis.call('HSET', KEYS[1], 'state', ARGV[8], 'updatedAt', ARGV[3], 'summary', ARGV[5], 'instanceId', ARGV[9])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
redis.call('SET', KEYS[3], ARGV[6], 'PX', ARGV[7])
return 1
`

/** KEYS: lease, state. ARGV: token, dropState ('1' | '0'). -> 1 released | 0 not ours. */
const RELEASE = `
if redis.call('HGET', KEYS[1], 'token') ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
if ARGV[2] == '1' then redis.call('DEL', KEYS[2]) end
return 1
`

/** KEYS: lease. ARGV: nodeId. Drops this node's lease only if it is a bare claim (no session was ever written). */
const REVOKE_OWN_IDLE = `
if redis.call('HGET', KEYS[1], 'nodeId') ~= ARGV[1] then return 0 end
if redis.call('HGET', KEYS[1], 'instanceId') ~= '' then return 0 end
redis.call('DEL', KEYS[1])
return 1
`

/**
 * KEYS: lease, fence, state. ARGV: ttl. Ends a lease whose owner does not answer: the fence moves, and a
 * `revoked` marker (any claim replaces it) tells that owner, should it wake, that the end was on purpose.
 */
const REVOKE = `
local existed = redis.call('EXISTS', KEYS[1])
redis.call('DEL', KEYS[1], KEYS[3])
redis.call('INCR', KEYS[2])
redis.call('HSET', KEYS[1], 'nodeId', '', 'revoked', '1')
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return existed
`

export type ClaimResult = { ok: true, token: string } | { ok: false, owner: string }

export interface LeaseUpdate {
  userId: string
  token: string
  summary: Summary
  snapshot: SessionSnapshot
}

export interface NodeInfo { nodeId: string, publicUrl: string, active: number, grace: number, at: string }

interface Scripts {
  tetherClaim: (lease: string, fence: string, nodeId: string, instanceId: string, now: number, ttl: number, summary: string, nonce: string) => Promise<[number, string]>
  tetherRefresh: (lease: string, fence: string, state: string, nodeId: string, token: string, now: number, ttl: number,
    summary: string, snapshot: string, stateTtl: number, sessionState: string, instanceId: string) => Promise<number>
  tetherRelease: (lease: string, state: string, token: string, dropState: string) => Promise<number>
  tetherRevoke: (lease: string, fence: string, state: string, ttl: number) => Promise<number>
  tetherRevokeOwnIdle: (lease: string, nodeId: string) => Promise<number>
}

export interface RedisDirectoryOptions {
  nodeId: string
  leaseTtlMs: number
  /** How long a session's last state is kept for a node that takes it over: grace period plus lease TTL. */
  stateTtlMs: number
}

export class RedisDirectory implements SessionDirectory {
  private readonly scripts: Scripts

  constructor (private readonly redis: Redis, private readonly options: RedisDirectoryOptions) {
    redis.defineCommand('tetherClaim', { numberOfKeys: 2, lua: CLAIM })
    redis.defineCommand('tetherRefresh', { numberOfKeys: 3, lua: REFRESH })
    redis.defineCommand('tetherRelease', { numberOfKeys: 2, lua: RELEASE })
    redis.defineCommand('tetherRevoke', { numberOfKeys: 3, lua: REVOKE })
    redis.defineCommand('tetherRevokeOwnIdle', { numberOfKeys: 1, lua: REVOKE_OWN_IDLE })
    // defineCommand adds the methods at run time; this view gives them types.
    this.scripts = redis as unknown as Scripts
  }

  get nodeId (): string { return this.options.nodeId }

  /** Take a user for this node, unless another node holds the lease. */
  async claim (userId: string, instanceId: string, summary: Summary): Promise<ClaimResult> {
    const [ok, value] = await this.scripts.tetherClaim(leaseKey(userId), fenceKey(userId), this.options.nodeId, instanceId,
      Date.now(), this.options.leaseTtlMs, JSON.stringify(summary), randomBytes(8).toString('hex'))
    return ok === 1 ? { ok: true, token: String(value) } : { ok: false, owner: String(value) }
  }

  /** Refresh many leases in one round trip; returns the users whose lease is no longer ours (fenced). */
  async refresh (updates: readonly LeaseUpdate[]): Promise<string[]> {
    if (updates.length === 0) return []
    const now = Date.now()
    const results = await Promise.all(updates.map(async u => await this.scripts.tetherRefresh(
      leaseKey(u.userId), fenceKey(u.userId), stateKey(u.userId), this.options.nodeId, u.token, now,
      this.options.leaseTtlMs, JSON.stringify(u.summary), JSON.stringify(u.snapshot), this.options.stateTtlMs, u.summary.state,
      u.summary.sessionInstanceId)))
    return updates.filter((_, i) => results[i] !== 1).map(u => u.userId)
  }

  /** Give a lease up; `dropState` when the session ended (nothing to resume), not when it moved. */
  async release (userId: string, token: string, dropState: boolean): Promise<boolean> {
    return await this.scripts.tetherRelease(leaseKey(userId), stateKey(userId), token, dropState ? '1' : '0') === 1
  }

  /** End a lease whose owner does not answer. True when there was one. */
  async revoke (userId: string): Promise<boolean> {
    return await this.scripts.tetherRevoke(leaseKey(userId), fenceKey(userId), stateKey(userId), 3 * this.options.leaseTtlMs) === 1
  }

  /** Give back a claim of this node that never got a session (its claim command timed out, then ran). */
  async revokeOwnIdle (userId: string, nodeId: string): Promise<boolean> {
    return await this.scripts.tetherRevokeOwnIdle(leaseKey(userId), nodeId) === 1
  }

  /** The node holding the user's lease; '' for a revoked lease; null for none. */
  async owner (userId: string): Promise<string | null> {
    return await this.redis.hget(leaseKey(userId), 'nodeId')
  }

  /** The last state a session's owner wrote, for a node that takes it over after that owner died. */
  async lastState (userId: string): Promise<SessionSnapshot | null> {
    const text = await this.redis.get(stateKey(userId))
    return text === null ? null : JSON.parse(text) as SessionSnapshot
  }

  /** Every lease's summary, cluster-wide (at most one refresh old). */
  async summaries (): Promise<Summary[]> {
    const keys: string[] = []
    let cursor = '0'
    do {
      const [next, batch] = await this.redis.scan(cursor, 'MATCH', `${PREFIX}lease:*`, 'COUNT', 1000)
      cursor = next
      keys.push(...batch)
    } while (cursor !== '0')
    if (keys.length === 0) return []
    const pipeline = this.redis.pipeline()
    for (const key of keys) pipeline.hget(key, 'summary')
    const replies = await pipeline.exec() ?? []
    return replies.flatMap(([error, text]) => typeof text === 'string' && error === null ? [JSON.parse(text) as Summary] : [])
  }

  async lastSummary (userId: string): Promise<Summary | null> {
    const text = await this.redis.hget(leaseKey(userId), 'summary')
    return text === null ? null : JSON.parse(text) as Summary
  }

  // ---- nodes ----

  async announce (info: NodeInfo): Promise<void> {
    await this.redis.multi()
      .zadd(NODES, Date.now(), info.nodeId)
      .set(nodeKey(info.nodeId), JSON.stringify(info), 'PX', 3 * this.options.leaseTtlMs)
      .exec()
  }

  async retire (): Promise<void> {
    await this.redis.multi().zrem(NODES, this.options.nodeId).del(nodeKey(this.options.nodeId)).exec()
  }

  /** Nodes seen within three lease TTLs. */
  async nodes (): Promise<NodeInfo[]> {
    const ids = await this.redis.zrangebyscore(NODES, Date.now() - 3 * this.options.leaseTtlMs, '+inf')
    if (ids.length === 0) return []
    const infos = await this.redis.mget(ids.map(nodeKey))
    return infos.flatMap(text => text === null ? [] : [JSON.parse(text) as NodeInfo])
  }

  // ---- running apps per user (SessionDirectory) ----

  async runningApps (userId: string): Promise<string[]> {
    const text = await this.redis.hget(appsKey(userId), 'apps')
    return text === null ? [] : JSON.parse(text) as string[]
  }

  async appStarted (userId: string, packageName: string): Promise<void> {
    const apps = await this.runningApps(userId)
    if (!apps.includes(packageName)) apps.push(packageName)
    await this.redis.multi().hset(appsKey(userId), 'apps', JSON.stringify(apps)).hdel(appsKey(userId), `failures:${packageName}`).exec()
  }

  async appStopped (userId: string, packageName: string): Promise<void> {
    const apps = (await this.runningApps(userId)).filter(p => p !== packageName)
    await this.redis.multi().hset(appsKey(userId), 'apps', JSON.stringify(apps)).hdel(appsKey(userId), `failures:${packageName}`).exec()
  }

  async appStartFailed (userId: string, packageName: string): Promise<number> {
    const failures = await this.redis.hincrby(appsKey(userId), `failures:${packageName}`, 1)
    if (failures >= MAX_FAILED_STARTS) await this.appStopped(userId, packageName)
    return failures
  }

  // ---- the phone's settings and audio format, and blocks ----

  async audioFormat (userId: string): Promise<AudioFormat | null> {
    const text = await this.redis.hget(userKey(userId), 'audioFormat')
    return text === null ? null : JSON.parse(text) as AudioFormat
  }

  async setAudioFormat (userId: string, format: AudioFormat): Promise<void> {
    await this.redis.hset(userKey(userId), 'audioFormat', JSON.stringify(format))
  }

  async userSettings (userId: string): Promise<UserSettings> {
    const text = await this.redis.hget(userKey(userId), 'settings')
    return text === null ? {} : JSON.parse(text) as UserSettings
  }

  async mergeUserSettings (userId: string, settings: UserSettings): Promise<UserSettings> {
    // One phone writes its own settings a few times a session: a read-merge-write is enough.
    const merged = { ...await this.userSettings(userId), ...settings }
    await this.redis.hset(userKey(userId), 'settings', JSON.stringify(merged))
    return merged
  }

  async block (userId: string, until: number): Promise<void> {
    await this.redis.set(blockKey(userId), String(until), 'PXAT', until)
  }

  async blockedUntil (userId: string): Promise<number | null> {
    const text = await this.redis.get(blockKey(userId))
    const until = text === null ? NaN : Number(text)
    return Number.isFinite(until) && until > Date.now() ? until : null
  }
}
