/**
 * Messages apps send on /app-ws (docs/PROTOCOL.md 2), as TypeBox schemas. The message
 * names are those of the MentraOS app protocol, so the @mentra/sdk works unchanged.
 */
import { Type, type Static, type TSchema } from 'typebox'

const Timestamp = Type.Optional(Type.Union([Type.String({ maxLength: 64 }), Type.Number()]))
const Id = Type.String({ minLength: 1, maxLength: 512 })
const RequestId = Type.String({ minLength: 1, maxLength: 256 })

/** A subscription: a stream name, or `{stream, rate}` (matched on `stream`). */
export const SubscriptionItem = Type.Union([
  Type.String({ minLength: 1, maxLength: 256 }),
  Type.Object({ stream: Type.String({ minLength: 1, maxLength: 256 }), rate: Type.Optional(Type.String({ maxLength: 32 })) })
])
export type SubscriptionItem = Static<typeof SubscriptionItem>

/** Types the SDK may send that Tether accepts and does not act on (no error, so SDK apps run clean). */
const IGNORED_APP_TYPES = [
  'rtmp_stream_request', 'rtmp_stream_stop', 'managed_stream_request', 'managed_stream_stop',
  'stream_status_check', 'dashboard_content_update', 'dashboard_mode_change', 'dashboard_system_update',
  'app_broadcast_message', 'app_direct_message', 'app_user_discovery', 'app_room_join', 'app_room_leave',
  'ownership_release'
] as const

export const AppMessageSchemas = {
  tpa_connection_init: Type.Object({
    type: Type.Literal('tpa_connection_init'),
    sessionId: Id,
    packageName: Type.String({ minLength: 1, maxLength: 256 }),
    apiKey: Type.String({ maxLength: 1024 }),
    timestamp: Timestamp
  }),
  subscription_update: Type.Object({
    type: Type.Literal('subscription_update'),
    packageName: Type.Optional(Type.String({ maxLength: 256 })),
    sessionId: Type.Optional(Id),
    subscriptions: Type.Array(SubscriptionItem, { maxItems: 256 }),
    timestamp: Timestamp
  }),
  display_event: Type.Object({
    type: Type.Literal('display_event'),
    packageName: Type.Optional(Type.String({ maxLength: 256 })),
    view: Type.Optional(Type.String({ maxLength: 64 })),
    layout: Type.Object({}, { additionalProperties: true }),
    durationMs: Type.Optional(Type.Union([Type.Number({ minimum: 0 }), Type.Null()])),
    timestamp: Timestamp
  }),
  // Requests for the phone (managers/phone-relay-manager.ts): the ids their answers are matched by are required.
  audio_play_request: Type.Object({ type: Type.Literal('audio_play_request'), requestId: RequestId, audioUrl: Type.String({ minLength: 1, maxLength: 4096 }) }),
  audio_stop_request: Type.Object({ type: Type.Literal('audio_stop_request') }),
  rgb_led_control: Type.Object({ type: Type.Literal('rgb_led_control'), requestId: RequestId, action: Type.String({ maxLength: 16 }) }),
  location_poll_request: Type.Object({ type: Type.Literal('location_poll_request'), correlationId: RequestId }),
  photo_request: Type.Object({ type: Type.Literal('photo_request'), requestId: RequestId }),
  request_wifi_setup: Type.Object({ type: Type.Literal('request_wifi_setup') }),
  ...Object.fromEntries(IGNORED_APP_TYPES.map(type => [type, Type.Object({ type: Type.Literal(type) })]))
} satisfies Record<string, TSchema>

export type AppConnectionInit = Static<typeof AppMessageSchemas.tpa_connection_init>
export type SubscriptionUpdate = Static<typeof AppMessageSchemas.subscription_update>
export type AppDisplayEvent = Static<typeof AppMessageSchemas.display_event>
/** A request an app makes of the phone; its other fields are read by the phone relay as they come. */
export interface PhoneRequestMessage {
  type: 'audio_play_request' | 'audio_stop_request' | 'rgb_led_control' | 'location_poll_request' | 'photo_request' | 'request_wifi_setup'
  [key: string]: unknown
}
export type AppMessage = AppConnectionInit | SubscriptionUpdate | AppDisplayEvent | PhoneRequestMessage | { type: typeof IGNORED_APP_TYPES[number] }
