/**
 * A third-party app built on the real, unmodified @mentra/sdk, served on
 * loopback through getExpressApp().listen (its start() would try the internet).
 * It records what its handlers receive so tests can assert on it.
 */
import { createHash, randomBytes } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import type { Server as HttpServer } from 'node:http'
import { createRequire } from 'node:module'
import { join } from 'node:path'
import type { AppSession } from '@mentra/sdk'
import type { AppEntryInFile } from '../protocol/apps-catalogue.js'
import { listenOnLoopback, type Teardown } from './helper.js'

// The SDK ships an ES module bundle in a package without "type": "module"; tap's
// TypeScript loader then treats it as CommonJS and sees no named exports. Node's
// own require() of an ES module loads it as the SDK means it.
const { AppServer } = createRequire(import.meta.url)('@mentra/sdk') as typeof import('@mentra/sdk')

export interface Received { kind: string, data: unknown }

export class RecordingApp extends AppServer {
  readonly sessions: Array<{ session: AppSession, sessionId: string, userId: string }> = []
  readonly stops: Array<{ sessionId: string, userId: string, reason: string }> = []
  readonly received: Received[] = []
  /** Extra subscriptions a test wants, beyond the handlers below. */
  withAudio = false
  /** More handlers a test wants on every session (streams, languages, phone requests). */
  extra: ((session: AppSession, app: RecordingApp) => void) | null = null

  protected override async onSession (session: AppSession, sessionId: string, userId: string): Promise<void> {
    this.sessions.push({ session, sessionId, userId })
    session.events.onButtonPress(data => { this.received.push({ kind: 'button_press', data }) })
    session.events.onHeadPosition(data => { this.received.push({ kind: 'head_position', data }) })
    session.events.onTranscriptionForLanguage('en-US', data => { this.received.push({ kind: 'transcription', data }) })
    session.events.onTouchEvent('forward_swipe', data => { this.received.push({ kind: 'touch_event:forward_swipe', data }) })
    if (this.withAudio) session.events.onAudioChunk(data => { this.received.push({ kind: 'audio_chunk', data }) })
    this.extra?.(session, this)
  }

  protected override async onStop (sessionId: string, userId: string, reason: string): Promise<void> {
    this.stops.push({ sessionId, userId, reason })
    await super.onStop(sessionId, userId, reason)
  }

  of (kind: string): Received[] { return this.received.filter(r => r.kind === kind) }
}

export interface RunningApp {
  app: RecordingApp
  packageName: string
  apiKey: string
  webhookUrl: string
  http: HttpServer
}

export interface SdkAppOptions {
  withAudio?: boolean
  extra?: (session: AppSession, app: RecordingApp) => void
}

export async function startSdkApp (t: Teardown, packageName = 'com.example.recorder', options: SdkAppOptions = {}): Promise<RunningApp> {
  const apiKey = randomBytes(16).toString('hex')
  const app = withoutSignalListeners(() => new RecordingApp({ packageName, apiKey, port: 0 }))
  app.withAudio = options.withAudio === true
  app.extra = options.extra ?? null
  // The SDK logs at debug level unconditionally; its warnings are what a test wants to see.
  app.logger.level = 'warn'
  const http = app.getExpressApp().listen(0, '127.0.0.1')
  const port = await listenOnLoopback(t, http)
  return { app, packageName, apiKey, webhookUrl: `http://127.0.0.1:${port}/webhook`, http }
}

/**
 * Make an SDK app without the SIGTERM and SIGINT listeners its constructor adds to the process (to stop itself).
 * The SDK never removes them, so a test file with more than ten apps passed Node's listener-leak warning; a test
 * stops its apps itself, at teardown.
 */
function withoutSignalListeners<T> (make: () => T): T {
  const signals = ['SIGTERM', 'SIGINT'] as const
  const before = signals.map(signal => new Set(process.listeners(signal)))
  const made = make()
  signals.forEach((signal, i) => {
    for (const listener of process.listeners(signal)) if (before[i]?.has(listener) !== true) process.off(signal, listener)
  })
  return made
}

/** Write an apps catalogue naming these apps and return its path. */
/** An app to list in a test catalogue; `entry` adds optional catalogue fields (type, hardwareRequirements...). */
export interface CatalogueApp { packageName: string, apiKey: string, webhookUrl: string, entry?: Partial<AppEntryInFile> }

export function writeCatalogue (dir: string, apps: CatalogueApp[]): string {
  const file = join(dir, 'apps.json')
  writeFileSync(file, JSON.stringify(apps.map(a => ({
    packageName: a.packageName,
    name: a.packageName,
    webhookUrl: a.webhookUrl,
    apiKeySha256: createHash('sha256').update(a.apiKey).digest('hex'),
    ...a.entry
  }))))
  return file
}
