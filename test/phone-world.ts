/**
 * A world for the phone end-to-end tests: real @mentra/sdk apps listed in a
 * catalogue, the real server with short timers, and phone emulators
 * (phone/emulator.ts) that behave as docs/PHONE.md says, stopped in teardown.
 */
import { PhoneEmulator, type PhoneOptions } from '../phone/emulator.js'
import type { Config } from '../config.js'
import { glassesToken, startServer, type Server, type Teardown } from './helper.js'
import { startSdkApp, writeCatalogue, type RecordingApp, type RunningApp, type SdkAppOptions } from './sdk-app.js'

export interface TestWithDir extends Teardown { testdir: () => string }

/** Short cadences for the phone and the server's microphone timing. */
export const FAST: Partial<Config> = { micDebounceMs: 20, micOffDelayMs: 300, micMinIntervalMs: 50, micRefreshMs: 10_000, displayIntervalMs: 20 }

export async function world (t: TestWithDir, apps: Array<{ packageName: string, options?: SdkAppOptions, entry?: Record<string, unknown> }>,
  overrides: Partial<Config> = {}): Promise<{ server: Server, sdk: RunningApp[] }> {
  const sdk = await Promise.all(apps.map(async a => await startSdkApp(t, a.packageName, a.options)))
  const appsFile = writeCatalogue(t.testdir(), sdk.map((s, i) => ({ ...s, entry: apps[i]?.entry })))
  const server = await startServer(t, { appsFile, ...FAST, ...overrides })
  return { server, sdk }
}

export async function phone (t: Teardown, server: Server, email: string, options: Partial<PhoneOptions> = {}): Promise<PhoneEmulator> {
  const emulator = new PhoneEmulator({
    baseUrl: server.httpUrl, token: glassesToken(email), pingIntervalMs: 1000, reconnectDelayMs: 300, ...options
  })
  t.teardown(async () => { await emulator.stop() })
  await emulator.start()
  await emulator.waitForAcks(1)
  return emulator
}

/** The PCM an SDK app received, in order. */
export function pcmOf (app: RecordingApp): Buffer {
  return Buffer.concat(app.of('audio_chunk').map(r => Buffer.from((r.data as { arrayBuffer: ArrayBuffer }).arrayBuffer)))
}

export const running = (apps: unknown[], packageName: string): boolean | undefined =>
  (apps as Array<{ packageName: string, running: boolean }>).find(a => a.packageName === packageName)?.running
