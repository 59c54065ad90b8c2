/**
 * The session-scoped part of the phone's REST API (docs/PROTOCOL.md 4), as
 * operations on one user session. The route validates and authenticates; these
 * run on the node that holds the session, called directly
 * there or forwarded from another node of the cluster, so input and output are
 * plain JSON.
 */
import type { AppEntry, AppsCatalogue } from '../protocol/apps-catalogue.js'
import type { Manager } from '../sessions/manager.js'
import type { AudioFormat } from '../sessions/user-store.js'
import { AppLifecycleManager } from './app-lifecycle-manager.js'
import { AudioManager } from './audio-manager.js'
import { DeviceStateManager, type DeviceState } from './device-state-manager.js'
import { PhoneRelayManager } from './phone-relay-manager.js'
import { isoNow } from '../protocol/timestamp.js'

type Json = Record<string, unknown>

/** The session as these operations see it: its managers by class, and whether a phone socket is attached. */
export interface PhoneSession {
  readonly phoneConnected: boolean
  find: <M extends Manager>(type: abstract new (...args: never[]) => M) => M | undefined
}

export interface PhoneOperationInput {
  device_state: { state: DeviceState }
  apps: Record<string, never>
  start_app: { packageName: string, replyWithinMs: number }
  stop_app: { packageName: string }
  audio_configure: { format: AudioFormat }
  location: { body: Json }
  calendar: { events: unknown[] }
  notification: { body: Json }
  notification_dismissed: { body: Json }
  photo_response: { body: Json }
}

export type PhoneOperation = keyof PhoneOperationInput

/** An HTTP answer: what the route sends. */
export interface PhoneAnswer { status: number, body: Json }

export interface AppListing {
  packageName: string
  name: string
  webviewUrl: string
  logoUrl: string
  type: string
  permissions: AppEntry['permissions']
  running: boolean
  healthy: boolean
  hardwareRequirements: AppEntry['hardwareRequirements']
}

/** The phone's app list: every catalogue app, `running` when it runs or loads in this session. */
export function listApps (catalogue: AppsCatalogue, apps: AppLifecycleManager | undefined): AppListing[] {
  return [...catalogue.values()].map(entry => ({
    packageName: entry.packageName,
    name: entry.name,
    webviewUrl: entry.webviewUrl,
    logoUrl: entry.logoUrl,
    type: entry.type,
    permissions: entry.permissions,
    running: apps?.isRunning(entry.packageName) ?? false,
    healthy: true,
    hardwareRequirements: entry.hardwareRequirements
  }))
}

/** Resolves with the app's start outcome, or false once `ms` pass. */
async function within (start: Promise<boolean>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<boolean>(resolve => { timer = setTimeout(() => resolve(false), ms) })
  try {
    return await Promise.race([start, late])
  } finally {
    clearTimeout(timer)
  }
}

function need<M extends Manager> (session: PhoneSession, type: abstract new (...args: never[]) => M): M {
  const manager = session.find(type)
  if (manager === undefined) throw new Error(`this session has no ${type.name}`)
  return manager
}

const bad = (message: string): PhoneAnswer => ({ status: 400, body: { success: false, error: 'BAD_REQUEST', message } })

type Operation<K extends PhoneOperation> = (session: PhoneSession, catalogue: AppsCatalogue, input: PhoneOperationInput[K]) => PhoneAnswer | Promise<PhoneAnswer>

const OPERATIONS: { [K in PhoneOperation]: Operation<K> } = {
  device_state: (session, _catalogue, { state }) => {
    const applied = need(session, DeviceStateManager).apply(state, session.phoneConnected)
    return { status: 200, body: { success: true, appliedState: applied, timestamp: isoNow() } }
  },
  apps: (session, catalogue) =>
    ({ status: 200, body: { success: true, data: listApps(catalogue, session.find(AppLifecycleManager)), timestamp: isoNow() } }),
  start_app: async (session, catalogue, { packageName, replyWithinMs }) => {
    const apps = need(session, AppLifecycleManager)
    // One standard app at a time: starting one stops the others.
    if (catalogue.get(packageName)?.type === 'standard') {
      for (const other of apps.otherStandardApps(packageName)) void apps.stop(other)
    }
    const started = await within(apps.start(packageName, 'user'), replyWithinMs)
    return { status: 200, body: { success: true, data: { status: 'started', isRunning: started }, timestamp: isoNow() } }
  },
  stop_app: async (session, _catalogue, { packageName }) => {
    await need(session, AppLifecycleManager).stop(packageName)
    return { status: 200, body: { success: true, data: { status: 'stopped', isRunning: false }, timestamp: isoNow() } }
  },
  audio_configure: (session, _catalogue, { format }) => {
    need(session, AudioManager).configure(format)
    const lc3Config = format.format === 'lc3' ? { sampleRate: 16000, frameDurationMs: 10, frameSizeBytes: format.frameSizeBytes } : null
    return { status: 200, body: { success: true, format: format.format, lc3Config, timestamp: isoNow() } }
  },
  location: (session, _catalogue, { body }) => need(session, PhoneRelayManager).location(body)
    ? { status: 200, body: { success: true, timestamp: isoNow() } }
    : bad('a location needs coords.latitude and coords.longitude'),
  calendar: (session, _catalogue, { events }) => {
    const relayed = need(session, PhoneRelayManager).calendar(events)
    return { status: 200, body: { success: true, events: relayed, timestamp: isoNow() } }
  },
  notification: (session, _catalogue, { body }) => {
    need(session, PhoneRelayManager).notification('phone_notification', body)
    return { status: 200, body: { success: true, timestamp: isoNow() } }
  },
  notification_dismissed: (session, _catalogue, { body }) => {
    need(session, PhoneRelayManager).notification('phone_notification_dismissed', body)
    return { status: 200, body: { success: true, timestamp: isoNow() } }
  },
  photo_response: (session, _catalogue, { body }) => {
    const delivered = need(session, PhoneRelayManager).photoResponse(body)
    return { status: 200, body: { success: true, delivered, timestamp: isoNow() } }
  }
}

/** Run one operation on a session of this node. */
export async function runPhoneOperation<K extends PhoneOperation> (
  session: PhoneSession, catalogue: AppsCatalogue, operation: K, input: PhoneOperationInput[K]
): Promise<PhoneAnswer> {
  const run: Operation<K> = OPERATIONS[operation]
  return await run(session, catalogue, input)
}

/** Operation names, for checking what another node forwards. */
export const isPhoneOperation = (name: unknown): name is PhoneOperation =>
  typeof name === 'string' && Object.hasOwn(OPERATIONS, name)
