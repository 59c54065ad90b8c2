/**
 * Messages the glasses send (docs/PROTOCOL.md 1.4), as TypeBox schemas. Each schema is
 * compiled once; `parseGlassesFrame` in `protocol/parse-frame.ts` uses them.
 * Extra fields are allowed everywhere: the protocol says unknown fields are ignored.
 */
import { Type, type Static, type TSchema } from 'typebox'

const Timestamp = Type.Optional(Type.Union([Type.String({ maxLength: 64 }), Type.Number()]))

/** A message whose only required field is its `type`. */
function bare<T extends string> (type: T) {
  return Type.Object({ type: Type.Literal(type), timestamp: Timestamp })
}

const PackageName = Type.String({ minLength: 1, maxLength: 256 })
const Language = Type.String({ minLength: 2, maxLength: 35 })
const VadStatus = Type.Union([Type.Boolean(), Type.Literal('true'), Type.Literal('false')])

export const GlassesMessageSchemas = {
  connection_init: bare('connection_init'),
  ping: bare('ping'),
  pong: bare('pong'),
  start_app: Type.Object({ type: Type.Literal('start_app'), packageName: PackageName, timestamp: Timestamp }),
  stop_app: Type.Object({ type: Type.Literal('stop_app'), packageName: PackageName, timestamp: Timestamp }),
  button_press: Type.Object({
    type: Type.Literal('button_press'),
    buttonId: Type.String({ maxLength: 256 }),
    pressType: Type.Union([Type.Literal('short'), Type.Literal('long')]),
    timestamp: Timestamp
  }),
  head_position: Type.Object({
    type: Type.Literal('head_position'),
    position: Type.Union([Type.Literal('up'), Type.Literal('down')]),
    timestamp: Timestamp
  }),
  touch_event: Type.Object({
    type: Type.Literal('touch_event'),
    gesture_name: Type.String({ minLength: 1, maxLength: 128 }),
    timestamp: Timestamp
  }),
  // Phones send the status as a boolean or as the strings "true"/"false"; older ones spell the type `vad`.
  VAD: Type.Object({ type: Type.Literal('VAD'), status: VadStatus, timestamp: Timestamp }),
  vad: Type.Object({ type: Type.Literal('vad'), status: VadStatus, timestamp: Timestamp }),
  // iOS phones name the language `transcribeLanguage`, Android ones `language`.
  local_transcription: Type.Object({
    type: Type.Literal('local_transcription'),
    text: Type.String(),
    isFinal: Type.Boolean(),
    transcribeLanguage: Type.Optional(Language),
    language: Type.Optional(Language),
    startTime: Type.Optional(Type.Number()),
    endTime: Type.Optional(Type.Number()),
    timestamp: Timestamp
  }),
  // Answers to requests an app made through the phone (docs/PROTOCOL.md 2.8).
  audio_play_response: Type.Object({
    type: Type.Literal('audio_play_response'),
    requestId: Type.String({ minLength: 1, maxLength: 256 }),
    success: Type.Optional(Type.Boolean()),
    timestamp: Timestamp
  }),
  rgb_led_control_response: bare('rgb_led_control_response'),
  // Relayed as sent (docs/PROTOCOL.md 1.4): Tether reads nothing but the type.
  glasses_battery_update: bare('glasses_battery_update'),
  phone_battery_update: bare('phone_battery_update'),
  glasses_connection_state: bare('glasses_connection_state'),
  // Sent only in answer to request_single_location, with its correlationId.
  location_update: Type.Object({
    type: Type.Literal('location_update'),
    correlationId: Type.Optional(Type.String({ maxLength: 256 })),
    timestamp: Timestamp
  }),
  calendar_event: bare('calendar_event'),
  phone_notification: bare('phone_notification'),
  phone_notification_dismissed: bare('phone_notification_dismissed'),
  // MentraOS glasses types Tether does not act on: accepted so real clients run clean.
  core_status_update: bare('core_status_update'),
  photo_response: bare('photo_response'),
  photo_taken: bare('photo_taken'),
  rtmp_stream_status: bare('rtmp_stream_status'),
  keep_alive_ack: bare('keep_alive_ack'),
  vps_coordinates: bare('vps_coordinates'),
  dashboard_state: bare('dashboard_state'),
  open_dashboard: bare('open_dashboard'),
  request_settings: bare('request_settings'),
  settings_update_request: bare('settings_update_request'),
  // What current phones also send; relayed to subscribers of the type like any other.
  stream_status: bare('stream_status'),
  swipe_volume_status: bare('swipe_volume_status'),
  switch_status: bare('switch_status'),
  phone_subscription_update: bare('phone_subscription_update'),
  stream_request: bare('stream_request'),
  stream_stop: bare('stream_stop'),
  managed_stream_request: bare('managed_stream_request'),
  managed_stream_stop: bare('managed_stream_stop'),
  video_stream_response: bare('video_stream_response'),
  udp_register: bare('udp_register'),
  udp_unregister: bare('udp_unregister'),
  config: bare('config')
} satisfies Record<string, TSchema>

export type GlassesMessageType = keyof typeof GlassesMessageSchemas

/** The union of every glasses message, discriminated by `type`. */
export type GlassesMessage = {
  [K in GlassesMessageType]: Static<typeof GlassesMessageSchemas[K]>
}[GlassesMessageType]

/** A well-formed message of a type Tether has no schema for: relayed to subscribers of that exact type. */
export interface UnlistedGlassesMessage { type: string, [key: string]: unknown }

/** True for a type with a schema above (the metrics label set: bounded, whatever clients send). */
export function isListedGlassesType (type: string): type is GlassesMessageType {
  return Object.hasOwn(GlassesMessageSchemas, type)
}
