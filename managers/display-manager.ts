/**
 * App layouts to the glasses (PROTOCOL 1.5, 2.5). The last layout of each view
 * is kept, so glasses that come back from their grace period see it again.
 */
import type { AppDisplayEvent } from '../protocol/app-messages.js'
import { LazyMap } from '../sessions/lazy-map.js'
import type { AttachContext, Manager, SessionContext } from '../sessions/manager.js'

interface Shown {
  message: { type: 'display_event', packageName: string, view: string, layout: unknown, durationMs?: number }
  /** When a layout with a duration stops being worth resending. */
  expiresAt: number | null
}

export class DisplayManager implements Manager {
  readonly name = 'display'
  // Lazy: most sessions never show a layout.
  private readonly views = new LazyMap<string, Shown>()
  private shown = 0
  private resent = 0

  constructor (private readonly session: SessionContext) {}

  show (packageName: string, event: AppDisplayEvent): void {
    const view = event.view ?? 'main'
    const durationMs = typeof event.durationMs === 'number' ? event.durationMs : undefined
    const message = {
      type: 'display_event' as const,
      packageName,
      view,
      layout: event.layout,
      ...(durationMs === undefined ? {} : { durationMs })
    }
    this.views.set(view, { message, expiresAt: durationMs === undefined ? null : Date.now() + durationMs })
    this.shown += 1
    this.session.send(message)
  }

  /** An app is gone: its layouts are no longer worth resending. */
  forget (packageName: string): void {
    for (const [view, shown] of this.views) {
      if (shown.message.packageName === packageName) this.views.delete(view)
    }
  }

  onAttach (ctx: AttachContext): void {
    if (!ctx.reconnection) return
    const now = Date.now()
    for (const [view, shown] of this.views) {
      if (shown.expiresAt !== null && shown.expiresAt <= now) {
        this.views.delete(view)
        continue
      }
      this.resent += 1
      this.session.send(shown.message)
    }
  }

  snapshot (): unknown {
    return {
      shown: this.shown,
      resent: this.resent,
      views: Object.fromEntries([...this.views].map(([view, s]) => [view, { packageName: s.message.packageName, layout: s.message.layout }]))
    }
  }

  dispose (): void { this.views.clear() }
}
