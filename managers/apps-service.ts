/**
 * What every session's app managers share on one node: the catalogue, the
 * user store, the index from opaque app session ids to their owner, the URL apps
 * connect back to, and the node's events. No Fastify here.
 */
import { createHash, timingSafeEqual } from 'node:crypto'
import type { AppEntry, AppsCatalogue } from '../protocol/apps-catalogue.js'
import type { Log } from '../sessions/log.js'
import type { NodeEvents } from '../sessions/node-events.js'
import type { UserStore } from '../sessions/user-store.js'
import type { AppChannel } from '../sessions/app-connection.js'
import type { Lc3Decoding } from '../audio/lc3-decoding.js'
import type { MicrophoneTimings } from './microphone-manager.js'
import type { AppConnectionInit } from '../protocol/app-messages.js'
import type { AppConnectionErrorCode } from '../protocol/error-codes.js'

/** The side of an AppLifecycleManager that /app-ws talks to. */
export interface AppEndpoint {
  /** Take an app socket whose init named this endpoint's session; false when the app is not started. */
  accept: (packageName: string, connection: AppChannel) => boolean
  /** The app's init named this session but its key was wrong: a pending start of it fails now. */
  refused: (packageName: string) => void
}

export interface AppSlot { readonly packageName: string, readonly endpoint: AppEndpoint }

/** Why an app's init was refused, as `tpa_connection_error` says it. */
export interface InitRefusal { code: AppConnectionErrorCode, message: string }

export interface AppsConfig extends MicrophoneTimings {
  appStartTimeoutMs: number
  appGracePeriodMs: number
  maxJsonDepth: number
  displayIntervalMs: number
}

const ZERO_DIGEST = Buffer.alloc(32)

export class AppsService {
  /** Opaque app session id -> the session and app it stands for. Never parsed. */
  readonly slots = new Map<string, AppSlot>()

  constructor (
    readonly catalogue: AppsCatalogue,
    readonly userStore: UserStore,
    readonly config: AppsConfig,
    readonly log: Log,
    private readonly publicUrl: () => string,
    /** The node's LC3 decoding, shared by every session's audio manager. */
    readonly decoding: Lc3Decoding,
    /** Where app starts, stops and relays are told (metrics listen). */
    readonly events: NodeEvents
  ) {}

  /** `PUBLIC_URL` with http(s) turned into ws(s), plus /app-ws. */
  websocketUrl (): string {
    return `${this.publicUrl().replace(/^http/, 'ws')}/app-ws`
  }

  /**
   * An app socket's init, checked in the order of docs/PROTOCOL.md 2.2: its key, its session, its app
   * started there. Admitted, the socket is handed to that session's app manager and null is returned.
   */
  admit (init: AppConnectionInit, connection: AppChannel): InitRefusal | null {
    const slot = this.slots.get(init.sessionId)
    if (this.verifyKey(init.packageName, init.apiKey) === null) {
      // The app the session waits for holds the wrong key: its start cannot succeed.
      if (slot?.packageName === init.packageName) slot.endpoint.refused(init.packageName)
      return { code: 'INVALID_API_KEY', message: 'unknown package or bad API key' }
    }
    if (slot === undefined) return { code: 'SESSION_NOT_FOUND', message: 'no such session' }
    if (slot.packageName !== init.packageName || !slot.endpoint.accept(init.packageName, connection)) {
      return { code: 'APP_NOT_STARTED', message: 'this app is not started for that session' }
    }
    return null
  }

  /** The catalogue entry when the key's sha256 matches it; compared in constant time, unknown apps included. */
  verifyKey (packageName: string, apiKey: string): AppEntry | null {
    const entry = this.catalogue.get(packageName)
    const given = createHash('sha256').update(apiKey, 'utf8').digest()
    const expected = entry === undefined ? ZERO_DIGEST : Buffer.from(entry.apiKeySha256, 'hex')
    const matches = timingSafeEqual(given, expected)
    return entry !== undefined && matches ? entry : null
  }
}
