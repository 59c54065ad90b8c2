/**
 * Messages the glasses send (PROTOCOL 1.4), as TypeBox schemas. Each schema is
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
  VAD: Type.Object({ type: Type.Literal('VAD'), status: Type.Boolean(), timestamp: Timestamp }),
  local_transcription: Type.Object({
    type: Type.Literal('local_transcription'),
    text: Type.String(),
    isFinal: Type.Boolean(),
    transcribeLanguage: Type.Optional(Type.String({ minLength: 2, maxLength: 35 })),
    startTime: Type.Optional(Type.Number()),
    endTime: Type.Optional(Type.Number()),
    timestamp: Timestamp
  }),
  // Relayed as sent (PROTOCOL 1.4): Tether reads nothing but the type.
  glasses_battery_update: bare('glasses_battery_update'),
  phone_battery_update: bare('phone_battery_update'),
  glasses_connection_state: bare('glasses_connection_state'),
  location_update: bare('location_update'),
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
  settings_update_request: bare('settings_update_request')
} satisfies Record<string, TSchema>

export type GlassesMessageType = keyof typeof GlassesMessageSchemas

/** The union of every glasses message, discriminated by `type`. */
export type GlassesMessage = {
  [K in GlassesMessageType]: Static<typeof GlassesMessageSchemas[K]>
}[GlassesMessageType]

/** Narrow a glasses message by its type. */
export type GlassesMessageOf<K extends GlassesMessageType> = Static<typeof GlassesMessageSchemas[K]>
