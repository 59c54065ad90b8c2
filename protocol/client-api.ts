/**
 * The phone's REST API (docs/PROTOCOL.md 4) as TypeBox schemas:
 * request bodies as real phones send them (extra fields allowed), and answers
 * in the shapes the phone reads.
 */
import { Type, type Static } from 'typebox'

const Loose = { additionalProperties: true }
const Timestamp = Type.String({ format: 'date-time' })

/** Errors the phone API answers with: `error` is the machine-readable code. */
export const ClientErrorSchema = Type.Object({
  success: Type.Optional(Type.Boolean()),
  error: Type.String(),
  message: Type.String()
})

/** The phone's error codes: 401 tokens, 403 a blocked user, 503 no session, 429 too many calls, 501 not configured. */
export type ClientErrorCode = 'NO_TOKEN' | 'INVALID_TOKEN' | 'USER_BLOCKED' | 'NO_ACTIVE_SESSION' | 'RATE_LIMITED' |
  'NOT_CONFIGURED' | 'BAD_REQUEST'

export const MinVersionSchema = Type.Object({
  success: Type.Boolean(),
  data: Type.Object({ required: Type.String(), recommended: Type.String() }),
  timestamp: Timestamp
})

export const SettingsBodySchema = Type.Object({ settings: Type.Record(Type.String(), Type.Unknown()) }, Loose)
export const SettingsAnswerSchema = Type.Object({
  success: Type.Boolean(),
  data: Type.Optional(Type.Object({ settings: Type.Object({}, Loose) }))
})

/** A partial device state: known keys typed loosely (phones send nulls), any other key kept. */
export const DeviceStateBodySchema = Type.Record(Type.String(), Type.Unknown(), { maxProperties: 64 })
export const DeviceStateAnswerSchema = Type.Object({
  success: Type.Boolean(),
  appliedState: Type.Object({
    isGlassesConnected: Type.Boolean(),
    isPhoneConnected: Type.Boolean(),
    modelName: Type.Union([Type.String(), Type.Null()])
  }),
  timestamp: Timestamp
})

export const AppListingSchema = Type.Object({
  packageName: Type.String(),
  name: Type.String(),
  webviewUrl: Type.String(),
  logoUrl: Type.String(),
  type: Type.String(),
  permissions: Type.Array(Type.Object({}, Loose)),
  running: Type.Boolean(),
  healthy: Type.Boolean(),
  hardwareRequirements: Type.Array(Type.Object({}, Loose))
})
export const AppListSchema = Type.Object({ success: Type.Boolean(), data: Type.Array(AppListingSchema), timestamp: Timestamp })

export const PackageParams = Type.Object({ packageName: Type.String({ minLength: 1, maxLength: 256 }) })
export const AppActionAnswerSchema = Type.Object({
  success: Type.Boolean(),
  data: Type.Object({ status: Type.String(), isRunning: Type.Boolean() }),
  timestamp: Timestamp
})
export const UnknownAppSchema = Type.Object({ success: Type.Literal(false), message: Type.String() })

export const AudioConfigureBodySchema = Type.Object({
  format: Type.String({ maxLength: 32 }),
  lc3Config: Type.Optional(Type.Object({
    sampleRate: Type.Optional(Type.Number()),
    frameDurationMs: Type.Optional(Type.Number()),
    frameSizeBytes: Type.Optional(Type.Number())
  }, Loose))
}, Loose)
export type AudioConfigureBody = Static<typeof AudioConfigureBodySchema>
export const AudioConfigureAnswerSchema = Type.Object({
  success: Type.Boolean(),
  format: Type.String(),
  lc3Config: Type.Union([Type.Object({ sampleRate: Type.Number(), frameDurationMs: Type.Number(), frameSizeBytes: Type.Number() }), Type.Null()]),
  timestamp: Timestamp
})

export const AnyObjectSchema = Type.Record(Type.String(), Type.Unknown())
export const CalendarBodySchema = Type.Object({ events: Type.Array(Type.Unknown(), { maxItems: 1000 }) }, Loose)

const Text = (maxLength: number) => Type.String({ maxLength })
export const NotificationBodySchema = Type.Object({
  notificationId: Type.Union([Type.String({ minLength: 1, maxLength: 256 }), Type.Number()]),
  app: Text(256),
  title: Text(1024),
  content: Text(16_384),
  priority: Type.Optional(Text(32)),
  timestamp: Type.Optional(Type.Union([Type.String({ maxLength: 64 }), Type.Number()])),
  packageName: Type.Optional(Text(256))
}, Loose)
export const DismissedBodySchema = Type.Object({
  notificationId: Type.Union([Type.String({ minLength: 1, maxLength: 256 }), Type.Number()]),
  notificationKey: Type.String({ maxLength: 1024 }),
  packageName: Type.String({ maxLength: 256 })
}, Loose)
export const PhotoResponseBodySchema = Type.Object({
  requestId: Type.String({ minLength: 1, maxLength: 256 }),
  success: Type.Optional(Type.Boolean())
}, Loose)

export const OkSchema = Type.Object({ success: Type.Boolean(), timestamp: Type.Optional(Timestamp) }, Loose)

export const ExchangeTokenBodySchema = Type.Object({ supabaseToken: Type.String({ minLength: 1, maxLength: 8192 }) })
export const ExchangeTokenAnswerSchema = Type.Object({ coreToken: Type.String() })
