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
import type { AppOutlet } from './subscription-manager.js'
import { SubscriptionManager } from './subscription-manager.js'
import { TranscriptManager } from './transcript-manager.js'

export function appManagers (service: AppsService): ManagerFactory {
  return (session): Manager[] => {
    // The relays write to app sockets, which the app manager owns; it is built last.
    let apps: AppManager | null = null
    const outlet: AppOutlet = {
      sendData: (packageName, streamType, data) => apps?.sendData(packageName, streamType, data) ?? false,
      sendAudio: (packageName, data) => apps?.sendAudio(packageName, data)
    }
    const subscriptions = new SubscriptionManager(outlet, stream => service.notify(o => o.relayed?.(stream)))
    const display = new DisplayManager(session)
    apps = new AppManager(session, service, subscriptions, display)
    return [apps, new TranscriptManager(subscriptions), subscriptions, new AudioManager(subscriptions, outlet), display]
  }
}
