/**
 * App layouts to the glasses (docs/PROTOCOL.md 1.9). Per view (`main`,
 * `dashboard`) the latest layout of each app is kept, newest on top:
 * - real glasses take about one display per 300 ms per view, so a view sends
 *   at most once per DISPLAY_INTERVAL_MS, and what goes out is the newest;
 * - a layout's `durationMs` is enforced here (the phone ignores it): when it
 *   passes, the layout below it is shown again, or the view is cleared;
 * - `dashboard` is the system dashboard's; other apps' dashboard layouts go to `main`;
 * - while the phone says the glasses are not connected nothing is sent, and
 *   each view's top layout goes out when they connect;
 * - glasses that come back from their grace period see each view's top layout again.
 */
import type { AppDisplayEvent } from '../protocol/app-messages.js'
import { LazyMap } from '../sessions/lazy-map.js'
import type { AttachContext, Manager, SessionContext } from '../sessions/manager.js'
import { Resources } from '../sessions/resources.js'
import type { GlassesConnectionFollower } from './device-state-manager.js'

interface DisplayMessage {
  [key: string]: unknown
  type: 'display_event'
  packageName: string
  view: string
  layout: unknown
  durationMs?: number
}

interface Layer {
  message: DisplayMessage
  /** When the layout's duration passes, or null for none. */
  expiresAt: number | null
}

interface ViewState {
  /** One layer per app, the newest last. */
  layers: Layer[]
  sentAt: number
  cancelThrottle: (() => void) | null
  cancelExpiry: (() => void) | null
  /** Something changed while it could not be sent (throttled, or the glasses away). */
  dirty: boolean
}

export interface DisplayOptions {
  intervalMs: number
  /** True for the system dashboard app: the only one whose `dashboard` layouts stay there. */
  isSystemDashboard: (packageName: string) => boolean
}

const MAIN = 'main'
const DASHBOARD = 'dashboard'

export class DisplayManager implements Manager, GlassesConnectionFollower {
  readonly name = 'display'
  // Lazy: most sessions never show a layout.
  private readonly views = new LazyMap<string, ViewState>()
  private readonly res = new Resources()
  private shown = 0
  private sent = 0
  private resent = 0
  private expired = 0
  /** True while the phone says the glasses are not connected: nothing is sent then. */
  private glassesAway = false

  constructor (private readonly session: SessionContext, private readonly options: DisplayOptions) {}

  show (packageName: string, event: AppDisplayEvent): void {
    const asked = event.view ?? MAIN
    const view = asked === DASHBOARD && !this.options.isSystemDashboard(packageName) ? MAIN : asked
    const durationMs = typeof event.durationMs === 'number' ? event.durationMs : undefined
    const message: DisplayMessage = {
      type: 'display_event',
      packageName,
      view,
      layout: event.layout,
      ...(durationMs === undefined ? {} : { durationMs })
    }
    const state = this.viewState(view)
    state.layers = state.layers.filter(layer => layer.message.packageName !== packageName)
    state.layers.push({ message, expiresAt: durationMs === undefined ? null : Date.now() + durationMs })
    this.shown += 1
    this.deliver(view, state)
  }

  /** An app is gone: its layouts are no longer worth showing. */
  forget (packageName: string): void {
    for (const [view, state] of this.views) {
      state.layers = state.layers.filter(layer => layer.message.packageName !== packageName)
      if (state.layers.length === 0) this.dropView(view, state)
    }
  }

  /** The glasses came or went; when they come, every view whose top changed meanwhile goes out. */
  glassesConnection (connected: boolean): void {
    this.glassesAway = !connected
    if (!connected) return
    for (const [view, state] of this.views) if (state.dirty) this.deliver(view, state)
  }

  onAttach (ctx: AttachContext): void {
    if (!ctx.reconnection) return
    for (const [view, state] of this.views) {
      this.dropExpired(state)
      if (state.layers.length === 0) {
        this.dropView(view, state)
        continue
      }
      this.resent += 1
      state.sentAt = 0
      this.deliver(view, state)
    }
  }

  snapshot (): unknown {
    return {
      shown: this.shown,
      sent: this.sent,
      resent: this.resent,
      expired: this.expired,
      views: Object.fromEntries([...this.views].map(([view, state]) => {
        const top = state.layers.at(-1)
        return [view, { packageName: top?.message.packageName ?? null, layout: top?.message.layout ?? null, layers: state.layers.length }]
      }))
    }
  }

  dispose (): void {
    this.res.dispose()
    this.views.clear()
  }

  private viewState (view: string): ViewState {
    let state = this.views.get(view)
    if (state === undefined) {
      state = { layers: [], sentAt: 0, cancelThrottle: null, cancelExpiry: null, dirty: false }
      this.views.set(view, state)
    }
    return state
  }

  /** Send the view's top layout now, or as soon as the interval and the glasses allow. */
  private deliver (view: string, state: ViewState): void {
    state.dirty = true
    if (state.cancelThrottle !== null) return
    if (this.glassesAway) return
    const wait = state.sentAt + this.options.intervalMs - Date.now()
    if (wait > 0) {
      state.cancelThrottle = this.res.timeout(() => {
        state.cancelThrottle = null
        if (state.dirty) this.deliver(view, state)
      }, wait)
      return
    }
    this.dropExpired(state)
    const top = state.layers.at(-1)
    const message: DisplayMessage = top?.message ?? { type: 'display_event', packageName: '', view, layout: { layoutType: 'text_wall', text: '' } }
    if (!this.session.send(message)) return
    state.dirty = false
    state.sentAt = Date.now()
    this.sent += 1
    this.armExpiry(view, state)
  }

  /** When the top layout's duration passes, show what is below it (or clear the view). */
  private armExpiry (view: string, state: ViewState): void {
    state.cancelExpiry?.()
    state.cancelExpiry = null
    const top = state.layers.at(-1)
    const expiresAt = top?.expiresAt ?? null
    if (expiresAt === null) return
    state.cancelExpiry = this.res.timeout(() => {
      state.cancelExpiry = null
      this.expired += 1
      // This layer by name: a timer may fire a millisecond before the clock says it is due.
      state.layers = state.layers.filter(layer => layer !== top)
      this.deliver(view, state)
      if (state.layers.length === 0 && !state.dirty) this.dropView(view, state)
    }, Math.max(0, expiresAt - Date.now()))
  }

  private dropExpired (state: ViewState): void {
    const now = Date.now()
    if (state.layers.some(layer => layer.expiresAt !== null && layer.expiresAt <= now)) {
      state.layers = state.layers.filter(layer => layer.expiresAt === null || layer.expiresAt > now)
    }
  }

  private dropView (view: string, state: ViewState): void {
    if (state.cancelThrottle !== null || state.dirty) return
    state.cancelExpiry?.()
    this.views.delete(view)
  }
}
