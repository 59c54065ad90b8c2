/**
 * THE REPLACED DESIGN, kept only to measure against: per-session leases, as in
 * `git show 266020a:sessions/redis-directory.ts` and `266020a:sessions/cluster.ts`.
 * Every live session's lease was refreshed by a Lua script (the lease hash with
 * the whole summary, its PEXPIRE, and a SET of the whole snapshot) every third of
 * the lease TTL, idle or not; a claim was a script, a release another; a
 * lifecycle event refreshed its session at once; a handover waited for the
 * refreshes in flight; a dead node's users were free once their leases lapsed.
 * Reproduced here for its Redis traffic (the same scripts, keys and payloads:
 * `summarize()` and `snapshot()` of the same sessions), with three differences:
 *
 * - a user's keys share a hash tag (`{u:<id>}`) and the node keys `{nodes}`: the
 *   old names put a script's keys in different slots, which a Redis Cluster
 *   refuses (CROSSSLOT), so the old design could not run there at all;
 * - a refresh round keeps at most REFRESH_IN_FLIGHT scripts in flight per node,
 *   and a tick that finds its node's last round still running starts none (an
 *   "overrun"). The old code queued a whole round at every tick, overlapping
 *   without bound once Redis fell behind: this is kinder to it;
 * - it uses the new design's clients (cluster/redis-client.ts), so that only the
 *   traffic differs between the two.
 */
import { randomBytes, randomUUID } from 'node:crypto'
import { performance } from 'node:perf_hooks'
import { Redis } from 'ioredis'
import { ClusterRpc, NO_ANSWER, RemoteRequestError } from '../../cluster/cluster-rpc.js'
import type { RedisClient } from '../../cluster/keys.js'
import { commandClient, subscriberClient } from '../../cluster/redis-client.js'
import type { DisposeReason } from '../../sessions/lifecycle.js'
import { silentLog } from '../../sessions/log.js'
import { SessionMovingError } from '../../sessions/ownership.js'
import type { SessionSnapshot } from '../../sessions/session-snapshot.js'
import { summarize } from '../../sessions/summary.js'
import type { AdminListFigure, DesignRun, NodeSettings, SettledFigure, SimNode } from './design.js'
import { FakeHost, type FakeSession } from './fake-sessions.js'

/** Scripts in flight per node during a refresh round: enough to keep Redis busy, few enough to let claims through. */
const REFRESH_IN_FLIGHT = 64
const READY_WAIT_MS = 10_000
const SCAN_COUNT = 1000

const key = {
  lease: (userId: string) => `tether:{u:${userId}}:lease`,
  fence: (userId: string) => `tether:{u:${userId}}:fence`,
  state: (userId: string) => `tether:{u:${userId}}:state`,
  nodes: 'tether:{nodes}:all',
  node: (nodeId: string) => `tether:{nodes}:node:${nodeId}`
}
const LEASE_PATTERN = 'tether:{u:*}:lease'

/** KEYS lease, fence. ARGV nodeId, instanceId, now, ttl, summary, nonce. -> {1, token} | {0, owner} */
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
redis.call('HSET', KEYS[1], 'nodeId', ARGV[1], 'instanceId', ARGV[2], 'token', token, 'state', 'active', 'updatedAt', ARGV[3], 'summary', ARGV[5])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return {1, token}
`

/** KEYS lease, fence, state. ARGV nodeId, token, now, ttl, summary, snapshot, stateTtl, state, instanceId. -> 1 | 0 fenced */
const REFRESH = `
local token = redis.call('HGET', KEYS[1], 'token')
if token then
  if token ~= ARGV[2] then return 0 end
else
  local counter = string.match(ARGV[2], '^(%d+):')
  local fence = redis.call('GET', KEYS[2])
  if not counter or (fence and fence ~= counter) then return 0 end
  if not fence then redis.call('SET', KEYS[2], counter) end
  redis.call('HSET', KEYS[1], 'nodeId', ARGV[1], 'token', ARGV[2])
end
redis.call('HSET', KEYS[1], 'state', ARGV[8], 'updatedAt', ARGV[3], 'summary', ARGV[5], 'instanceId', ARGV[9])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
redis.call('SET', KEYS[3], ARGV[6], 'PX', ARGV[7])
return 1
`

/** KEYS lease, state. ARGV token, dropState. -> 1 | 0 */
const RELEASE = `
if redis.call('HGET', KEYS[1], 'token') ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
if ARGV[2] == '1' then redis.call('DEL', KEYS[2]) end
return 1
`

interface Scripts {
  legacyClaim: (lease: string, fence: string, nodeId: string, instanceId: string, now: number, ttl: number, summary: string, nonce: string) => Promise<[number, string]>
  legacyRefresh: (lease: string, fence: string, state: string, nodeId: string, token: string, now: number, ttl: number,
    summary: string, snapshot: string, stateTtl: number, sessionState: string, instanceId: string) => Promise<number>
  legacyRelease: (lease: string, state: string, token: string, dropState: string) => Promise<number>
}

/** A lease this node holds, and when it was last written (its expiry is that plus the TTL). */
interface Lease { token: string, refreshedAt: number, lapsedInWindow: boolean }

/**
 * How far the refreshes kept up over the measured window: every stretch in which a lease had
 * expired (last write + TTL passed) before its next write, summed.
 */
class LapseTracker {
  private windowStart: number | null = null
  refreshes = 0
  fenced = 0
  errors = 0
  absentMs = 0
  lapsedLeases = 0
  maxGapMs = 0
  roundsStarted = 0
  overruns = 0
  roundMs: number[] = []
  /** Leases held at the start of the window or claimed during it. */
  leasesSeen = 0

  constructor (private readonly ttlMs: number) {}

  start (leases: Iterable<Lease>): void {
    this.windowStart = Date.now()
    this.refreshes = this.fenced = this.errors = this.absentMs = this.lapsedLeases = this.maxGapMs = this.roundsStarted = this.overruns = 0
    this.roundMs = []
    this.leasesSeen = 0
    for (const lease of leases) {
      lease.lapsedInWindow = false
      this.leasesSeen += 1
    }
  }

  get measuring (): boolean { return this.windowStart !== null }

  claimed (): void { if (this.windowStart !== null) this.leasesSeen += 1 }

  written (lease: Lease, now: number): void {
    if (this.windowStart !== null) {
      this.refreshes += 1
      this.maxGapMs = Math.max(this.maxGapMs, now - lease.refreshedAt)
      this.lapse(lease, now)
    }
    lease.refreshedAt = now
  }

  /** Ends the window: the leases not written since they expired count up to now. */
  end (leases: Iterable<Lease>): { leases: number, absentMs: number } {
    const now = Date.now()
    let count = 0
    for (const lease of leases) {
      count += 1
      this.lapse(lease, now)
    }
    this.windowStart = null
    return { leases: count, absentMs: this.absentMs }
  }

  private lapse (lease: Lease, now: number): void {
    const from = Math.max(lease.refreshedAt + this.ttlMs, this.windowStart ?? now)
    if (now <= from) return
    this.absentMs += now - from
    if (!lease.lapsedInWindow) {
      lease.lapsedInWindow = true
      this.lapsedLeases += 1
    }
  }
}

async function ready (client: RedisClient): Promise<void> {
  if (client.status === 'ready') return
  await new Promise<void>(resolve => {
    const timer = setTimeout(resolve, READY_WAIT_MS)
    client.once('ready', () => { clearTimeout(timer); resolve() })
  })
}

export class LegacyNode implements SimNode {
  readonly host: FakeHost
  readonly leases = new Map<string, Lease>()
  private readonly redis: RedisClient
  private readonly subscriber: RedisClient
  private readonly rpc: ClusterRpc
  private readonly scripts: Scripts
  /** The old `refreshing` set: writes in flight, which a handover waits for before it releases. */
  private readonly refreshing = new Set<Promise<unknown>>()
  private round: Promise<void> | null = null
  private timer: NodeJS.Timeout | null = null
  private dead = false

  constructor (readonly nodeId: string, private readonly settings: NodeSettings, private readonly tracker: LapseTracker) {
    const options = { url: settings.redis.url, cluster: settings.redis.cluster, commandTimeoutMs: settings.handoverTimeoutMs }
    this.redis = commandClient(options)
    this.subscriber = subscriberClient(options)
    for (const client of [this.redis, this.subscriber]) client.on('error', () => {})
    this.redis.defineCommand('legacyClaim', { numberOfKeys: 2, lua: CLAIM })
    this.redis.defineCommand('legacyRefresh', { numberOfKeys: 3, lua: REFRESH })
    this.redis.defineCommand('legacyRelease', { numberOfKeys: 2, lua: RELEASE })
    this.scripts = this.redis as unknown as Scripts
    this.rpc = new ClusterRpc(this.redis, this.subscriber, nodeId, silentLog)
    this.host = new FakeHost(nodeId, settings.gracePeriodMs)
    // The old registry refreshed a session on each of its lifecycle events, and released it on disposal.
    this.host.events = {
      changed: session => { this.touch(session) },
      released: (session, reason) => { this.released(session, reason) }
    }
  }

  async start (): Promise<void> {
    await ready(this.redis)
    this.rpc.handle('handover', async params => await this.giveUp((params as { userId: string }).userId))
    await this.rpc.start()
    this.timer = setInterval(() => { this.tick() }, Math.max(50, Math.floor(this.settings.leaseMs / 3)))
    this.tick()
  }

  async connect (userId: string, busy: boolean): Promise<number> {
    const started = performance.now()
    return await this.host.locked(userId, async () => {
      if (this.host.local(userId) !== undefined) return performance.now() - started
      const restore = await this.acquire(userId)
      const ms = performance.now() - started
      this.host.create(userId, restore, busy, randomUUID())
      return ms
    })
  }

  kill (): void {
    this.dead = true
    if (this.timer !== null) clearInterval(this.timer)
    this.subscriber.disconnect()
    this.redis.disconnect()
  }

  async stop (): Promise<void> {
    if (!this.dead) {
      this.dead = true
      if (this.timer !== null) clearInterval(this.timer)
      this.subscriber.disconnect()
      await this.round
      await this.redis.multi().zrem(key.nodes, this.nodeId).del(key.node(this.nodeId)).exec().catch(() => {})
    }
    this.redis.disconnect()
  }

  /** Claim (the old Cluster.acquire): the lease, or a handover from the node that holds it. */
  private async acquire (userId: string): Promise<SessionSnapshot | null> {
    const first = await this.claim(userId)
    if (first.ok) return await this.lastState(userId)
    const reply = await this.rpc.request<{ snapshot: SessionSnapshot | null }>(first.owner, 'handover', { userId }, this.settings.handoverTimeoutMs)
      .catch((error: unknown) => {
        if (error instanceof RemoteRequestError) throw new SessionMovingError(error.message)
        throw error
      })
    if (reply === NO_ANSWER) throw new SessionMovingError(`node ${first.owner} holds the session and does not answer`)
    const second = await this.claim(userId)
    if (!second.ok) throw new SessionMovingError(`node ${second.owner} took the session meanwhile`)
    return reply.snapshot
  }

  private async claim (userId: string): Promise<{ ok: true } | { ok: false, owner: string }> {
    // The old claim wrote a placeholder summary: the session did not exist yet.
    const [ok, value] = await this.scripts.legacyClaim(key.lease(userId), key.fence(userId), this.nodeId, '', Date.now(),
      this.settings.leaseMs, JSON.stringify({ userId }), randomBytes(8).toString('hex'))
    if (ok !== 1) return { ok: false, owner: String(value) }
    this.leases.set(userId, { token: String(value), refreshedAt: Date.now(), lapsedInWindow: false })
    this.tracker.claimed()
    return { ok: true }
  }

  private async lastState (userId: string): Promise<SessionSnapshot | null> {
    const text = await this.redis.get(key.state(userId))
    return text === null ? null : JSON.parse(text) as SessionSnapshot
  }

  /** The owner side of a handover: snapshot, dispose, and release once the writes in flight are done. */
  private async giveUp (userId: string): Promise<{ snapshot: SessionSnapshot | null }> {
    if (this.host.local(userId) === undefined) {
      await this.releaseClaim(userId)
      return { snapshot: await this.lastState(userId) }
    }
    return await this.host.locked(userId, async () => {
      const session = this.host.local(userId)
      if (session === undefined) {
        await this.releaseClaim(userId)
        return { snapshot: await this.lastState(userId) }
      }
      const snapshot = session.snapshot()
      void session.dispose('handover')
      await this.releaseClaim(userId)
      return { snapshot }
    })
  }

  private async releaseClaim (userId: string): Promise<void> {
    const lease = this.leases.get(userId)
    if (lease === undefined) return
    this.leases.delete(userId)
    // As the old code: a refresh of ours on its way would re-create the lease just released.
    await Promise.allSettled([...this.refreshing])
    await this.scripts.legacyRelease(key.lease(userId), key.state(userId), lease.token, '0')
  }

  private released (session: FakeSession, reason: DisposeReason): void {
    const lease = this.leases.get(session.userId)
    if (lease === undefined) return
    this.leases.delete(session.userId)
    this.scripts.legacyRelease(key.lease(session.userId), key.state(session.userId), lease.token, reason !== 'handover' ? '1' : '0')
      .catch(() => { this.tracker.errors += 1 })
  }

  /** A lifecycle event: the session's lease is written at once. */
  private touch (session: FakeSession): void {
    if (!session.isLive || this.dead) return
    const write = this.refresh(session)
    this.refreshing.add(write)
    void write.finally(() => this.refreshing.delete(write))
  }

  /** Every third of the TTL: a round over every live session, unless the last one is still going. */
  private tick (): void {
    if (this.dead) return
    if (this.round !== null) {
      if (this.tracker.measuring) this.tracker.overruns += 1
      return
    }
    const round = this.refreshRound()
    this.round = round
    this.refreshing.add(round)
    void round.finally(() => {
      this.refreshing.delete(round)
      this.round = null
    })
  }

  private async refreshRound (): Promise<void> {
    const started = performance.now()
    const measured = this.tracker.measuring
    if (measured) this.tracker.roundsStarted += 1
    const sessions = this.host.liveSessions()
    let next = 0
    const worker = async (): Promise<void> => {
      while (!this.dead && next < sessions.length) {
        await this.refresh(sessions[next++] as FakeSession)
      }
    }
    await Promise.all(Array.from({ length: REFRESH_IN_FLIGHT }, worker))
    if (this.dead) return
    const info = JSON.stringify({ nodeId: this.nodeId, publicUrl: `http://${this.nodeId}.sim`, ...this.host.counts(), at: new Date().toISOString() })
    await this.redis.multi().zadd(key.nodes, Date.now(), this.nodeId).set(key.node(this.nodeId), info, 'PX', 3 * this.settings.leaseMs).exec()
      .catch(() => { this.tracker.errors += 1 })
    if (measured && this.tracker.measuring) this.tracker.roundMs.push(performance.now() - started)
  }

  private async refresh (session: FakeSession): Promise<void> {
    const lease = this.leases.get(session.userId)
    if (lease === undefined || !session.isLive) return
    const summary = summarize(session.asUserSession())
    try {
      const result = await this.scripts.legacyRefresh(key.lease(session.userId), key.fence(session.userId), key.state(session.userId),
        this.nodeId, lease.token, Date.now(), this.settings.leaseMs, JSON.stringify(summary), JSON.stringify(session.snapshot()),
        this.settings.gracePeriodMs + this.settings.leaseMs, summary.state, session.sessionInstanceId)
      if (result === 1) this.tracker.written(lease, Date.now())
      else this.tracker.fenced += 1
    } catch {
      this.tracker.errors += 1
    }
  }
}

/** The old admin list: SCAN every lease on every master, then read each one's summary. */
async function scanAll (settings: NodeSettings): Promise<number> {
  let listed = 0
  await Promise.all(settings.redis.masters.map(async master => {
    const client = new Redis({ host: master.host, port: master.port, enableAutoPipelining: true })
    client.on('error', () => {})
    try {
      let cursor = '0'
      do {
        const [next, keys] = await client.scan(cursor, 'MATCH', LEASE_PATTERN, 'COUNT', SCAN_COUNT)
        cursor = next
        const texts = await Promise.all(keys.map(async lease => await client.hget(lease, 'summary')))
        for (const text of texts) if (text !== null && JSON.parse(text) !== null) listed += 1
      } while (cursor !== '0')
    } finally {
      client.disconnect()
    }
  }))
  return listed
}

export async function startLegacyDesign (nodeIds: readonly string[], settings: NodeSettings): Promise<DesignRun> {
  const tracker = new LapseTracker(settings.leaseMs)
  const nodes: LegacyNode[] = []
  for (const nodeId of nodeIds) {
    if (nodes.length > 0) await new Promise(resolve => setTimeout(resolve, settings.staggerMs))
    const node = new LegacyNode(nodeId, settings, tracker)
    await node.start()
    nodes.push(node)
  }
  const allLeases = function * (): Iterable<Lease> { for (const node of nodes) yield * node.leases.values() }

  return {
    name: 'old',
    nodes,

    async adminList (): Promise<AdminListFigure> {
      const started = performance.now()
      const listed = await scanAll(settings)
      const ms = performance.now() - started
      return { what: 'SCAN of every lease + HGET of each summary (the old list, whatever its page size)', samples: 1, p50Ms: ms, maxMs: ms, listed }
    },

    async beforeKill () {},

    /** No grace for a dead node's users in the old design: they drop out of the list as their leases expire. */
    async settled (dead, _survivor, killedAt): Promise<SettledFigure> {
      let last = 0
      let present = 0
      for (const lease of (dead as LegacyNode).leases.values()) {
        last = Math.max(last, lease.refreshedAt)
        if (lease.refreshedAt + settings.leaseMs > killedAt) present += 1
      }
      return {
        what: 'all its leases expired (last write + lease TTL; the old design had no grace for a dead node\'s users)',
        ms: Math.max(0, last + settings.leaseMs - killedAt),
        detail: { leases: (dead as LegacyNode).leases.size, unexpiredAtDeath: present }
      }
    },

    status () { return `refreshes ${tracker.refreshes}, fenced ${tracker.fenced}, errors ${tracker.errors}, overruns ${tracker.overruns}` },

    windowStarted () { tracker.start(allLeases()) },

    windowEnded (windowMs) {
      const { leases, absentMs } = tracker.end(allLeases())
      const sorted = [...tracker.roundMs].sort((a, b) => a - b)
      return {
        refresh: {
          neededPerS: leases / (settings.leaseMs / 3 / 1000),
          achievedPerS: tracker.refreshes * 1000 / windowMs,
          roundsCompleted: sorted.length,
          roundMeanMs: sorted.length === 0 ? null : sorted.reduce((a, b) => a + b, 0) / sorted.length,
          roundMaxMs: sorted.length === 0 ? null : sorted[sorted.length - 1],
          overruns: tracker.overruns,
          fenced: tracker.fenced,
          errors: tracker.errors,
          maxGapMs: tracker.maxGapMs
        },
        lapse: {
          leases,
          /** Share of lease-time in the window during which the lease had expired (another node could claim the user). */
          timeFraction: leases === 0 ? 0 : absentMs / (leases * windowMs),
          /** Share of leases (held at the start or claimed since) that expired at least once in the window. */
          leaseFraction: tracker.leasesSeen === 0 ? 0 : tracker.lapsedLeases / tracker.leasesSeen
        }
      }
    },

    async stop () {
      await Promise.all(nodes.map(async node => { await node.stop() }))
    }
  }
}
