/**
 * The app side of a session: one factory that builds the managers that serve
 * apps and wires them to each other (they share the subscription table and the
 * app sockets), in dispatch order.
 */
import type { Manager, ManagerFactory } from '../sessions/manager.js'
import { AppManager } from './app-manager.js'
import type { AppsService } from './apps-service.js'
import { AudioManager } from './audio-manager.js'
import { DisplayManager } from './display-manager.js'
import { SubscriptionManager } from './subscription-manager.js'
import { TranscriptManager } from './transcript-manager.js'

export function appManagers (service: AppsService): ManagerFactory {
  return (session): Manager[] => {
    // The relays write to app sockets, which the app manager owns; it needs the
    // subscriptions to be built, so it is wired into them after.
    const subscriptions = new SubscriptionManager(service)
    const display = new DisplayManager(session)
    const apps = new AppManager(session, service, subscriptions, display)
    subscriptions.outlet = apps
    return [apps, new TranscriptManager(subscriptions), subscriptions, new AudioManager(subscriptions, apps), display]
  }
}
