/**
 * What outlives a session of a user, on Redis (cluster mode), so every node sees
 * it: running apps, the phone's settings and audio format, an admin's block.
 * Each user's keys share one hash tag (one slot of a Redis Cluster).
 */
import { MAX_FAILED_STARTS, type AudioFormat, type UserStore, type UserSettings } from '../sessions/user-store.js'
import { keys, type RedisClient } from './keys.js'

export class RedisUserStore implements UserStore {
  constructor (private readonly redis: RedisClient) {}

  // ---- running apps per user (UserStore) ----

  async runningApps (userId: string): Promise<string[]> {
    const text = await this.redis.hget(keys.apps(userId), 'apps')
    return text === null ? [] : JSON.parse(text) as string[]
  }

  async appStarted (userId: string, packageName: string): Promise<void> {
    const apps = await this.runningApps(userId)
    if (!apps.includes(packageName)) apps.push(packageName)
    await this.redis.multi().hset(keys.apps(userId), 'apps', JSON.stringify(apps)).hdel(keys.apps(userId), `failures:${packageName}`).exec()
  }

  async appStopped (userId: string, packageName: string): Promise<void> {
    const apps = (await this.runningApps(userId)).filter(p => p !== packageName)
    await this.redis.multi().hset(keys.apps(userId), 'apps', JSON.stringify(apps)).hdel(keys.apps(userId), `failures:${packageName}`).exec()
  }

  async appStartFailed (userId: string, packageName: string): Promise<number> {
    const failures = await this.redis.hincrby(keys.apps(userId), `failures:${packageName}`, 1)
    if (failures >= MAX_FAILED_STARTS) await this.appStopped(userId, packageName)
    return failures
  }

  // ---- the phone's settings and audio format, and blocks ----

  async audioFormat (userId: string): Promise<AudioFormat | null> {
    const text = await this.redis.hget(keys.settings(userId), 'audioFormat')
    return text === null ? null : JSON.parse(text) as AudioFormat
  }

  async setAudioFormat (userId: string, format: AudioFormat): Promise<void> {
    await this.redis.hset(keys.settings(userId), 'audioFormat', JSON.stringify(format))
  }

  async userSettings (userId: string): Promise<UserSettings> {
    const text = await this.redis.hget(keys.settings(userId), 'settings')
    return text === null ? {} : JSON.parse(text) as UserSettings
  }

  async mergeUserSettings (userId: string, settings: UserSettings): Promise<UserSettings> {
    // One phone writes its own settings a few times a session: a read-merge-write is enough.
    const merged = { ...await this.userSettings(userId), ...settings }
    await this.redis.hset(keys.settings(userId), 'settings', JSON.stringify(merged))
    return merged
  }

  async block (userId: string, until: number): Promise<void> {
    await this.redis.set(keys.block(userId), String(until), 'PXAT', until)
  }

  async blockedUntil (userId: string): Promise<number | null> {
    const text = await this.redis.get(keys.block(userId))
    const until = text === null ? NaN : Number(text)
    return Number.isFinite(until) && until > Date.now() ? until : null
  }
}
