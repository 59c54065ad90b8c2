/**
 * What must outlive one session of a user: which apps they had running (so a
 * fresh session restarts them) and how many starts in a row failed (three and
 * the app is forgotten, PROTOCOL 2.1). The memory directory serves a single
 * node; the Redis one (cluster mode) implements the same interface.
 */

/** Failed starts in a row after which a running app is forgotten. */
export const MAX_FAILED_STARTS = 3

export interface SessionDirectory {
  /** Apps to restart when a fresh session of this user begins, in the order they were started. */
  runningApps: (userId: string) => Promise<string[]>
  /** An app started (its init was acknowledged): remember it and reset its failure count. */
  appStarted: (userId: string, packageName: string) => Promise<void>
  /** An app was stopped on purpose: forget it. */
  appStopped: (userId: string, packageName: string) => Promise<void>
  /** A start failed; after MAX_FAILED_STARTS in a row the app is forgotten. Returns the count. */
  appStartFailed: (userId: string, packageName: string) => Promise<number>
}

interface UserRecord { apps: string[], failures: Map<string, number> }

export class MemorySessionDirectory implements SessionDirectory {
  private readonly users = new Map<string, UserRecord>()

  async runningApps (userId: string): Promise<string[]> {
    return [...(this.users.get(userId)?.apps ?? [])]
  }

  async appStarted (userId: string, packageName: string): Promise<void> {
    const record = this.record(userId)
    if (!record.apps.includes(packageName)) record.apps.push(packageName)
    record.failures.delete(packageName)
  }

  async appStopped (userId: string, packageName: string): Promise<void> {
    const record = this.users.get(userId)
    if (record === undefined) return
    record.apps = record.apps.filter(p => p !== packageName)
    record.failures.delete(packageName)
    this.forgetIfEmpty(userId, record)
  }

  async appStartFailed (userId: string, packageName: string): Promise<number> {
    const record = this.record(userId)
    const failures = (record.failures.get(packageName) ?? 0) + 1
    record.failures.set(packageName, failures)
    if (failures >= MAX_FAILED_STARTS) {
      record.apps = record.apps.filter(p => p !== packageName)
      record.failures.delete(packageName)
    }
    this.forgetIfEmpty(userId, record)
    return failures
  }

  private record (userId: string): UserRecord {
    let record = this.users.get(userId)
    if (record === undefined) {
      record = { apps: [], failures: new Map() }
      this.users.set(userId, record)
    }
    return record
  }

  private forgetIfEmpty (userId: string, record: UserRecord): void {
    if (record.apps.length === 0 && record.failures.size === 0) this.users.delete(userId)
  }
}
