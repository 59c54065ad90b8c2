/**
 * A resource tracker: every timer, interval and listener a manager creates goes
 * through one of these, so `clear()` / `dispose()` release them all and nothing
 * can outlive its owner (STYLE habit 8).
 */
import type { EventEmitter } from 'node:events'

type Release = () => void

export class Resources {
  /** Made with the first resource: several trackers of an idle session never hold one. */
  private releases: Set<Release> | null = null
  private disposed = false

  /** Number of live resources: a leak check for tests and snapshots. */
  get size (): number { return this.releases?.size ?? 0 }

  /** A one-shot timer; returns a function that cancels it. */
  timeout (fn: () => void, ms: number): Release {
    if (this.disposed) return noop
    const release = (): void => { clearTimeout(handle); this.untrack(release) }
    const handle = setTimeout(() => { this.untrack(release); fn() }, ms)
    this.track(release)
    return release
  }

  /** A repeating timer; returns a function that cancels it. */
  interval (fn: () => void, ms: number): Release {
    if (this.disposed) return noop
    const handle = setInterval(fn, ms)
    const release = (): void => { clearInterval(handle); this.untrack(release) }
    this.track(release)
    return release
  }

  /** An event listener removed on release. */
  // `any[]` is EventEmitter's own listener type; narrowing it here would reject every typed listener.
  listen (emitter: EventEmitter, event: string, fn: (...args: any[]) => void): Release {
    if (this.disposed) return noop
    emitter.on(event, fn)
    const release = (): void => { emitter.off(event, fn); this.untrack(release) }
    this.track(release)
    return release
  }

  /** Any other clean-up, run on release. */
  add (cleanup: () => void): Release {
    if (this.disposed) { cleanup(); return noop }
    const release = (): void => { this.untrack(release); cleanup() }
    this.track(release)
    return release
  }

  /** Release everything but stay usable (e.g. on detach). */
  clear (): void {
    if (this.releases === null) return
    for (const release of [...this.releases]) {
      try { release() } catch { /* a clean-up that throws must not stop the others */ }
    }
    // Let the empty table go (a session in grace keeps its trackers for minutes).
    if (this.releases?.size === 0) this.releases = null
  }

  /** Forget one resource; an emptied table is let go (sessions keep their trackers for hours). */
  private untrack (release: Release): void {
    this.releases?.delete(release)
    if (this.releases?.size === 0) this.releases = null
  }

  private track (release: Release): void {
    this.releases ??= new Set()
    this.releases.add(release)
  }

  /** Release everything and refuse new resources; idempotent. */
  dispose (): void {
    this.clear()
    this.disposed = true
  }
}

function noop (): void {}
