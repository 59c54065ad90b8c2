/**
 * Who gets which stream (docs/PROTOCOL.md 2.3-2.4). Each app's list is replaced whole by
 * its `subscription_update`; an index by stream key makes delivery a lookup.
 * Glasses events other than transcripts and audio are relayed from here.
 */
import type { SubscriptionItem } from '../protocol/app-messages.js'
import type { GlassesMessage, UnlistedGlassesMessage } from '../protocol/glasses-messages.js'
import type { Manager } from '../sessions/manager.js'
import { LazyMap } from '../sessions/lazy-map.js'
import type { NodeEvents } from '../sessions/node-events.js'
import { baseStream, forApps, keysOf, keysOfUnlisted, streamKey, subscriptionString } from './streams.js'

/** One app subscribed on one key, with the exact string it subscribed with. */
export interface Subscriber { readonly packageName: string, readonly streamType: string }

/** Where relayed data goes: the session's app sockets (managers/app-sockets.ts). */
export interface AppOutlet {
  /** True when the message went out (the app is connected). */
  sendData: (packageName: string, streamType: string, data: unknown) => boolean
  sendAudio: (packageName: string, data: Buffer) => void
  /** A message of its own type (an answer to the app's request); true when it went out. */
  sendMessage: (packageName: string, message: { type: string, [key: string]: unknown }) => boolean
}

/** Told after an app's subscriptions changed, with the streams (as the app wrote them) it newly holds. */
export interface SubscriptionWatcher { subscriptionsChanged: (packageName: string, added: readonly string[]) => void }

/** Before the app sockets are wired in: nothing to deliver to. */
const NO_OUTLET: AppOutlet = { sendData: () => false, sendAudio: () => {}, sendMessage: () => false }

/** How many distinct subscriptions one app may hold. */
const MAX_SUBSCRIPTIONS = 256

export class SubscriptionManager implements Manager {
  readonly name = 'subscriptions'
  // Lazy: most sessions never have an app subscribed.
  private readonly byApp = new LazyMap<string, string[]>()
  private readonly byKey = new LazyMap<string, Subscriber[]>()

  /**
   * The app sockets. Set once the app lifecycle manager (their owner) exists, which is built after this
   * manager because it needs it; a field rather than a forwarding closure per session.
   */
  outlet: AppOutlet = NO_OUTLET

  /** The managers that follow subscriptions (microphone, phone relays), wired once per session: no closures. */
  private watchers: readonly SubscriptionWatcher[] = []
  /** The `rate` each app gave per stream, for the streams subscribed as `{stream, rate}`. */
  private readonly rates = new LazyMap<string, ReadonlyMap<string, string>>()

  /** `events` hears of each relay, by stream (metrics); unit tests may leave it out. */
  constructor (private readonly events: NodeEvents | null = null) {}

  /** Follow every change of any app's subscriptions. */
  watch (watcher: SubscriptionWatcher): void {
    // A copy of exactly the new length: `push` would give every session's two watchers a backing store of 17 slots.
    this.watchers = this.watchers.concat([watcher])
  }

  /** Replace an app's subscriptions; returns the list kept. */
  set (packageName: string, items: readonly SubscriptionItem[]): string[] {
    const kept = items.slice(0, MAX_SUBSCRIPTIONS)
    const list = [...new Set(kept.map(subscriptionString))]
    const before = new Set((this.byApp.get(packageName) ?? []).map(streamKey))
    this.removeFromIndex(packageName)
    const rates = new Map<string, string>()
    for (const item of kept) if (typeof item !== 'string' && item.rate !== undefined) rates.set(streamKey(item.stream), item.rate)
    if (rates.size > 0) this.rates.set(packageName, rates)
    else this.rates.delete(packageName)
    if (list.length === 0) {
      this.byApp.delete(packageName)
    } else {
      this.byApp.set(packageName, list)
      for (const streamType of list) {
        const key = streamKey(streamType)
        const subscribers = this.byKey.get(key) ?? []
        subscribers.push({ packageName, streamType })
        this.byKey.set(key, subscribers)
      }
    }
    this.changed(packageName, list.filter(streamType => !before.has(streamKey(streamType))))
    return list
  }

  remove (packageName: string): void {
    const had = this.byApp.has(packageName)
    this.removeFromIndex(packageName)
    this.byApp.delete(packageName)
    this.rates.delete(packageName)
    if (had) this.changed(packageName, [])
  }

  /** The `rate` an app gave with a `{stream, rate}` subscription to this key, if any. */
  rateOf (packageName: string, key: string): string | undefined {
    return this.rates.get(packageName)?.get(key)
  }

  /** Every stream key some app is subscribed to. */
  keys (): IterableIterator<string> { return this.byKey.keys() }

  subscribersOf (key: string): readonly Subscriber[] {
    return this.byKey.get(key) ?? []
  }

  /** Every app's list, as the apps wrote them (for `userSession.appSubscriptions`). */
  all (): Record<string, string[]> {
    return Object.fromEntries([...this.byApp].map(([packageName, list]) => [packageName, [...list]]))
  }

  /**
   * Relay a glasses event to every app subscribed to one of its keys. `stream` labels the count:
   * the key's base stream by default (a bounded set for listed types).
   */
  relay (keys: readonly string[], data: unknown, stream?: string): number {
    let sent = 0
    for (const key of keys) {
      for (const { packageName, streamType } of this.subscribersOf(key)) {
        if (!this.outlet.sendData(packageName, streamType, data)) continue
        this.events?.emit('app.relayed', stream ?? baseStream(key))
        sent += 1
      }
    }
    return sent
  }

  handle (message: GlassesMessage): boolean {
    const keys = keysOf(message)
    if (keys.length === 0) return false
    this.relay(keys, forApps(message))
    return true
  }

  handleUnlisted (message: UnlistedGlassesMessage): void {
    this.relay(keysOfUnlisted(message), message, 'other')
  }

  snapshot (): unknown {
    return { apps: this.all(), streams: [...this.byKey.keys()].sort() }
  }

  dispose (): void {
    this.byApp.clear()
    this.byKey.clear()
  }

  private changed (packageName: string, added: readonly string[]): void {
    for (const watcher of this.watchers) watcher.subscriptionsChanged(packageName, added)
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
