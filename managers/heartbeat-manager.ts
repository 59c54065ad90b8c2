/**
 * Connection health (PROTOCOL 1.3): a WebSocket ping every PING_INTERVAL_MS, and
 * a silence check that terminates the socket once nothing has come in for
 * SILENCE_TIMEOUT_MS. Any inbound frame counts; the connection stamps it, so the
 * hot path costs one assignment and no timer reset.
 */
import type { AttachContext, Manager, SessionContext } from '../sessions/manager.js'
import type { GlassesConnection } from '../sessions/glasses-connection.js'
import { Resources } from '../sessions/resources.js'

export class HeartbeatManager implements Manager {
  readonly name = 'heartbeat'
  private connection: GlassesConnection | null = null
  private pingsSent = 0
  private terminations = 0

  constructor (private readonly session: SessionContext, private readonly res = new Resources()) {}

  onAttach (ctx: AttachContext): void {
    this.res.clear()
    this.connection = ctx.connection
    this.res.interval(() => this.ping(), this.session.config.pingIntervalMs)
    this.watchSilence(this.session.config.silenceTimeoutMs)
  }

  onDetach (): void {
    this.res.clear()
    this.connection = null
  }

  snapshot (): unknown {
    return {
      lastInboundAt: this.connection === null ? null : new Date(this.connection.lastInboundAt).toISOString(),
      pingsSent: this.pingsSent,
      terminations: this.terminations,
      pingIntervalMs: this.session.config.pingIntervalMs,
      silenceTimeoutMs: this.session.config.silenceTimeoutMs,
      timers: this.res.size
    }
  }

  dispose (): void {
    this.res.dispose()
    this.connection = null
  }

  private ping (): void {
    if (this.connection === null) return
    this.pingsSent += 1
    this.connection.ping()
  }

  /** Check once the timeout could have passed; re-arm for the remainder when something came in meanwhile. */
  private watchSilence (delayMs: number): void {
    this.res.timeout(() => {
      const connection = this.connection
      if (connection === null) return
      const silentFor = Date.now() - connection.lastInboundAt
      const timeout = this.session.config.silenceTimeoutMs
      if (silentFor < timeout) {
        this.watchSilence(timeout - silentFor)
        return
      }
      this.terminations += 1
      this.session.log.info({ connectionId: connection.id, silentFor }, 'glasses silent: terminating socket')
      connection.terminate()
    }, delayMs)
  }
}
