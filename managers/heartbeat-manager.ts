/**
 * Connection health (docs/PROTOCOL.md 1.3): a WebSocket ping every PING_INTERVAL_MS (the first
 * one sooner, by a random part of half the interval, to spread the node's pings), and
 * a silence check that terminates the socket once nothing has come in for
 * SILENCE_TIMEOUT_MS. Any inbound frame counts; the connection stamps it, so the
 * hot path costs one assignment and no timer reset. The timing comes from the
 * node's HeartbeatSweep: this manager owns no timer of its own.
 */
import type { AttachContext, Manager, SessionContext } from '../sessions/manager.js'
import type { GlassesConnection } from '../sessions/glasses-connection.js'
import type { HeartbeatSweep, SweepMember } from '../sessions/heartbeat-sweep.js'

export class HeartbeatManager implements Manager, SweepMember {
  readonly name = 'heartbeat'
  private connection: GlassesConnection | null = null
  private nextPingAt = 0
  private pingsSent = 0
  private terminations = 0

  constructor (private readonly session: SessionContext, private readonly heartbeat: HeartbeatSweep) {}

  onAttach (ctx: AttachContext): void {
    this.connection = ctx.connection
    // The first ping comes between half an interval and an interval after the attach, at random:
    // sockets that attach together (a fleet coming back after a restart) then do not ping together
    // every interval for the rest of their lives, which would stall the node once per interval.
    const interval = this.session.config.pingIntervalMs
    this.nextPingAt = Date.now() + interval - Math.floor(Math.random() * interval / 2)
    this.heartbeat.add(this)
  }

  onDetach (): void { this.stop() }

  sweep (now: number): void {
    const connection = this.connection
    if (connection === null) return
    const silentFor = now - connection.lastInboundAt
    if (silentFor >= this.session.config.silenceTimeoutMs) {
      this.stop()
      this.terminations += 1
      this.session.log.info({ connectionId: connection.id, silentFor }, 'glasses silent: terminating socket')
      connection.terminate()
      return
    }
    if (now < this.nextPingAt) return
    this.nextPingAt = now + this.session.config.pingIntervalMs
    this.pingsSent += 1
    connection.ping()
  }

  snapshot (): unknown {
    return {
      lastInboundAt: this.connection === null ? null : new Date(this.connection.lastInboundAt).toISOString(),
      pingsSent: this.pingsSent,
      terminations: this.terminations,
      pingIntervalMs: this.session.config.pingIntervalMs,
      silenceTimeoutMs: this.session.config.silenceTimeoutMs,
      watched: this.heartbeat.has(this)
    }
  }

  dispose (): void { this.stop() }

  private stop (): void {
    this.heartbeat.remove(this)
    this.connection = null
  }
}
