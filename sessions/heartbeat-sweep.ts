/**
 * One timer for the heartbeat of every glasses socket on the node, instead of
 * a ping interval and a silence timer per socket: at ten thousand idle sessions
 * those are twenty thousand timers with their closures, most of a kilobyte per
 * session. Each tick visits the attached sockets; a member decides from its own
 * clock whether a ping is due or the socket has been silent too long, so pings
 * stay spread over the interval as the sockets arrived.
 *
 * The tick is a tenth of the shorter of PING_INTERVAL_MS and SILENCE_TIMEOUT_MS,
 * so a ping or a silence termination is at most that much late. The interval runs
 * only while a socket is attached.
 */
import type { Log } from './log.js'

export interface SweepMember {
  /** Visit at `now`: ping when due, terminate when silent. */
  sweep: (now: number) => void
}

export class HeartbeatSweep {
  private readonly members = new Set<SweepMember>()
  private timer: NodeJS.Timeout | null = null
  readonly tickMs: number

  constructor (timing: { pingIntervalMs: number, silenceTimeoutMs: number }, private readonly log: Log) {
    this.tickMs = Math.max(1, Math.floor(Math.min(timing.pingIntervalMs, timing.silenceTimeoutMs) / 10))
  }

  /** Sockets being watched. */
  get size (): number { return this.members.size }

  has (member: SweepMember): boolean { return this.members.has(member) }

  add (member: SweepMember): void {
    this.members.add(member)
    if (this.timer !== null) return
    this.timer = setInterval(() => { this.tick() }, this.tickMs)
    // Listening sockets keep a server alive; this timer alone must not keep a process up.
    this.timer.unref()
  }

  remove (member: SweepMember): void {
    this.members.delete(member)
    if (this.members.size > 0 || this.timer === null) return
    clearInterval(this.timer)
    this.timer = null
  }

  private tick (): void {
    const now = Date.now()
    // A member may remove itself (a termination) while visited: Set iteration allows that.
    for (const member of this.members) {
      try {
        member.sweep(now)
      } catch (error) {
        this.log.error({ err: error }, 'heartbeat check failed')
      }
    }
  }
}
