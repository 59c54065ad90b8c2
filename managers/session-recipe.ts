/**
 * The one recipe for a session's managers, in dispatch order: heartbeat and
 * token expiry, any extra managers given (tests use this), then the app side,
 * built together and wired to each other (they share the subscription table and
 * the app sockets), and left for a fresh session to build on first need. `app.ts`
 * passes it to the registry; the session core names no manager.
 */
import type { HeartbeatSweep } from '../sessions/heartbeat-sweep.js'
import type { Manager, ManagerFactory, SessionContext, StandIn } from '../sessions/manager.js'
import { AppLifecycleManager } from './app-lifecycle-manager.js'
import { AppMessageRouter } from './app-message-router.js'
import type { AppsService } from './apps-service.js'
import { AudioManager } from './audio-manager.js'
import { DeviceStateManager } from './device-state-manager.js'
import { DisplayManager } from './display-manager.js'
import { HeartbeatManager } from './heartbeat-manager.js'
import { MicrophoneManager } from './microphone-manager.js'
import { MicrophoneStandIn } from './microphone-stand-in.js'
import { PhoneRelayManager } from './phone-relay-manager.js'
import { SubscriptionManager } from './subscription-manager.js'
import { TokenExpiryManager } from './token-expiry-manager.js'
import { TranscriptManager } from './transcript-manager.js'

export interface SessionRecipeParts {
  /** The node's heartbeat timer, shared by every session. */
  heartbeat: HeartbeatSweep
  apps: AppsService
  /** Managers to add after heartbeat and token expiry, before the app side. */
  extra?: readonly ManagerFactory[]
}

export function sessionRecipe ({ heartbeat, apps, extra = [] }: SessionRecipeParts): ManagerFactory[] {
  return [
    session => [new HeartbeatManager(session, heartbeat), new TokenExpiryManager(session, undefined, heartbeat)],
    ...extra,
    appManagers(apps)
  ]
}

/** The app side: every manager that serves apps and the phone, wired to each other. */
export function appManagers (service: AppsService): ManagerFactory {
  const { config, catalogue } = service
  const displayOptions = {
    intervalMs: config.displayIntervalMs,
    isSystemDashboard: (packageName: string) => catalogue.get(packageName)?.type === 'system_dashboard'
  }
  const relayOptions = { appEntry: (packageName: string) => catalogue.get(packageName) }
  // Each session's stand-in, if a reconnection made one before the app side was built.
  const standIns = new WeakMap<SessionContext, MicrophoneStandIn>()
  const build = (session: SessionContext): Manager[] => {
    // The relays write to the app sockets, which the app lifecycle manager owns; it needs
    // the subscriptions to be built, so its sockets are wired into them after.
    const subscriptions = new SubscriptionManager(service.events)
    const microphone = new MicrophoneManager(session, subscriptions, config)
    const standIn = standIns.get(session)
    if (standIn !== undefined) {
      standIns.delete(session)
      microphone.continueFrom(standIn.handOver())
    }
    const phone = new PhoneRelayManager(session, subscriptions, relayOptions)
    const display = new DisplayManager(session, displayOptions)
    const inbox = new AppMessageRouter(session, subscriptions, display, phone)
    const apps = new AppLifecycleManager(session, service, subscriptions, display, inbox)
    subscriptions.outlet = apps.sockets
    const device = new DeviceStateManager(apps.sockets, [microphone, display])
    const audio = new AudioManager(session, subscriptions, apps.sockets, service.decoding, service.userStore, microphone)
    // Dispatch order: the app lifecycle owns start/stop, the phone relay owns answers to app requests,
    // transcripts their own type, and the subscription relay every other relayable message.
    return [apps, phone, new TranscriptManager(subscriptions), subscriptions, audio, display, device, microphone]
  }
  // Built on a session's first need (an app, a message for the app side, a REST call); a fresh session
  // needs them at once only when its user has apps to restart (the app manager reads the same list). A
  // reconnection before then needs only the microphone's "off" resent, which the stand-in does.
  return Object.assign(build, {
    standIn: (session: SessionContext): StandIn => {
      const standIn = new MicrophoneStandIn(session)
      standIns.set(session, standIn)
      return standIn
    },
    neededAtStart: (session: SessionContext): boolean | Promise<boolean> => {
      const running = service.userStore.runningApps(session.userId)
      return running instanceof Promise ? running.then(apps => apps.length > 0) : running.length > 0
    }
  })
}
