/**
 * Counts events per key in fixed windows that start at a key's first event:
 * the per-user connect limit, and the per-address budget of refused upgrades.
 * Written here rather than taken from @fastify/rate-limit, which counts every
 * request as it arrives: the address budget counts only the refusals, known
 * after the request is read, and the user limit keys on the token's user.
 */
export class WindowCounter {
  private readonly windows = new Map<string, { start: number, count: number }>()

  constructor (private readonly windowMs: number) {}

  /** Count one event; returns the count in the key's current window and when that window ends. */
  hit (key: string, now = Date.now()): { count: number, resetsAt: number } {
    let window = this.windows.get(key)
    if (window === undefined || now - window.start >= this.windowMs) {
      window = { start: now, count: 0 }
      this.windows.set(key, window)
    }
    window.count += 1
    return { count: window.count, resetsAt: window.start + this.windowMs }
  }

  /** The count in the key's current window without counting; zero when it has none. */
  peek (key: string, now = Date.now()): { count: number, resetsAt: number } {
    const window = this.windows.get(key)
    if (window === undefined || now - window.start >= this.windowMs) return { count: 0, resetsAt: now + this.windowMs }
    return { count: window.count, resetsAt: window.start + this.windowMs }
  }

  /** Forget windows that have ended (call periodically so idle keys do not pile up). */
  sweep (now = Date.now()): void {
    for (const [key, window] of this.windows) {
      if (now - window.start >= this.windowMs) this.windows.delete(key)
    }
  }

  get size (): number { return this.windows.size }
}
