/**
 * The glasses' state as the phone reports it over REST (`POST
 * /api/client/device/state`, docs/PROTOCOL.md 4): the full set at
 * every socket open, then only the keys that changed. Changed keys go to every
 * app of the session as `device_state_update`; the glasses turning connected
 * re-sends the microphone state and releases displays held while they were not.
 */
import type { Manager } from '../sessions/manager.js'
import { isoNow } from '../protocol/timestamp.js'

/** The keys whose change is news; anything else the phone adds is kept and relayed too. */
export type DeviceState = Record<string, unknown>

/** A manager told when the glasses' connection to the phone changes. */
export interface GlassesConnectionFollower { glassesConnection: (connected: boolean) => void }

/** Where device state updates go: every app socket of the session. */
export interface AppBroadcast { broadcast: (message: { type: string, [key: string]: unknown }) => void }

export interface AppliedState { isGlassesConnected: boolean, isPhoneConnected: boolean, modelName: string | null }

/** Whether the glasses are connected: `connected` when sent, else a non-empty `modelName`. */
function connectedIn (changed: DeviceState): boolean | undefined {
  if (typeof changed.connected === 'boolean') return changed.connected
  if (!('modelName' in changed)) return undefined
  return typeof changed.modelName === 'string' && changed.modelName !== ''
}

export class DeviceStateManager implements Manager {
  readonly name = 'device'
  /** Made at the first report: most sessions' phones report, but a bench fleet does not. */
  private state: DeviceState | null = null
  /** Unknown until the phone first reports: displays are not held for a phone that never says. */
  private connected: boolean | null = null
  private updates = 0

  constructor (private readonly apps: AppBroadcast, private readonly followers: readonly GlassesConnectionFollower[]) {}

  /** False only once the phone said the glasses are not connected. */
  get glassesConnected (): boolean { return this.connected !== false }

  /** Apply a report: keep the keys whose value changed, tell the apps, and say what is known now. */
  apply (report: DeviceState, phoneConnected: boolean): AppliedState {
    const state = this.state ??= {}
    const changed: DeviceState = {}
    for (const [key, value] of Object.entries(report)) {
      if (value === undefined || Object.is(state[key], value)) continue
      state[key] = value
      changed[key] = value
    }
    const connected = connectedIn(changed)
    if (connected !== undefined && !('connected' in changed)) {
      state.connected = connected
      changed.connected = connected
    }
    if (Object.keys(changed).length > 0) {
      this.updates += 1
      this.apps.broadcast({ type: 'device_state_update', state: changed, fullSnapshot: false, timestamp: isoNow() })
    }
    if (connected !== undefined && connected !== this.connected) {
      this.connected = connected
      for (const follower of this.followers) follower.glassesConnection(connected)
    }
    return {
      isGlassesConnected: this.glassesConnected,
      isPhoneConnected: phoneConnected,
      modelName: typeof state.modelName === 'string' ? state.modelName : null
    }
  }

  snapshot (): unknown {
    return { state: { ...this.state }, glassesConnected: this.connected, updates: this.updates }
  }

  dispose (): void {
    this.state = null
  }
}
