/**
 * The app side's stand-in at a reconnection of a session that never built it
 * (ManagerFactory.standIn, managers/session-recipe.ts). The phone must hear its
 * microphone state shortly after every attach to an existing session, also when
 * it is off (docs/PROTOCOL.md 1.8), and with no app side it is off. Of the rest
 * of the app side, nothing has anything to resend before it is first built: no
 * app shows anything, the location tier is the phone's own default. So this
 * sends "off" where the microphone manager would, without building eight
 * managers to do it, and hands its timing over to that manager once it is built.
 */
import type { AttachContext, SessionContext, StandIn } from '../sessions/manager.js'
import { Resources } from '../sessions/resources.js'
import { AFTER_ATTACH_MS, MICROPHONE_OFF, microphoneMessage, type MicrophoneHandOver } from './microphone-manager.js'

export class MicrophoneStandIn implements StandIn {
  private toldOffAt = 0
  private sent = 0
  private resendAt = 0
  private cancelResend: (() => void) | null = null
  private readonly res = new Resources()

  constructor (private readonly session: SessionContext) {}

  onAttach (ctx: AttachContext): void {
    if (!ctx.reconnection) return
    this.cancelResend?.()
    this.resendAt = Date.now() + AFTER_ATTACH_MS
    this.cancelResend = this.res.timeout(() => {
      this.cancelResend = null
      this.resendAt = 0
      if (!this.session.send(microphoneMessage(this.session.userId, MICROPHONE_OFF))) return
      this.toldOffAt = Date.now()
      this.sent += 1
    }, AFTER_ATTACH_MS)
  }

  /** What the microphone manager carries on from; this stand-in sends nothing more. */
  handOver (): MicrophoneHandOver {
    const handed = { toldOffAt: this.toldOffAt, sent: this.sent, resendAt: this.resendAt }
    this.dispose()
    return handed
  }

  dispose (): void {
    this.res.dispose()
    this.cancelResend = null
    this.resendAt = 0
  }
}
