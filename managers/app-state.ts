/**
 * Telling a session's phone that its apps changed. Shared by the app lifecycle
 * (started, stopped, failed) and the app message router (an app's subscriptions),
 * which do not import each other.
 */
import type { SessionContext } from '../sessions/manager.js'
import { isoNow } from '../protocol/timestamp.js'

/** Send `app_state_change`, and have the session written down for another node (its running apps are part of it). */
export function publishAppState (session: SessionContext): void {
  session.send({ type: 'app_state_change', userSession: session.view(), timestamp: isoNow() })
  session.changed()
}
