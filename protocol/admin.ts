/** Admin HTTP API shapes (docs/PROTOCOL.md 3), as TypeBox schemas used for validation, serialisation and types. */
import { Type, type Static } from 'typebox'

const IsoTime = Type.String({ format: 'date-time' })

/*
 * The summaries' nullable and one-of-four fields are written as `nullable` (OpenAPI 3.0's own keyword) and `enum`,
 * not as unions: fast-json-stringify writes those directly, where a union (anyOf) made it check every value
 * against each branch with Ajv, the date-time format included, and compile those checks on the first request.
 * A /sessions page serialises up to a thousand summaries.
 */
const NullableTime = Type.Unsafe<string | null>({ type: 'string', format: 'date-time', nullable: true })

const SESSION_STATES = ['active', 'grace', 'disposing', 'disposed'] as const

export const SessionStateSchema = Type.Unsafe<typeof SESSION_STATES[number]>({ type: 'string', enum: [...SESSION_STATES] })

/** userIds are lower-cased emails; the pattern keeps path parameters printable and short. */
export const UserIdParam = Type.String({ minLength: 1, maxLength: 254, pattern: '^[^\\s/\\\\<>"\'`]+$' })

export const SummarySchema = Type.Object({
  userId: Type.String(),
  sessionInstanceId: Type.String(),
  state: SessionStateSchema,
  nodeId: Type.String(),
  startedAt: IsoTime,
  connectedAt: NullableTime,
  disconnectedAt: NullableTime,
  graceExpiresAt: NullableTime,
  reconnections: Type.Integer(),
  connectedMs: Type.Integer(),
  activeApps: Type.Array(Type.String()),
  data: Type.Object({
    audioBytes: Type.Integer(),
    audioChunks: Type.Integer(),
    transcripts: Type.Integer(),
    messagesIn: Type.Integer(),
    messagesOut: Type.Integer()
  })
})
export type Summary = Static<typeof SummarySchema>

export const LifecycleEventSchema = Type.Object({
  event: Type.String(),
  at: IsoTime,
  connectionId: Type.Optional(Type.String()),
  reason: Type.Optional(Type.String()),
  closeCode: Type.Optional(Type.Integer())
}, { additionalProperties: true })

export const SessionDetailSchema = Type.Intersect([
  SummarySchema,
  Type.Object({
    managers: Type.Record(Type.String(), Type.Unknown()),
    events: Type.Array(LifecycleEventSchema)
  })
])

export const SessionCountsSchema = Type.Object({
  active: Type.Integer(), grace: Type.Integer(), total: Type.Integer()
})
export type SessionCounts = Static<typeof SessionCountsSchema>

export const SessionListQuerySchema = Type.Object({
  state: Type.Optional(Type.Union([Type.Literal('active'), Type.Literal('grace')])),
  limit: Type.Integer({ minimum: 1, maximum: 1000, default: 100 }),
  cursor: Type.Optional(Type.String({ maxLength: 512 }))
})

export const SessionListSchema = Type.Object({
  sessions: Type.Array(SummarySchema),
  nextCursor: Type.Unsafe<string | null>({ type: 'string', nullable: true }),
  counts: SessionCountsSchema
})

/** The `@fastify/sensible` / Fastify error body. */
export const HttpErrorSchema = Type.Object({
  statusCode: Type.Integer(),
  error: Type.String(),
  message: Type.String()
})
