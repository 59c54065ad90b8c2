/**
 * A session context for manager unit tests: no socket server, just a record of
 * what a manager sends to the phone, and a switch for whether a phone is attached.
 */
import { testConfig } from '../helper.js'
import type { AppsFacet, SessionContext } from '../../sessions/manager.js'
import { silentLog } from '../../sessions/log.js'
import type { ServerMessage } from '../../protocol/server-messages.js'
import type { SessionSnapshot } from '../../sessions/session-snapshot.js'

/** A message as the phone would read it. */
export interface SentMessage { type: string, [key: string]: unknown }

export class FakeSession implements SessionContext {
  readonly userId = 'unit@example.com'
  readonly sessionInstanceId = 'instance-1'
  readonly config = testConfig()
  readonly log = silentLog
  /** Set before building a manager to play a session moved here from another node. */
  restored: SessionSnapshot | null = null
  readonly sent: SentMessage[] = []
  phoneConnected = true
  changes = 0

  changed (): void { this.changes += 1 }

  apps: AppsFacet | null = null

  provideApps (apps: AppsFacet): void { this.apps = apps }

  send (message: ServerMessage): boolean {
    if (!this.phoneConnected) return false
    this.sent.push(message as SentMessage)
    return true
  }

  view (): ReturnType<SessionContext['view']> {
    // The app part comes from the apps facet, as in UserSession, once a manager provided one.
    const apps = this.apps?.view() ?? { activeAppSessions: [], loadingApps: [], appSubscriptions: {} }
    return { userId: this.userId, startTime: new Date(0).toISOString(), ...apps }
  }

  of (type: string): SentMessage[] { return this.sent.filter(m => m.type === type) }
}

/** What a manager sent to apps through an outlet, by app. */
export class RecordingOutlet {
  readonly data: Array<{ packageName: string, streamType: string, data: unknown }> = []
  readonly messages: Array<{ packageName: string, message: { type: string, [key: string]: unknown } }> = []
  readonly audio: Array<{ packageName: string, data: Buffer }> = []

  sendData (packageName: string, streamType: string, data: unknown): boolean {
    this.data.push({ packageName, streamType, data })
    return true
  }

  sendAudio (packageName: string, data: Buffer): void { this.audio.push({ packageName, data }) }

  sendMessage (packageName: string, message: { type: string, [key: string]: unknown }): boolean {
    this.messages.push({ packageName, message })
    return true
  }
}

/** A FakeSession with part of its configuration changed: short timers for one test. */
export class ConfiguredSession extends FakeSession {
  override readonly config: ReturnType<typeof testConfig>

  constructor (overrides: Parameters<typeof testConfig>[0]) {
    super()
    this.config = testConfig(overrides)
  }
}
