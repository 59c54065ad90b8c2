/**
 * The load, whichever design is under test: a ramp that connects every node's
 * users through the design's real claim path with a bounded number in flight,
 * then churn for the measured window (sessions dropping to grace and resuming,
 * users ending and new ones connecting, users moving between nodes) while the
 * idle majority does nothing.
 */
import { performance } from 'node:perf_hooks'
import { summarize, type LatencySummary } from '../stats.js'
import type { SimNode } from './design.js'
import type { FakeSession } from './fake-sessions.js'

export interface LoadSettings {
  sessionsPerNode: number
  /** Claims in flight during the ramp, over all nodes. */
  rampInFlight: number
  /** Fraction of all sessions that drop to grace per second; ends, new users and moves follow from it (see CHURN_MIX). */
  churnPerS: number
  /** How long a dropped session stays in grace before its glasses come back. */
  awayMs: number
  /** Fraction of sessions whose counters move (streaming audio): the new design writes them every countersWriteMs. */
  busyFraction: number
}

/**
 * Per drop to grace: how many users end, how many new ones connect (as many: the population holds) and how
 * many move to another node. A glasses session drops a few times an hour on a flaky network, lasts an hour
 * or so, and moves only when a node drains or a load balancer sends a reconnect elsewhere.
 */
export const CHURN_MIX = { end: 0.2, connect: 0.2, move: 0.05 }

export interface RampFigures {
  sessions: number
  ms: number
  claimsPerS: number
  claimMs: LatencySummary
  retries: number
  failures: number
  /** The design's own figures over the ramp (its operations and errors, or its refreshes and lapses). */
  design: Record<string, unknown>
}

export interface ChurnFigures {
  perS: { drops: number, resumes: number, ends: number, connects: number, moves: number }
  /** Connects and moves not started because too many were still in flight. */
  skipped: number
  /** Still unfinished a minute after the window ended. */
  unfinished: number
  /** Connects and moves that failed, by error name. */
  failures: Record<string, number>
  claimMs: LatencySummary
  moveMs: LatencySummary
}

const RAMP_TRIES = 5
const TICK_MS = 100
/** Connects and moves in flight before churn skips new ones (a backlog means the design fell behind). */
const MAX_CHURN_IN_FLIGHT = 2000
const PROGRESS_MS = 5000
/** How long the end of the churn waits for its connects and moves before reporting them unfinished. */
const DRAIN_LIMIT_MS = 60_000

const delay = async (ms: number): Promise<void> => { await new Promise(resolve => setTimeout(resolve, ms)) }

export const rampUser = (node: number, index: number): string => `n${node}-${index}@tether.sim`

/** Connect `sessionsPerNode` users to every node, `rampInFlight` at a time, nodes taking turns. */
export async function ramp (nodes: readonly SimNode[], settings: LoadSettings, progress: (line: string) => void): Promise<RampFigures> {
  const total = nodes.length * settings.sessionsPerNode
  const latencies = new Float64Array(total)
  let next = 0
  let done = 0
  let retries = 0
  let failures = 0
  const started = performance.now()
  const ticker = setInterval(() => {
    const seconds = (performance.now() - started) / 1000
    progress(`ramp ${done}/${total} claims, ${(done / seconds).toFixed(0)}/s, ${retries} retried, ${failures} failed`)
  }, PROGRESS_MS)
  const worker = async (): Promise<void> => {
    while (next < total) {
      const k = next++
      const node = nodes[k % nodes.length] as SimNode
      const userId = rampUser(k % nodes.length, Math.floor(k / nodes.length))
      const busy = Math.random() < settings.busyFraction
      for (let attempt = 1; ; attempt++) {
        try {
          const ms = await node.connect(userId, busy)
          latencies[done++] = ms
          break
        } catch {
          if (attempt === RAMP_TRIES) {
            failures += 1
            break
          }
          retries += 1
          await delay(100 * attempt)
        }
      }
    }
  }
  try {
    await Promise.all(Array.from({ length: Math.min(settings.rampInFlight, total) }, worker))
  } finally {
    clearInterval(ticker)
  }
  const ms = performance.now() - started
  return { sessions: done, ms, claimsPerS: done * 1000 / ms, claimMs: summarize(Array.from(latencies.subarray(0, done))), retries, failures, design: {} }
}

interface Away { node: SimNode, session: FakeSession, at: number }

/** The churn of the measured window. */
export class Churn {
  private timer: NodeJS.Timeout | null = null
  private lastTick = 0
  private readonly owed = { drops: 0, ends: 0, connects: 0, moves: 0 }
  private readonly done = { drops: 0, resumes: 0, ends: 0, connects: 0, moves: 0 }
  private away: Away[] = []
  private awayHead = 0
  private readonly inFlight = new Set<Promise<unknown>>()
  private skipped = 0
  private readonly failures: Record<string, number> = {}
  private readonly claimMs: number[] = []
  private readonly moveMs: number[] = []
  private newUsers = 0

  constructor (private readonly nodes: readonly SimNode[], private readonly settings: LoadSettings, private readonly population: number) {}

  start (): void {
    this.lastTick = performance.now()
    this.timer = setInterval(() => { this.tick() }, TICK_MS)
  }

  /** Connects, moves and ends still running. */
  get pending (): number { return this.inFlight.size }

  /** Start nothing more; resolves once what is in flight has finished, or after `limitMs` with what is left. */
  async stop (limitMs = DRAIN_LIMIT_MS): Promise<void> {
    if (this.timer !== null) clearInterval(this.timer)
    this.timer = null
    let timer: NodeJS.Timeout | undefined
    await Promise.race([Promise.allSettled([...this.inFlight]), new Promise(resolve => { timer = setTimeout(resolve, limitMs) })])
    clearTimeout(timer)
    this.leftInFlight = this.inFlight.size
  }

  /** What was still in flight when `stop` gave up waiting. */
  leftInFlight = 0

  figures (windowMs: number): ChurnFigures {
    const perS = (n: number): number => n * 1000 / windowMs
    return {
      perS: { drops: perS(this.done.drops), resumes: perS(this.done.resumes), ends: perS(this.done.ends), connects: perS(this.done.connects), moves: perS(this.done.moves) },
      skipped: this.skipped,
      unfinished: this.leftInFlight,
      failures: this.failures,
      claimMs: summarize(this.claimMs),
      moveMs: summarize(this.moveMs)
    }
  }

  private tick (): void {
    const now = performance.now()
    // Owed by the time that really passed, so a late timer does not lower the rate.
    const share = (now - this.lastTick) / 1000 * this.population * this.settings.churnPerS
    this.lastTick = now
    this.owed.drops += share
    this.owed.ends += share * CHURN_MIX.end
    this.owed.connects += share * CHURN_MIX.connect
    this.owed.moves += share * CHURN_MIX.move
    for (; this.owed.drops >= 1; this.owed.drops--) this.drop()
    this.resumeDue()
    for (; this.owed.ends >= 1; this.owed.ends--) this.end()
    for (; this.owed.connects >= 1; this.owed.connects--) this.connect()
    for (; this.owed.moves >= 1; this.owed.moves--) this.move()
  }

  private randomNode (except?: SimNode): SimNode {
    for (;;) {
      const node = this.nodes[Math.floor(Math.random() * this.nodes.length)] as SimNode
      if (node !== except || this.nodes.length === 1) return node
    }
  }

  /** A random live session of a random node (a few tries: some picked will be disposing). */
  private randomSession (state?: 'active'): { node: SimNode, session: FakeSession } | null {
    for (let i = 0; i < 5; i++) {
      const node = this.randomNode()
      const session = node.host.random()
      if (session !== undefined && session.isLive && (state === undefined || session.state === state)) return { node, session }
    }
    return null
  }

  private drop (): void {
    const picked = this.randomSession('active')
    if (picked === null) return
    picked.node.host.drop(picked.session)
    this.away.push({ ...picked, at: Date.now() + this.settings.awayMs })
    this.done.drops += 1
  }

  private resumeDue (): void {
    const now = Date.now()
    while (this.awayHead < this.away.length && (this.away[this.awayHead] as Away).at <= now) {
      const { node, session } = this.away[this.awayHead++] as Away
      if (node.host.holds(session) && session.state === 'grace') {
        node.host.resume(session)
        this.done.resumes += 1
      }
    }
    if (this.awayHead > 10_000) {
      this.away = this.away.slice(this.awayHead)
      this.awayHead = 0
    }
  }

  private end (): void {
    const picked = this.randomSession()
    if (picked === null) return
    this.track(picked.node.host.end(picked.session.userId, 'grace_expired'))
    this.done.ends += 1
  }

  private connect (): void {
    if (this.inFlight.size >= MAX_CHURN_IN_FLIGHT) {
      this.skipped += 1
      return
    }
    const userId = `new-${this.newUsers++}@tether.sim`
    this.track(this.randomNode().connect(userId, Math.random() < this.settings.busyFraction).then(ms => {
      this.claimMs.push(ms)
      this.done.connects += 1
    }, error => { this.failed(error) }))
  }

  /** The user's glasses reconnect through another node: that node takes the session over (handover). */
  private move (): void {
    if (this.inFlight.size >= MAX_CHURN_IN_FLIGHT) {
      this.skipped += 1
      return
    }
    const picked = this.randomSession()
    if (picked === null) return
    const to = this.randomNode(picked.node)
    this.track(to.connect(picked.session.userId, picked.session.busy).then(ms => {
      this.moveMs.push(ms)
      this.done.moves += 1
    }, error => { this.failed(error) }))
  }

  private failed (error: unknown): void {
    const name = error instanceof Error ? error.name : 'unknown'
    this.failures[name] = (this.failures[name] ?? 0) + 1
  }

  private track (work: Promise<unknown>): void {
    const tracked = work.catch(() => {})
    this.inFlight.add(tracked)
    void tracked.finally(() => this.inFlight.delete(tracked))
  }
}
