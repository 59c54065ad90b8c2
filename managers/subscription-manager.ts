/**
 * Who gets which stream (PROTOCOL 2.3-2.4). Each app's list is replaced whole by
 * its `subscription_update`; an index by stream key makes delivery a lookup.
 * Glasses events other than transcripts and audio are relayed from here.
 */
import type { SubscriptionItem } from '../protocol/app-messages.js'
import type { GlassesMessage } from '../protocol/glasses-messages.js'
import type { Manager } from '../sessions/manager.js'
import { LazyMap } from '../sessions/lazy-map.js'
import { baseStream, keysOf, streamKey, subscriptionString } from './streams.js'

/** One app subscribed on one key, with the exact string it subscribed with. */
export interface Subscriber { readonly packageName: string, readonly streamType: string }

/** Where relayed data goes: the session's app manager. */
export interface AppOutlet {
  /** True when the message went out (the app is connected). */
  sendData: (packageName: string, streamType: string, data: unknown) => boolean
  sendAudio: (packageName: string, data: Buffer) => void
}

/** Counts what was relayed, by stream (the apps service, for metrics). */
export interface RelayCounter { countRelayed: (stream: string) => void }

/** Before the app manager is wired in: nothing to deliver to. */
const NO_OUTLET: AppOutlet = { sendData: () => false, sendAudio: () => {} }

/** How many distinct subscriptions one app may hold. */
const MAX_SUBSCRIPTIONS = 256

export class SubscriptionManager implements Manager {
  readonly name = 'subscriptions'
  // Lazy: most sessions never have an app subscribed.
  private readonly byApp = new LazyMap<string, string[]>()
  private readonly byKey = new LazyMap<string, Subscriber[]>()

  /**
   * The app sockets. Set once the app manager exists, which is built after this
   * manager because it needs it; a field rather than a forwarding closure per session.
   */
  outlet: AppOutlet = NO_OUTLET

  constructor (private readonly counter: RelayCounter = { countRelayed: () => {} }) {}

  /** Replace an app's subscriptions; returns the list kept. */
  set (packageName: string, items: readonly SubscriptionItem[]): string[] {
    const list = [...new Set(items.map(subscriptionString))].slice(0, MAX_SUBSCRIPTIONS)
    this.removeFromIndex(packageName)
    if (list.length === 0) {
      this.byApp.delete(packageName)
      return list
    }
    this.byApp.set(packageName, list)
    for (const streamType of list) {
      const key = streamKey(streamType)
      const subscribers = this.byKey.get(key) ?? []
      subscribers.push({ packageName, streamType })
      this.byKey.set(key, subscribers)
    }
    return list
  }

  remove (packageName: string): void {
    this.removeFromIndex(packageName)
    this.byApp.delete(packageName)
  }

  subscribersOf (key: string): readonly Subscriber[] {
    return this.byKey.get(key) ?? []
  }

  /** Every app's list, as the apps wrote them (for `userSession.appSubscriptions`). */
  all (): Record<string, string[]> {
    return Object.fromEntries([...this.byApp].map(([packageName, list]) => [packageName, [...list]]))
  }

  /** Relay a glasses event to every app subscribed to one of its keys. */
  relay (keys: readonly string[], data: unknown): number {
    let sent = 0
    for (const key of keys) {
      for (const { packageName, streamType } of this.subscribersOf(key)) {
        if (!this.outlet.sendData(packageName, streamType, data)) continue
        this.counter.countRelayed(baseStream(key))
        sent += 1
      }
    }
    return sent
  }

  handle (message: GlassesMessage): boolean {
    const keys = keysOf(message)
    if (keys.length === 0) return false
    this.relay(keys, message)
    return true
  }

  snapshot (): unknown {
    return { apps: this.all(), streams: [...this.byKey.keys()].sort() }
  }

  dispose (): void {
    this.byApp.clear()
    this.byKey.clear()
  }

  private removeFromIndex (packageName: string): void {
    for (const streamType of this.byApp.get(packageName) ?? []) {
      const key = streamKey(streamType)
      const left = (this.byKey.get(key) ?? []).filter(s => s.packageName !== packageName)
      if (left.length === 0) this.byKey.delete(key)
      else this.byKey.set(key, left)
    }
  }
}
