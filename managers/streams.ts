/**
 * Stream names and how subscriptions match them (docs/PROTOCOL.md 2.3). A subscription
 * is kept as the app wrote it (that string is the `streamType` it receives); it
 * matches on a key: without any `?...` suffix, lower-cased, and with a bare
 * `transcription` meaning `transcription:en-us`.
 */
import type { SubscriptionItem } from '../protocol/app-messages.js'
import type { GlassesMessage, UnlistedGlassesMessage } from '../protocol/glasses-messages.js'

export const DEFAULT_LANGUAGE = 'en-US'
export const AUDIO_STREAM = 'audio_chunk'

/** The string an app subscribed with (objects are `{stream, rate}`). */
export function subscriptionString (item: SubscriptionItem): string {
  return typeof item === 'string' ? item : item.stream
}

/** The key a subscription string matches on. */
export function streamKey (subscription: string): string {
  const query = subscription.indexOf('?')
  const key = (query >= 0 ? subscription.slice(0, query) : subscription).trim().toLowerCase()
  return key === 'transcription' ? `transcription:${DEFAULT_LANGUAGE.toLowerCase()}` : key
}

/** The base stream of a key (`transcription:en-us` -> `transcription`), a bounded metrics label. */
export function baseStream (key: string): string {
  const colon = key.indexOf(':')
  return colon >= 0 ? key.slice(0, colon) : key
}

/** Glasses messages that are control, not data: never relayed to apps. */
const CONTROL_TYPES = new Set(['connection_init', 'ping', 'pong', 'start_app', 'stop_app'])

/** The keys a glasses message is delivered on; empty when it is not relayed. */
export function keysOf (message: GlassesMessage): string[] {
  if (CONTROL_TYPES.has(message.type)) return []
  switch (message.type) {
    case 'local_transcription':
      return [`transcription:${transcriptLanguage(message).toLowerCase()}`]
    case 'touch_event':
      return ['touch_event', `touch_event:${message.gesture_name.toLowerCase()}`]
    default:
      return [message.type.toLowerCase()]
  }
}

/** A transcript's language: `transcribeLanguage` (iOS), else `language` (Android), else en-US. */
export function transcriptLanguage (message: { transcribeLanguage?: string, language?: string }): string {
  return message.transcribeLanguage ?? message.language ?? DEFAULT_LANGUAGE
}

/** The keys an unlisted message is delivered on: its exact type. */
export function keysOfUnlisted (message: UnlistedGlassesMessage): string[] {
  return [message.type.toLowerCase()]
}

/** A glasses message as apps receive it: VAD's status as a boolean whatever the phone sent. */
export function forApps (message: GlassesMessage): GlassesMessage {
  if ((message.type === 'VAD' || message.type === 'vad') && typeof message.status === 'string') {
    return { ...message, status: message.status === 'true' }
  }
  return message
}
