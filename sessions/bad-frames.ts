/** Counts a socket's rejected frames in a fixed one-minute window that starts at the first bad frame. */
const WINDOW_MS = 60_000

export class BadFrameCounter {
  private count = 0
  private since = 0

  constructor (private readonly limit: number) {}

  /** Count one bad frame; true once the socket has passed its limit in the current window. */
  record (now = Date.now()): boolean {
    if (now - this.since > WINDOW_MS) {
      this.since = now
      this.count = 0
    }
    this.count += 1
    return this.count > this.limit
  }
}
