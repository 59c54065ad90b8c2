/**
 * A glasses token that carries `exp` is honoured for the life of the socket, not
 * only at the upgrade: when it passes, the socket is closed 1008 "token expired".
 * The session enters its grace period as for any drop, so a reconnect with a
 * fresh token resumes it.
 *
 * Tokens live for hours: until its expiry is two sweep ticks away, the manager
 * waits in the node's HeartbeatSweep (a set entry) rather than on a timer of its
 * own (a timer and its closures are half a kilobyte of every idle session), then
 * arms the timer, so the close comes exactly when it would have.
 */
import { CloseCode } from '../protocol/close-codes.js'
import type { AttachContext, Manager, SessionContext } from '../sessions/manager.js'
import { Resources } from '../sessions/resources.js'
import type { GlassesConnection } from '../sessions/glasses-connection.js'
import type { HeartbeatSweep, SweepMember } from '../sessions/heartbeat-sweep.js'

/** setTimeout's longest delay; later expiries are reached in steps. */
const MAX_TIMER_MS = 2 ** 31 - 1

export class TokenExpiryManager implements Manager, SweepMember {
  readonly name = 'token'
  private expiresAt: number | null = null
  /** The socket whose token is waited for in the sweep, and when it is to be closed. */
  private waiting: GlassesConnection | null = null
  private closeAt = 0
  private disposed = false

  constructor (private readonly session: SessionContext, private readonly res = new Resources(), private readonly sweeper?: HeartbeatSweep) {}

  onAttach (ctx: AttachContext): void {
    this.stop()
    this.expiresAt = ctx.connection.identity.expiresAt
    if (this.expiresAt === null || this.disposed) return
    const closeAt = this.expiresAt + this.session.config.tokenClockToleranceMs
    if (this.sweeper === undefined || closeAt - Date.now() <= 2 * this.sweeper.tickMs) {
      this.schedule(ctx.connection, closeAt)
      return
    }
    this.waiting = ctx.connection
    this.closeAt = closeAt
    this.sweeper.add(this)
  }

  onDetach (): void { this.stop() }

  /** A sweep tick: within two ticks of the expiry, hand over to a timer. */
  sweep (now: number): void {
    const connection = this.waiting
    if (connection === null || this.closeAt - now > 2 * (this.sweeper?.tickMs ?? 0)) return
    this.leaveSweep()
    this.schedule(connection, this.closeAt)
  }

  snapshot (): unknown {
    return { expiresAt: this.expiresAt === null ? null : new Date(this.expiresAt).toISOString() }
  }

  dispose (): void {
    this.disposed = true
    this.leaveSweep()
    this.res.dispose()
  }

  private stop (): void {
    this.leaveSweep()
    this.res.clear()
  }

  private leaveSweep (): void {
    if (this.waiting === null) return
    this.waiting = null
    this.sweeper?.remove(this)
  }

  private schedule (connection: GlassesConnection, closeAt: number): void {
    const wait = closeAt - Date.now()
    if (wait > MAX_TIMER_MS) {
      this.res.timeout(() => this.schedule(connection, closeAt), MAX_TIMER_MS)
      return
    }
    this.res.timeout(() => connection.close(CloseCode.POLICY_VIOLATION, 'token expired'), Math.max(0, wait))
  }
}
