/**
 * The NEW design under load: per simulated node the real RedisOwnership with its
 * OwnershipStore, ClusterRpc and RedisUserStore, on Redis connections of
 * its own and under its own nodeId, wired as plugins/ownership.ts wires them,
 * with a FakeHost playing the registry.
 */
import { randomUUID } from 'node:crypto'
import { performance } from 'node:perf_hooks'
import { ClusterRpc } from '../../cluster/cluster-rpc.js'
import type { RedisClient } from '../../cluster/keys.js'
import { OwnershipStore } from '../../cluster/ownership-store.js'
import { commandClient, subscriberClient } from '../../cluster/redis-client.js'
import { RedisUserStore } from '../../cluster/redis-user-store.js'
import { RedisOwnership } from '../../cluster/redis-ownership.js'
import { silentLog } from '../../sessions/log.js'
import { NodeEvents } from '../../sessions/node-events.js'
import type { DirectoryOperation, DirectoryOutcome } from '../../sessions/node-events.js'
import type { AdminListFigure, DesignRun, NodeSettings, SettledFigure, SimNode } from './design.js'
import { FakeHost } from './fake-sessions.js'
import { percentile } from '../stats.js'

/** How long a node waits for its command connection before it starts anyway (as the plugin's boot wait). */
const READY_WAIT_MS = 10_000
const ADMIN_SAMPLES = 10
const ADMIN_PAGE = 100
const SETTLED_POLL_MS = 100

const delay = async (ms: number): Promise<void> => { await new Promise(resolve => setTimeout(resolve, ms)) }

interface OperationFigures { count: number, errors: number, timeouts: number, totalSeconds: number, maxSeconds: number }

/** Every directory operation of every node (the node's `directory.operation` events), by name. */
class OperationTally {
  private byName = new Map<DirectoryOperation, OperationFigures>()

  readonly observer = (operation: DirectoryOperation, outcome: DirectoryOutcome, seconds: number): void => {
    let figures = this.byName.get(operation)
    if (figures === undefined) {
      figures = { count: 0, errors: 0, timeouts: 0, totalSeconds: 0, maxSeconds: 0 }
      this.byName.set(operation, figures)
    }
    figures.count += 1
    if (outcome === 'error') figures.errors += 1
    if (outcome === 'timeout') figures.timeouts += 1
    figures.totalSeconds += seconds
    figures.maxSeconds = Math.max(figures.maxSeconds, seconds)
  }

  reset (): void { this.byName = new Map() }

  count (operation: DirectoryOperation): number { return this.byName.get(operation)?.count ?? 0 }

  errors (): number { return [...this.byName.values()].reduce((sum, f) => sum + f.errors, 0) }

  figures (windowMs: number): Record<string, { count: number, perS: number, errors: number, timeouts: number, meanMs: number, maxMs: number }> {
    const out: Record<string, { count: number, perS: number, errors: number, timeouts: number, meanMs: number, maxMs: number }> = {}
    for (const [name, f] of [...this.byName].sort((a, b) => b[1].count - a[1].count)) {
      out[name] = {
        count: f.count,
        perS: f.count * 1000 / windowMs,
        errors: f.errors,
        timeouts: f.timeouts,
        meanMs: f.totalSeconds * 1000 / f.count,
        maxMs: f.maxSeconds * 1000
      }
    }
    return out
  }
}

async function ready (client: RedisClient): Promise<void> {
  if (client.status === 'ready') return
  await new Promise<void>(resolve => {
    const timer = setTimeout(resolve, READY_WAIT_MS)
    client.once('ready', () => { clearTimeout(timer); resolve() })
  })
}

export class NewNode implements SimNode {
  readonly host: FakeHost
  readonly ownership: RedisOwnership
  private readonly redis: RedisClient
  private readonly subscriber: RedisClient
  private killed = false

  constructor (readonly nodeId: string, settings: NodeSettings, tally: OperationTally) {
    const options = { url: settings.redis.url, cluster: settings.redis.cluster, commandTimeoutMs: settings.handoverTimeoutMs }
    this.redis = commandClient(options)
    this.subscriber = subscriberClient(options)
    for (const client of [this.redis, this.subscriber]) client.on('error', () => {})
    const events = new NodeEvents(silentLog)
    events.on('directory.operation', tally.observer)
    this.ownership = new RedisOwnership(new OwnershipStore(this.redis, nodeId), new RedisUserStore(this.redis),
      new ClusterRpc(this.redis, this.subscriber, nodeId, silentLog), {
        nodeId,
        publicUrl: () => `http://${nodeId}.sim`,
        leaseTtlMs: settings.leaseMs,
        handoverTimeoutMs: settings.handoverTimeoutMs,
        gracePeriodMs: settings.gracePeriodMs,
        countersWriteMs: settings.countersWriteMs,
        log: silentLog,
        events
      })
    this.host = new FakeHost(nodeId, settings.gracePeriodMs)
    // What the registry's hooks do (sessions/session-registry.ts): every event and every disposal reach the ownership.
    this.host.events = {
      changed: session => { this.ownership.changed(session.asUserSession()) },
      released: (session, reason) => { this.ownership.released(session.asUserSession(), reason) }
    }
  }

  async start (): Promise<void> {
    await ready(this.redis)
    await this.ownership.start(this.host)
  }

  /** The registry's path for a socket: prepare before the upgrade, then claim and create under the user's lock. */
  async connect (userId: string, busy: boolean): Promise<number> {
    const started = performance.now()
    await this.ownership.prepare(userId)
    return await this.host.locked(userId, async () => {
      if (this.host.local(userId) !== undefined) return performance.now() - started
      const claim = this.ownership.claim(userId)
      const restore = claim instanceof Promise ? await claim : claim
      const ms = performance.now() - started
      this.host.create(userId, restore, busy, randomUUID())
      return ms
    })
  }

  /**
   * Dropping both connections at once stops everything a node does in Redis: its renewals fail (its
   * timer keeps firing, as a hung process's would not, but nothing it sends arrives) and requests to it
   * go unanswered. `stop()` is not called: it would retire the node cleanly.
   */
  kill (): void {
    this.killed = true
    this.subscriber.disconnect()
    this.redis.disconnect()
  }

  async stop (): Promise<void> {
    // As the plugin's onClose: stop answering first, then retire (which fails at once on a killed node).
    if (!this.killed) this.subscriber.disconnect()
    await this.ownership.stop()
    this.redis.disconnect()
  }
}

export async function startNewDesign (nodeIds: readonly string[], settings: NodeSettings): Promise<DesignRun> {
  const tally = new OperationTally()
  const nodes: NewNode[] = []
  for (const nodeId of nodeIds) {
    if (nodes.length > 0) await delay(settings.staggerMs)
    const node = new NewNode(nodeId, settings, tally)
    await node.start()
    nodes.push(node)
  }
  const asNew = (node: SimNode): NewNode => node as NewNode
  let before = { active: 0, grace: 0, deadActive: 0, deadGrace: 0 }

  return {
    name: 'new',
    nodes,

    async adminList (from): Promise<AdminListFigure> {
      const samples: number[] = []
      let listed = 0
      for (let i = 0; i < ADMIN_SAMPLES; i++) {
        const started = performance.now()
        const page = await asNew(from).ownership.page({ after: null, limit: ADMIN_PAGE })
        samples.push(performance.now() - started)
        listed = page.counts.total
      }
      samples.sort((a, b) => a - b)
      return { what: `page() of ${ADMIN_PAGE} with counts`, samples: samples.length, p50Ms: percentile(samples, 50), maxMs: samples[samples.length - 1] ?? NaN, listed }
    },

    async beforeKill (dead, survivor) {
      const { counts } = await asNew(survivor).ownership.page({ state: 'grace', after: null, limit: 1 })
      const mine = dead.host.counts()
      before = { active: counts.active, grace: counts.grace, deadActive: mine.active, deadGrace: mine.grace }
      // From here the tally counts the settling: one `reap` per user settled (more when two nodes settle the same dead node).
      tally.reset()
    },

    /**
     * Until the counts say every user of the dead node is in grace, but the one the survivor took
     * over (active there): grace up by the dead node's active sessions less one, active down as much.
     */
    async settled (_dead, survivor, killedAt, limitMs): Promise<SettledFigure> {
      const moved = before.deadActive - 1
      let counts = { active: 0, grace: 0, total: 0 }
      let ms: number | null = null
      while (Date.now() - killedAt < limitMs) {
        counts = (await asNew(survivor).ownership.page({ state: 'grace', after: null, limit: 1 })).counts
        if (counts.grace >= before.grace + moved && counts.active <= before.active - moved) {
          ms = Date.now() - killedAt
          break
        }
        await delay(SETTLED_POLL_MS)
      }
      const detail = { ...before, graceAfter: counts.grace, activeAfter: counts.active, reapOperations: tally.count('reap') }
      return { what: 'all its users counted as grace (page counts)', ms, detail }
    },

    status () {
      return `writes ${tally.count('write')}, re-asserted ${tally.count('reassert')}, errors ${tally.errors()}`
    },

    windowStarted () {
      tally.reset()
      for (const node of nodes) node.host.takeSweeps()
    },

    windowEnded (windowMs) {
      const sweeps = nodes.map(node => node.host.takeSweeps())
      const count = sweeps.reduce((sum, f) => sum + f.sweeps, 0)
      return {
        operations: tally.figures(windowMs),
        sweeps: {
          what: 'RedisOwnership loops over every session of its node (tick counts, counters sweep, reassert)',
          perS: count * 1000 / windowMs,
          sessionsPerS: sweeps.reduce((sum, f) => sum + f.sessions, 0) * 1000 / windowMs,
          meanMs: count === 0 ? 0 : sweeps.reduce((sum, f) => sum + f.totalMs, 0) / count,
          maxMs: Math.max(0, ...sweeps.map(f => f.maxMs))
        }
      }
    },

    async stop () {
      await Promise.all(nodes.map(async node => { await node.stop() }))
    }
  }
}
