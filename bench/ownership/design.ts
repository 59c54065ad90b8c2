/**
 * What the load driver needs from a design under test (the new ownership layer,
 * or the old leases kept for comparison): nodes that take users, die, and
 * leave; and the design's own views of the cluster (its admin list, how a dead
 * node's users end up listed, its figures over the measured window).
 */
import type { FakeHost } from './fake-sessions.js'
import type { RedisDeployment } from './redis-processes.js'

export type DesignName = 'new' | 'old'

/** The settings every simulated node shares. */
export interface NodeSettings {
  redis: RedisDeployment
  leaseMs: number
  handoverTimeoutMs: number
  gracePeriodMs: number
  countersWriteMs: number
  /**
   * Nodes start this far apart, so that their timers (renewals, counters sweeps) fall at independent
   * times as those of real nodes would, rather than all in the same millisecond of this one process.
   */
  staggerMs: number
}

export interface SimNode {
  readonly nodeId: string
  readonly host: FakeHost
  /**
   * The user's glasses connect to this node: take the user (from the node that holds it, if any),
   * then create its session here. Resolves with the claim's time in ms; throws as the real claim would
   * (SessionMovingError, DirectoryUnavailableError).
   */
  connect: (userId: string, busy: boolean) => Promise<number>
  /** Die: stop renewing and stop answering other nodes, letting go of nothing. */
  kill: () => void
  /** Leave cleanly; after `kill`, only end what is still running here. */
  stop: () => Promise<void>
}

/** One admin list as the design serves it. */
export interface AdminListFigure {
  /** What was timed, in words. */
  what: string
  samples: number
  p50Ms: number
  maxMs: number
  /** Sessions the list (or its counts) reported. */
  listed: number
}

/** How long until a dead node's users are listed as the design lists them. */
export interface SettledFigure {
  what: string
  /** From the death; null when it did not happen within the limit. */
  ms: number | null
  detail: Record<string, number>
}

export interface DesignRun {
  readonly name: DesignName
  readonly nodes: readonly SimNode[]
  adminList: (from: SimNode) => Promise<AdminListFigure>
  /** Called just before `dead` is killed: whatever the settled check needs to know of the cluster then. */
  beforeKill: (dead: SimNode, survivor: SimNode) => Promise<void>
  /** After the kill: until the dead node's users are listed as settled (grace, or gone). */
  settled: (dead: SimNode, survivor: SimNode, killedAt: number, limitMs: number) => Promise<SettledFigure>
  /** A few words on what the design did since the window started, for the progress lines. */
  status: () => string
  windowStarted: () => void
  /** The design's own figures over the window (its operations, or its refresh throughput). */
  windowEnded: (windowMs: number) => Record<string, unknown>
  stop: () => Promise<void>
}
