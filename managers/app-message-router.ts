/**
 * What an app's valid messages mean to its session (docs/PROTOCOL.md 2.3-2.5):
 * a `subscription_update` replaces the app's list, a `display_event` goes to the
 * display, requests for the phone go to the phone relay, and the other MentraOS app
 * messages are accepted and ignored. Parsing and bad-frame accounting stay with the
 * socket (managers/app-sockets.ts); this knows no socket.
 */
import type { AppDisplayEvent, AppMessage } from '../protocol/app-messages.js'
import type { MessageErrorCode } from '../protocol/error-codes.js'
import type { SessionContext } from '../sessions/manager.js'
import { publishAppState } from './app-state.js'
import type { DisplayManager } from './display-manager.js'
import type { PhoneRelayManager } from './phone-relay-manager.js'
import type { SubscriptionManager } from './subscription-manager.js'

/** Why a valid message was not acted on: sent back to the app as an `error`, and counted as a bad frame. */
export interface AppMessageRejection { readonly code: MessageErrorCode, readonly message: string }

/** Where the socket side hands an app's messages. */
export interface AppInbox {
  /** Act on one message of an accepted app; a rejection when it is not acceptable on that socket. */
  route: (packageName: string, message: AppMessage) => AppMessageRejection | null
}

export class AppMessageRouter implements AppInbox {
  constructor (
    private readonly session: SessionContext,
    private readonly subscriptions: SubscriptionManager,
    private readonly display: DisplayManager,
    private readonly phone: PhoneRelayManager
  ) {}

  route (packageName: string, message: AppMessage): AppMessageRejection | null {
    switch (message.type) {
      case 'tpa_connection_init':
        return { code: 'INVALID_MESSAGE', message: 'already initialised' }
      case 'subscription_update':
        if (message.packageName !== undefined && message.packageName !== packageName) {
          return { code: 'INVALID_MESSAGE', message: 'packageName does not match this connection' }
        }
        this.subscriptions.set(packageName, message.subscriptions)
        // The view's appSubscriptions changed.
        publishAppState(this.session)
        return null
      case 'display_event':
        this.display.show(packageName, message as AppDisplayEvent)
        return null
      default:
        // Requests for the phone (audio, LED, location, photos, Wi-Fi) go there; other MentraOS
        // app messages Tether does not act on (streams, dashboard, app-to-app) are accepted and ignored.
        if (!this.phone.fromApp(packageName, message)) {
          this.session.log.debug({ packageName, type: message.type }, 'app message ignored')
        }
        return null
    }
  }
}
