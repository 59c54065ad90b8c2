/**
 * What apps ask of the phone, and what the phone reports beside the socket
 * (docs/PROTOCOL.md 1.4 and 2.8):
 * - app requests (play audio, LED, location tier and polls, photos, Wi-Fi
 *   setup) go to the phone in the phone's shapes; answers go back to the app
 *   that asked, matched by request id, and a request that expects an answer
 *   while no phone is connected is answered at once with a failure;
 * - location fixes, calendar events and notifications posted over REST reach
 *   the apps subscribed to them; the last fix and the soonest events are kept,
 *   and an app that subscribes later gets them at once.
 */
import type { AppEntry } from '../protocol/apps-catalogue.js'
import type { GlassesMessage } from '../protocol/glasses-messages.js'
import type { AttachContext, Manager, SessionContext } from '../sessions/manager.js'
import { LazyMap } from '../sessions/lazy-map.js'
import { streamKey } from './streams.js'
import type { AppOutlet, SubscriptionManager, SubscriptionWatcher } from './subscription-manager.js'
import { isoNow } from '../protocol/timestamp.js'

/** Location tiers, coarsest first; the session asks the phone for the finest any app wants. */
export const LOCATION_TIERS = [
  'reduced', 'threeKilometers', 'kilometer', 'hundredMeters', 'tenMeters', 'standard', 'high', 'realtime'
] as const
export type LocationTier = typeof LOCATION_TIERS[number]

/** How old a kept fix may be to answer a poll of each tier without asking the phone. */
const MAX_FIX_AGE_MS: Record<LocationTier, number> = {
  realtime: 1000,
  high: 10_000,
  standard: 30_000,
  tenMeters: 30_000,
  hundredMeters: 60_000,
  kilometer: 5 * 60_000,
  threeKilometers: 15 * 60_000,
  reduced: 15 * 60_000
}

const LOCATION_STREAMS = ['location_update', 'location_stream']
/** Calendar events kept per session (the soonest). */
const MAX_EVENTS = 100
/** Requests awaiting an answer per session; the oldest is forgotten past this. */
const MAX_PENDING = 256
const NOT_CONNECTED = 'glasses not connected'

export const isTier = (value: unknown): value is LocationTier =>
  typeof value === 'string' && (LOCATION_TIERS as readonly string[]).includes(value)

export interface LocationFix { lat: number, lng: number, accuracy: number | null, timestamp: string }

export interface CalendarEvent {
  type: 'calendar_event'
  eventId: string
  title: string
  dtStart: string
  dtEnd: string | null
  timezone: string | null
  timeStamp: string
  allDay: boolean
}

type Json = Record<string, unknown>

/** An app request message, as validated by protocol/app-messages.ts. */
export interface AppRequest { type: string, [key: string]: unknown }

export interface PhoneRelayOptions {
  /** The catalogue entry of an app (its public base URL for photo uploads). */
  appEntry: (packageName: string) => AppEntry | undefined
}

export class PhoneRelayManager implements Manager, SubscriptionWatcher {
  readonly name = 'phone'
  /** request id -> the app that asked (audio, LED, photo) or polled (location correlation id). */
  private readonly pending = new LazyMap<string, string>()
  private fix: (LocationFix & { at: number }) | null = null
  private events: CalendarEvent[] | null = null
  private tier: LocationTier = 'reduced'
  private toPhoneCount = 0
  private answeredCount = 0
  private failedAtOnceCount = 0
  private fromRestCount = 0

  constructor (
    private readonly session: SessionContext & { readonly phoneConnected: boolean },
    private readonly subscriptions: SubscriptionManager,
    private readonly options: PhoneRelayOptions
  ) {
    subscriptions.watch(this)
  }

  /** The app sockets, through the subscription table's outlet (wired after this manager is built). */
  private get outlet (): AppOutlet { return this.subscriptions.outlet }

  onAttach (ctx: AttachContext): void {
    // A phone that reconnects starts at its own default tier.
    if (ctx.reconnection && this.tier !== 'reduced') this.toPhone({ type: 'set_location_tier', tier: this.tier })
  }

  // ---- from apps ----

  /** An app's request for the phone; false when the type is not one of these. */
  fromApp (packageName: string, message: AppRequest): boolean {
    switch (message.type) {
      case 'audio_play_request': return this.audioPlay(packageName, message)
      case 'audio_stop_request':
        this.toPhone({ type: 'audio_stop_request', appId: packageName })
        return true
      case 'rgb_led_control': return this.led(packageName, message)
      case 'location_poll_request': return this.poll(packageName, message)
      case 'photo_request': return this.photo(packageName, message)
      case 'request_wifi_setup':
        this.toPhone({ type: 'show_wifi_setup', reason: message.reason ?? null, appPackageName: packageName })
        return true
      default: return false
    }
  }

  // ---- from the phone's socket ----

  handle (message: GlassesMessage): boolean {
    if (message.type === 'audio_play_response') {
      const packageName = this.answered(message.requestId)
      if (packageName === undefined) return true
      this.outlet.sendMessage(packageName, {
        type: 'audio_play_response',
        requestId: message.requestId,
        success: message.success === true,
        error: (message as Json).error ?? null,
        duration: (message as Json).duration ?? null
      })
      return true
    }
    if (message.type === 'location_update') {
      const fix = fixOf(message)
      if (fix !== null) this.fix = { ...fix, at: Date.now() }
      const correlationId = message.correlationId
      const packageName = correlationId === undefined ? undefined : this.answered(correlationId)
      if (packageName === undefined) return false
      // The answer to a poll goes to the polling app only, as its own location_update; one without
      // coordinates is the phone's failure, passed on as it came.
      const { type: _type, ...answer } = message as Json
      this.outlet.sendData(packageName, 'location_update', { type: 'location_update', ...(fix ?? answer), correlationId })
      return true
    }
    return false
  }

  // ---- from the phone's REST calls ----

  /** `POST /api/client/location`: keep the fix and relay it; false when it has no coordinates. */
  location (body: Json): boolean {
    const fix = fixOf(isObject(body.location) ? body.location : body)
    if (fix === null) return false
    this.fix = { ...fix, at: Date.now() }
    this.fromRestCount += 1
    this.subscriptions.relay(LOCATION_STREAMS, { type: 'location_update', ...fix }, 'location_update')
    return true
  }

  /** `POST /api/client/calendar`: each usable event relayed; the 100 soonest kept. */
  calendar (events: readonly unknown[]): number {
    const converted = events.flatMap(event => {
      const e = calendarEventOf(event)
      return e === null ? [] : [e]
    })
    const byId = new Map((this.events ?? []).map(e => [e.eventId, e]))
    for (const event of converted) byId.set(event.eventId, event)
    this.events = [...byId.values()].sort((a, b) => a.dtStart.localeCompare(b.dtStart)).slice(0, MAX_EVENTS)
    this.fromRestCount += 1
    for (const event of converted) this.subscriptions.relay(['calendar_event'], event)
    return converted.length
  }

  /** Notifications and their dismissals, relayed to their subscribers as given. */
  notification (type: 'phone_notification' | 'phone_notification_dismissed', data: Json): void {
    this.fromRestCount += 1
    this.subscriptions.relay([type], { type, ...data })
  }

  /** `POST /api/client/photo/response`: to the app that asked for that request id; unknown ids are ignored. */
  photoResponse (body: Json): boolean {
    const requestId = typeof body.requestId === 'string' ? body.requestId : undefined
    const packageName = requestId === undefined ? undefined : this.answered(requestId)
    if (packageName === undefined) return false
    this.outlet.sendMessage(packageName, { ...body, type: 'photo_response', requestId })
    return true
  }

  snapshot (): unknown {
    return {
      toPhone: this.toPhoneCount,
      answered: this.answeredCount,
      failedAtOnce: this.failedAtOnceCount,
      fromRest: this.fromRestCount,
      pending: this.pending.size,
      tier: this.tier,
      lastFix: this.fix === null ? null : { lat: this.fix.lat, lng: this.fix.lng, accuracy: this.fix.accuracy, at: new Date(this.fix.at).toISOString() },
      calendarEvents: this.events?.length ?? 0
    }
  }

  dispose (): void {
    this.pending.clear()
    this.fix = null
    this.events = null
  }

  // ---- requests ----

  private audioPlay (packageName: string, message: AppRequest): boolean {
    const requestId = String(message.requestId)
    if (!this.session.phoneConnected) {
      this.failAtOnce(packageName, { type: 'audio_play_response', requestId, success: false, error: NOT_CONNECTED, duration: null })
      return true
    }
    this.expect(requestId, packageName)
    this.toPhone({
      type: 'audio_play_request',
      requestId,
      packageName,
      audioUrl: message.audioUrl,
      volume: message.volume ?? 1,
      stopOtherAudio: message.stopOtherAudio ?? true
    })
    return true
  }

  private led (packageName: string, message: AppRequest): boolean {
    const requestId = String(message.requestId)
    if (!this.session.phoneConnected) {
      this.failAtOnce(packageName, { type: 'rgb_led_control_response', requestId, success: false, error: NOT_CONNECTED })
      return true
    }
    const { type: _type, sessionId: _sessionId, ...fields } = message
    this.toPhone({ ...fields, type: 'rgb_led_control', requestId, packageName })
    return true
  }

  private poll (packageName: string, message: AppRequest): boolean {
    const correlationId = String(message.correlationId)
    const accuracy = isTier(message.accuracy) ? message.accuracy : this.tierOf(packageName)
    const fix = this.fix
    if (fix !== null && Date.now() - fix.at <= MAX_FIX_AGE_MS[accuracy]) {
      const { at: _at, ...kept } = fix
      this.outlet.sendData(packageName, 'location_update', { type: 'location_update', ...kept, correlationId })
      return true
    }
    if (!this.session.phoneConnected) {
      this.failedAtOnceCount += 1
      this.outlet.sendData(packageName, 'location_update', { type: 'location_update', correlationId, error: NOT_CONNECTED })
      return true
    }
    this.expect(correlationId, packageName)
    this.toPhone({ type: 'request_single_location', accuracy, correlationId })
    return true
  }

  private photo (packageName: string, message: AppRequest): boolean {
    const requestId = String(message.requestId)
    if (!this.session.phoneConnected) {
      this.failAtOnce(packageName, {
        type: 'photo_response', requestId, success: false, errorCode: 'PHONE_NOT_CONNECTED', errorMessage: NOT_CONNECTED
      })
      return true
    }
    const base = this.options.appEntry(packageName)?.publicUrl
    const custom = typeof message.customWebhookUrl === 'string' && message.customWebhookUrl !== '' ? message.customWebhookUrl : null
    this.expect(requestId, packageName)
    this.toPhone({
      type: 'photo_request',
      requestId,
      appId: packageName,
      webhookUrl: custom ?? (base === undefined ? '' : `${base}/photo-upload`),
      authToken: message.authToken ?? null,
      size: message.size ?? 'medium',
      compress: message.compress ?? null
    })
    return true
  }

  private failAtOnce (packageName: string, answer: AppRequest): void {
    this.failedAtOnceCount += 1
    this.outlet.sendMessage(packageName, answer)
  }

  private toPhone (message: AppRequest): void {
    this.toPhoneCount += 1
    this.session.send({ ...message, sessionId: this.session.userId, timestamp: isoNow() })
  }

  private expect (requestId: string, packageName: string): void {
    if (this.pending.size >= MAX_PENDING) {
      const oldest = this.pending.keys().next()
      if (oldest.done !== true) this.pending.delete(oldest.value)
    }
    this.pending.set(requestId, packageName)
  }

  private answered (requestId: string): string | undefined {
    const packageName = this.pending.get(requestId)
    if (packageName !== undefined) {
      this.pending.delete(requestId)
      this.answeredCount += 1
    }
    return packageName
  }

  // ---- subscriptions ----

  private tierOf (packageName: string): LocationTier {
    const rate = this.subscriptions.rateOf(packageName, 'location_stream')
    return isTier(rate) ? rate : 'reduced'
  }

  subscriptionsChanged (packageName: string, added: readonly string[]): void {
    const finest = this.finestTier()
    if (finest !== this.tier) {
      this.tier = finest
      this.toPhone({ type: 'set_location_tier', tier: finest })
    }
    for (const streamType of added) {
      const key = streamKey(streamType)
      if (LOCATION_STREAMS.includes(key) && this.fix !== null) {
        const { at: _at, ...fix } = this.fix
        this.outlet.sendData(packageName, streamType, { type: 'location_update', ...fix })
      } else if (key === 'calendar_event') {
        for (const event of this.events ?? []) this.outlet.sendData(packageName, streamType, event)
      }
    }
  }

  private finestTier (): LocationTier {
    let finest = 0
    for (const { packageName } of this.subscriptions.subscribersOf('location_stream')) {
      finest = Math.max(finest, LOCATION_TIERS.indexOf(this.tierOf(packageName)))
    }
    return LOCATION_TIERS[finest] ?? 'reduced'
  }
}

function isObject (value: unknown): value is Json {
  return value !== null && typeof value === 'object' && !Array.isArray(value)
}

const finite = (value: unknown): number | null => typeof value === 'number' && Number.isFinite(value) ? value : null

/** A fix from the phone's shapes: `{coords:{latitude, longitude, accuracy}, timestamp}` or `{lat, lng, accuracy}`. */
export function fixOf (value: unknown): LocationFix | null {
  if (!isObject(value)) return null
  const coords = isObject(value.coords) ? value.coords : value
  const lat = finite(coords.latitude ?? coords.lat)
  const lng = finite(coords.longitude ?? coords.lng)
  if (lat === null || lng === null || Math.abs(lat) > 90 || Math.abs(lng) > 180) return null
  const time = typeof value.timestamp === 'number' || typeof value.timestamp === 'string' ? new Date(value.timestamp) : new Date()
  return {
    lat,
    lng,
    accuracy: finite(coords.accuracy),
    timestamp: Number.isNaN(time.getTime()) ? isoNow() : time.toISOString()
  }
}

const isoOf = (value: unknown): string | null => {
  if (typeof value !== 'string' && typeof value !== 'number') return null
  const time = new Date(value)
  return Number.isNaN(time.getTime()) ? null : time.toISOString()
}

/** A phone calendar event as apps receive it; null without an id, a title and a start. */
export function calendarEventOf (value: unknown): CalendarEvent | null {
  if (!isObject(value)) return null
  const eventId = typeof value.id === 'string' || typeof value.id === 'number' ? String(value.id) : ''
  const title = typeof value.title === 'string' ? value.title : ''
  const dtStart = isoOf(value.startDate)
  if (eventId === '' || title === '' || dtStart === null) return null
  return {
    type: 'calendar_event',
    eventId,
    title,
    dtStart,
    dtEnd: isoOf(value.endDate),
    timezone: typeof value.timeZone === 'string' ? value.timeZone : null,
    timeStamp: isoNow(),
    allDay: value.allDay === true
  }
}
