/**
 * What must outlive one session of a user: which apps they had running (so a
 * fresh session restarts them) and how many starts in a row failed (three and
 * the app is forgotten), the phone's settings and last audio format, and an
 * admin's block. The memory store serves a single node; the Redis one
 * (cluster mode) implements the same interface, so a block holds on every node.
 */

/** Failed starts in a row after which a running app is forgotten. */
export const MAX_FAILED_STARTS = 3

/** The phone's audio format (docs/PROTOCOL.md 1.7): 16 kHz mono either way. */
export type AudioFormat = { format: 'pcm' } | { format: 'lc3', frameSizeBytes: 20 | 40 | 60 }

/** Settings the phone stores for its user (`POST /api/client/user/settings`): a flat JSON object. */
export type UserSettings = Record<string, unknown>

export interface UserStore {
  /**
   * Apps to restart when a fresh session of this user begins, in the order they were started. A store in
   * memory answers at once: every fresh session asks.
   */
  runningApps: (userId: string) => string[] | Promise<string[]>
  /** An app started (its init was acknowledged): remember it and reset its failure count. */
  appStarted: (userId: string, packageName: string) => Promise<void>
  /** An app was stopped on purpose: forget it. */
  appStopped: (userId: string, packageName: string) => Promise<void>
  /** A start failed; after MAX_FAILED_STARTS in a row the app is forgotten. Returns the count. */
  appStartFailed: (userId: string, packageName: string) => Promise<number>
  /** The format the user's phone last configured, or null if it never did. */
  audioFormat: (userId: string) => Promise<AudioFormat | null>
  setAudioFormat: (userId: string, format: AudioFormat) => Promise<void>
  userSettings: (userId: string) => Promise<UserSettings>
  /** Merge these keys into the user's settings; returns the whole result. */
  mergeUserSettings: (userId: string, settings: UserSettings) => Promise<UserSettings>
  /** Keep the user out until this time (epoch ms): upgrades and phone calls answer 403 USER_BLOCKED. */
  block: (userId: string, until: number) => Promise<void>
  /**
   * When the user's block ends (epoch ms), or null when not blocked. A store in memory answers at once:
   * every upgrade asks, and an answer that is not a promise costs it no turn of the loop.
   */
  blockedUntil: (userId: string) => number | null | Promise<number | null>
}

/**
 * The user's block as the upgrade and the phone's REST calls read it: a store that cannot
 * answer (Redis away) reads as no block. A plain answer stays plain (no promise).
 */
export function blockOf (store: UserStore, userId: string): number | null | Promise<number | null> {
  const until = store.blockedUntil(userId)
  return until instanceof Promise ? until.catch(() => null) : until
}

/** Settings objects larger than this (serialised) are refused: a phone sends a handful of keys. */
export const MAX_SETTINGS_BYTES = 16 * 1024

interface UserRecord { apps: string[], failures: Map<string, number> }

export class MemoryUserStore implements UserStore {
  private readonly users = new Map<string, UserRecord>()
  private readonly formats = new Map<string, AudioFormat>()
  private readonly settings = new Map<string, UserSettings>()
  private readonly blocks = new Map<string, number>()

  async audioFormat (userId: string): Promise<AudioFormat | null> { return this.formats.get(userId) ?? null }

  async setAudioFormat (userId: string, format: AudioFormat): Promise<void> { this.formats.set(userId, format) }

  async userSettings (userId: string): Promise<UserSettings> { return { ...this.settings.get(userId) } }

  async mergeUserSettings (userId: string, settings: UserSettings): Promise<UserSettings> {
    const merged = { ...this.settings.get(userId), ...settings }
    this.settings.set(userId, merged)
    return { ...merged }
  }

  async block (userId: string, until: number): Promise<void> { this.blocks.set(userId, until) }

  blockedUntil (userId: string): number | null {
    const until = this.blocks.get(userId)
    if (until === undefined) return null
    if (until > Date.now()) return until
    this.blocks.delete(userId)
    return null
  }

  runningApps (userId: string): string[] {
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
