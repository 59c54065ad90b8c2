/**
 * A glasses token that carries `exp` is honoured for the life of the socket, not
 * only at the upgrade: when it passes, the socket is closed 1008 "token expired".
 * The session enters its grace period as for any drop, so a reconnect with a
 * fresh token resumes it.
 */
import { CloseCode } from '../protocol/close-codes.js'
import type { AttachContext, Manager, SessionContext } from '../sessions/manager.js'
import { Resources } from '../sessions/resources.js'
import type { GlassesConnection } from '../sessions/glasses-connection.js'

/** setTimeout's longest delay; later expiries are reached in steps. */
const MAX_TIMER_MS = 2 ** 31 - 1

export class TokenExpiryManager implements Manager {
  readonly name = 'token'
  private expiresAt: number | null = null

  constructor (private readonly session: SessionContext, private readonly res = new Resources()) {}

  onAttach (ctx: AttachContext): void {
    this.res.clear()
    this.expiresAt = ctx.connection.identity.expiresAt
    if (this.expiresAt !== null) this.schedule(ctx.connection, this.expiresAt + this.session.config.tokenClockToleranceMs)
  }

  onDetach (): void { this.res.clear() }

  snapshot (): unknown {
    return { expiresAt: this.expiresAt === null ? null : new Date(this.expiresAt).toISOString() }
  }

  dispose (): void { this.res.dispose() }

  private schedule (connection: GlassesConnection, closeAt: number): void {
    const wait = closeAt - Date.now()
    if (wait > MAX_TIMER_MS) {
      this.res.timeout(() => this.schedule(connection, closeAt), MAX_TIMER_MS)
      return
    }
    this.res.timeout(() => connection.close(CloseCode.POLICY_VIOLATION, 'token expired'), Math.max(0, wait))
  }
}
