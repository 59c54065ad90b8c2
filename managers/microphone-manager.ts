/**
 * Tells the phone when to use its microphone (docs/PROTOCOL.md 1.8).
 * The phone turns it on only when told, and keeps the last state across
 * reconnects, so the state is computed from what the session's apps subscribe
 * to and sent:
 * - after a change of the apps' needs, debounced; a change to "off" waits a
 *   hold-down first, in case a subscriber comes straight back;
 * - shortly after every socket attach, also when off (the phone may still be
 *   streaming from before), and when the glasses become connected;
 * - again every MIC_REFRESH_MS while on;
 * - at once (within the spacing) when audio arrives that no app needs.
 * Messages are at least MIC_MIN_INTERVAL_MS apart; the latest state wins.
 */
import type { AttachContext, Manager, SessionContext } from '../sessions/manager.js'
import { Resources } from '../sessions/resources.js'
import { AUDIO_STREAM } from './streams.js'
import type { GlassesConnectionFollower } from './device-state-manager.js'
import type { SubscriptionManager, SubscriptionWatcher } from './subscription-manager.js'
import { isoNow } from '../protocol/timestamp.js'

/** What the phone is asked to produce: LC3 audio up the socket, and/or its own transcripts. */
export type RequiredData = 'pcm' | 'transcription'

export interface MicrophoneState {
  requiredData: RequiredData[]
  /** True when an app takes raw audio (`audio_chunk`): the phone then streams without waiting for voice. */
  bypassVad: boolean
}

export const MICROPHONE_OFF: MicrophoneState = { requiredData: [], bypassVad: false }

/** The microphone timings a session reads from its configuration. */
export interface MicrophoneTimings {
  micDebounceMs: number
  micOffDelayMs: number
  micMinIntervalMs: number
  micRefreshMs: number
}

/** Delay after an attach before the state is re-sent: the phone has just opened its socket. */
export const AFTER_ATTACH_MS = 100

/** What tells the phone a state (docs/PROTOCOL.md 1.8); a type, not an interface, to fit ServerMessage's index signature. */
export type MicrophoneStateChange = {
  type: 'microphone_state_change'
  sessionId: string
  isMicrophoneEnabled: boolean
  requiredData: RequiredData[]
  bypassVad: boolean
  timestamp: string
}

/** The message that tells the phone a state. */
export function microphoneMessage (userId: string, state: MicrophoneState): MicrophoneStateChange {
  return {
    type: 'microphone_state_change',
    sessionId: userId,
    isMicrophoneEnabled: state.requiredData.length > 0,
    requiredData: state.requiredData,
    bypassVad: state.bypassVad,
    timestamp: isoNow()
  }
}

/** What a stand-in that served the session before the app side was built (MicrophoneStandIn) hands over. */
export interface MicrophoneHandOver {
  /** When it last told the phone "off"; 0 if never. */
  toldOffAt: number
  sent: number
  /** When the re-send of an attach it had pending is due; 0 if none. */
  resendAt: number
}

function needsTranscripts (key: string): boolean {
  return key.startsWith('transcription') || key.startsWith('translation')
}

/** What the apps' subscriptions need from the phone. */
export function requiredBy (keys: Iterable<string>): MicrophoneState {
  let pcm = false
  let transcripts = false
  for (const key of keys) {
    if (key === AUDIO_STREAM) pcm = true
    else if (needsTranscripts(key)) transcripts = true
  }
  const requiredData: RequiredData[] = []
  if (pcm) requiredData.push('pcm')
  if (transcripts) requiredData.push('transcription')
  return { requiredData, bypassVad: pcm }
}

const same = (a: MicrophoneState, b: MicrophoneState): boolean =>
  a.bypassVad === b.bypassVad && a.requiredData.join() === b.requiredData.join()

export class MicrophoneManager implements Manager, SubscriptionWatcher, GlassesConnectionFollower {
  readonly name = 'microphone'
  /** The state the apps need, as of the last debounce. */
  private wanted: MicrophoneState = MICROPHONE_OFF
  /** What the phone was last told, and when. */
  private told: MicrophoneState | null = null
  private toldAt = 0
  private sent = 0
  private cancelDebounce: (() => void) | null = null
  private cancelOff: (() => void) | null = null
  private cancelSend: (() => void) | null = null
  private cancelRefresh: (() => void) | null = null
  private cancelResend: (() => void) | null = null
  private readonly res = new Resources()

  constructor (
    private readonly session: SessionContext,
    private readonly subscriptions: SubscriptionManager,
    private readonly timings: MicrophoneTimings
  ) {
    subscriptions.watch(this)
  }

  /** True while some app needs audio from the phone. */
  get wantsAudio (): boolean { return this.wanted.requiredData.includes('pcm') }

  /**
   * Every attach to an existing session (a resume, a takeover, a session moved here): the phone
   * may still be streaming from before. A new session with nothing to ask says nothing yet; audio
   * that nobody needs gets it told "off" then.
   */
  onAttach (ctx: AttachContext): void {
    const toldOn = this.told !== null && this.told.requiredData.length > 0
    if (!ctx.reconnection && !toldOn && this.wanted.requiredData.length === 0) return
    this.resendIn(AFTER_ATTACH_MS)
  }

  /** Carry on from the stand-in: what the phone was told, and a re-send it still owed. */
  continueFrom ({ toldOffAt, sent, resendAt }: MicrophoneHandOver): void {
    if (toldOffAt > 0) {
      this.told = MICROPHONE_OFF
      this.toldAt = toldOffAt
    }
    this.sent += sent
    if (resendAt > 0) this.resendIn(Math.max(0, resendAt - Date.now()))
  }

  /** One re-send pending at a time: attaches in quick succession get one. */
  private resendIn (ms: number): void {
    this.cancelResend?.()
    this.cancelResend = this.res.timeout(() => {
      this.cancelResend = null
      this.sendNow()
    }, ms)
  }

  /** The glasses became connected to the phone: it needs to hear the state again. */
  glassesConnection (connected: boolean): void {
    if (connected) this.sendSoon()
  }

  /** Audio arrived that no app needs: tell the phone to stop, as soon as the spacing allows. */
  unwantedAudio (): void {
    if (this.wantsAudio || this.cancelSend !== null) return
    // Told so within the spacing: the phone may not have stopped yet.
    if (this.told !== null && same(this.told, this.wanted) && Date.now() - this.toldAt < this.timings.micMinIntervalMs) return
    this.sendSoon()
  }

  snapshot (): unknown {
    return {
      wanted: this.wanted,
      told: this.told,
      toldAt: this.toldAt === 0 ? null : new Date(this.toldAt).toISOString(),
      sent: this.sent
    }
  }

  dispose (): void {
    this.res.dispose()
  }

  subscriptionsChanged (): void {
    this.cancelDebounce?.()
    this.cancelDebounce = this.res.timeout(() => {
      this.cancelDebounce = null
      this.settle(requiredBy(this.subscriptions.keys()))
    }, this.timings.micDebounceMs)
  }

  private settle (needed: MicrophoneState): void {
    const wasOn = this.wanted.requiredData.length > 0
    if (needed.requiredData.length === 0 && wasOn) {
      // Hold-down: only turn off if nobody needs it when the delay is over.
      if (this.cancelOff !== null) return
      this.cancelOff = this.res.timeout(() => {
        this.cancelOff = null
        const now = requiredBy(this.subscriptions.keys())
        if (now.requiredData.length > 0) {
          this.settle(now)
          return
        }
        this.wanted = MICROPHONE_OFF
        this.sendSoon()
      }, this.timings.micOffDelayMs)
      return
    }
    this.cancelOff?.()
    this.cancelOff = null
    if (same(needed, this.wanted)) return
    this.wanted = needed
    this.sendSoon()
  }

  /** Send the wanted state as soon as the spacing allows; a later call before then changes nothing but the value. */
  private sendSoon (): void {
    if (this.cancelSend !== null) return
    const wait = this.toldAt + this.timings.micMinIntervalMs - Date.now()
    if (wait <= 0) {
      this.sendNow()
      return
    }
    this.cancelSend = this.res.timeout(() => {
      this.cancelSend = null
      this.sendNow()
    }, wait)
  }

  private sendNow (): void {
    this.cancelSend?.()
    this.cancelSend = null
    const state = this.wanted
    const delivered = this.session.send(microphoneMessage(this.session.userId, state))
    if (!delivered) return
    this.told = state
    this.toldAt = Date.now()
    this.sent += 1
    this.cancelRefresh?.()
    this.cancelRefresh = null
    if (state.requiredData.length > 0) {
      this.cancelRefresh = this.res.timeout(() => {
        this.cancelRefresh = null
        this.sendSoon()
      }, this.timings.micRefreshMs)
    }
  }
}
