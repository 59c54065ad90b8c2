/**
 * The REST API the MentraOS phone calls beside its socket (docs/PROTOCOL.md 4):
 * the same token checks as `/glasses-ws`, a blocked user refused 403, and
 * every session-scoped call run on the user's session wherever it
 * lives (`fastify.phoneApi`). Phones POST `Content-Type: application/json` with
 * no body: here an empty JSON body is `{}`.
 */
import { createVerifier } from 'fast-jwt'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { Config } from '../config.js'
import { listApps, type PhoneAnswer, type PhoneOperation, type PhoneOperationInput } from '../managers/phone-operations.js'
import { bearerToken } from '../plugins/auth.js'
import { WindowCounter } from '../http/window-counter.js'
import {
  AnyObjectSchema, AppActionAnswerSchema, AppListSchema, AudioConfigureAnswerSchema, AudioConfigureBodySchema,
  CalendarBodySchema, ClientErrorSchema, DeviceStateAnswerSchema, DeviceStateBodySchema, DismissedBodySchema,
  ExchangeTokenAnswerSchema, ExchangeTokenBodySchema, MinVersionSchema, NotificationBodySchema, OkSchema, PackageParams,
  PhotoResponseBodySchema, SettingsAnswerSchema, SettingsBodySchema, UnknownAppSchema,
  type AudioConfigureBody, type ClientErrorCode
} from '../protocol/client-api.js'
import type { AudioFormat } from '../sessions/user-store.js'
import { MAX_SETTINGS_BYTES, blockOf } from '../sessions/user-store.js'
import { isoNow } from '../protocol/timestamp.js'

declare module 'fastify' {
  interface FastifyRequest {
    /** The phone's user, set by the client API's token check. */
    phoneUserId: string | null
  }
}

const errors = { 400: ClientErrorSchema, 401: ClientErrorSchema, 403: ClientErrorSchema, 503: ClientErrorSchema }
const tags = ['phone']

/** The frame sizes LC3 is configured with; anything else means 20 (docs/PROTOCOL.md). */
const FRAME_SIZES = [20, 40, 60] as const

/** The audio format a configure body asks for; null for a format other than lc3 or pcm. */
export function audioFormatOf (body: AudioConfigureBody): AudioFormat | null {
  if (body.format === 'pcm') return { format: 'pcm' }
  if (body.format !== 'lc3') return null
  const asked = body.lc3Config?.frameSizeBytes
  const size = FRAME_SIZES.find(s => s === asked) ?? 20
  return { format: 'lc3', frameSizeBytes: size }
}

export default (async function clientApiRoutes (fastify, { config }) {
  fastify.decorateRequest('phoneUserId', null)
  const userStore = fastify.apps.userStore
  const deviceStateCalls = new WindowCounter(1000)
  const sweeper = setInterval(() => deviceStateCalls.sweep(), 10_000).unref()
  fastify.addHook('onClose', async () => { clearInterval(sweeper) })

  // Phones send `Content-Type: application/json` on POSTs without a body.
  const json = fastify.getDefaultJsonParser('error', 'error')
  fastify.removeContentTypeParser('application/json')
  fastify.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    if (body === '' || (typeof body === 'string' && body.trim() === '')) {
      done(null, {})
      return
    }
    json(request, body as string, done)
  })

  async function fail (reply: FastifyReply, status: number, error: ClientErrorCode, message: string): Promise<FastifyReply> {
    return await reply.code(status).send({ error, message })
  }

  /** The token check of /glasses-ws, then the admin's block. */
  async function authenticate (request: FastifyRequest, reply: FastifyReply): Promise<void> {
    const token = bearerToken(request.headers.authorization)
    if (token === undefined) {
      await fail(reply, 401, 'NO_TOKEN', 'a bearer token is required')
      return
    }
    let userId: string
    try {
      userId = fastify.verifyGlassesToken(token).userId
    } catch {
      await fail(reply, 401, 'INVALID_TOKEN', 'the token is not valid')
      return
    }
    // Redis away: the block cannot be read, and the call goes on to the session this node may hold.
    const blockedUntil = await blockOf(userStore, userId)
    if (blockedUntil !== null) {
      reply.header('retry-after', Math.ceil((blockedUntil - Date.now()) / 1000))
      await fail(reply, 403, 'USER_BLOCKED', 'this user is blocked by an administrator for now')
      return
    }
    request.phoneUserId = userId
  }

  const userOf = (request: FastifyRequest): string => {
    if (request.phoneUserId === null) throw new Error('phone route without authentication')
    return request.phoneUserId
  }

  /** Run a session-scoped operation; 503 NO_ACTIVE_SESSION when the user has no live session. */
  async function onSession<K extends PhoneOperation> (request: FastifyRequest, reply: FastifyReply, operation: K,
    input: PhoneOperationInput[K]): Promise<FastifyReply> {
    const answer: PhoneAnswer | null = await fastify.phoneApi.run(userOf(request), operation, input)
    if (answer === null) return await fail(reply, 503, 'NO_ACTIVE_SESSION', 'no live session for this user: connect the socket first')
    return await send(reply, answer)
  }

  async function send (reply: FastifyReply, answer: PhoneAnswer): Promise<FastifyReply> {
    return await reply.code(answer.status).send(answer.body)
  }

  fastify.get('/api/client/min-version', {
    schema: { tags, summary: 'Phone app versions this server wants', response: { 200: MinVersionSchema } }
  }, async () => ({
    success: true,
    data: { required: config.minAppVersion, recommended: config.recommendedAppVersion },
    timestamp: isoNow()
  }))

  fastify.post('/auth/exchange-token', {
    schema: {
      tags,
      summary: 'Exchange a Supabase access token for a core token (only when SUPABASE_JWT_SECRET is set)',
      body: ExchangeTokenBodySchema,
      response: { 200: ExchangeTokenAnswerSchema, 401: ClientErrorSchema, 501: ClientErrorSchema }
    }
  }, async (request, reply) => {
    if (config.supabaseJwtSecret === null) {
      return await fail(reply, 501, 'NOT_CONFIGURED', 'token exchange is not configured on this server (SUPABASE_JWT_SECRET)')
    }
    let claims: { email?: unknown, sub?: unknown }
    try {
      claims = verifySupabase(request.body.supabaseToken) as typeof claims
    } catch {
      return await fail(reply, 401, 'INVALID_TOKEN', 'the Supabase token is not valid')
    }
    const email = typeof claims.email === 'string' ? claims.email.trim().toLowerCase() : ''
    if (email === '' || typeof claims.sub !== 'string' || claims.sub === '') {
      return await fail(reply, 401, 'INVALID_TOKEN', 'the Supabase token names no user')
    }
    // Core tokens carry no expiry: phones never refresh them.
    return { coreToken: fastify.jwt.sign({ sub: claims.sub, email }) }
  })
  const verifySupabase = createVerifier({
    key: config.supabaseJwtSecret ?? 'unused',
    algorithms: ['HS256'],
    clockTolerance: config.tokenClockToleranceMs
  })

  fastify.get('/api/client/user/settings', {
    onRequest: authenticate,
    schema: { tags, summary: 'The user\'s stored settings', response: { 200: SettingsAnswerSchema, ...errors } }
  }, async (request) => ({ success: true, data: { settings: await userStore.userSettings(userOf(request)) } }))

  fastify.post('/api/client/user/settings', {
    onRequest: authenticate,
    schema: { tags, summary: 'Merge settings into the user\'s', body: SettingsBodySchema, response: { 200: SettingsAnswerSchema, ...errors } }
  }, async (request, reply) => {
    if (JSON.stringify(request.body.settings).length > MAX_SETTINGS_BYTES) {
      return await fail(reply, 400, 'BAD_REQUEST', `settings are limited to ${MAX_SETTINGS_BYTES} bytes`)
    }
    await userStore.mergeUserSettings(userOf(request), request.body.settings)
    return { success: true }
  })

  fastify.post('/api/client/device/state', {
    onRequest: authenticate,
    schema: {
      tags,
      summary: 'The glasses\' state, full or changed keys',
      body: DeviceStateBodySchema,
      response: { 200: DeviceStateAnswerSchema, 429: ClientErrorSchema, ...errors }
    }
  }, async (request, reply) => {
    const userId = userOf(request)
    if (deviceStateCalls.hit(userId).count > config.deviceStatePerSecond) {
      reply.header('retry-after', 1)
      return await fail(reply, 429, 'RATE_LIMITED', `at most ${config.deviceStatePerSecond} device states a second`)
    }
    return await onSession(request, reply, 'device_state', { state: request.body })
  })

  fastify.get('/api/client/apps', {
    onRequest: authenticate,
    schema: { tags, summary: 'The apps available to the user, and which run', response: { 200: AppListSchema, ...errors } }
  }, async (request, reply) => {
    const answer = await fastify.phoneApi.run(userOf(request), 'apps', {})
    // Without a session nothing runs; the list itself needs none.
    return await send(reply, answer ?? { status: 200, body: { success: true, data: listApps(fastify.appsCatalogue, undefined), timestamp: isoNow() } })
  })

  const appAction = { tags, params: PackageParams, response: { 200: AppActionAnswerSchema, 404: UnknownAppSchema, ...errors } }
  fastify.post('/apps/:packageName/start', {
    onRequest: authenticate,
    schema: { ...appAction, summary: 'Start an app; answers once it is connected, or after APP_START_REPLY_MS' }
  }, async (request, reply) => {
    const { packageName } = request.params
    if (!fastify.appsCatalogue.has(packageName)) return await reply.code(404).send({ success: false, message: 'no such app' })
    return await onSession(request, reply, 'start_app', { packageName, replyWithinMs: config.appStartReplyMs })
  })
  fastify.post('/apps/:packageName/stop', { onRequest: authenticate, schema: { ...appAction, summary: 'Stop an app' } }, async (request, reply) => {
    const { packageName } = request.params
    if (!fastify.appsCatalogue.has(packageName)) return await reply.code(404).send({ success: false, message: 'no such app' })
    return await onSession(request, reply, 'stop_app', { packageName })
  })

  fastify.post('/api/client/audio/configure', {
    onRequest: authenticate,
    schema: { tags, summary: 'The audio format of the socket\'s binary frames', body: AudioConfigureBodySchema, response: { 200: AudioConfigureAnswerSchema, ...errors } }
  }, async (request, reply) => {
    const format = audioFormatOf(request.body)
    if (format === null) return await fail(reply, 400, 'BAD_REQUEST', 'format must be "lc3" or "pcm"')
    return await onSession(request, reply, 'audio_configure', { format })
  })

  fastify.post('/api/client/location', {
    onRequest: authenticate,
    schema: { tags, summary: 'A location fix from the phone', body: AnyObjectSchema, response: { 200: OkSchema, ...errors } }
  }, async (request, reply) => await onSession(request, reply, 'location', { body: request.body }))

  fastify.post('/api/client/calendar', {
    onRequest: authenticate,
    schema: { tags, summary: 'Calendar events from the phone', body: CalendarBodySchema, response: { 200: OkSchema, ...errors } }
  }, async (request, reply) => await onSession(request, reply, 'calendar', { events: request.body.events }))

  fastify.post('/api/client/notifications', {
    onRequest: authenticate,
    schema: { tags, summary: 'A phone notification', body: NotificationBodySchema, response: { 200: OkSchema, ...errors } }
  }, async (request, reply) => {
    const body = { ...request.body, priority: request.body.priority ?? 'normal' }
    return await onSession(request, reply, 'notification', { body })
  })

  fastify.post('/api/client/notifications/dismissed', {
    onRequest: authenticate,
    schema: { tags, summary: 'A phone notification was dismissed', body: DismissedBodySchema, response: { 200: OkSchema, ...errors } }
  }, async (request, reply) => await onSession(request, reply, 'notification_dismissed', { body: request.body }))

  fastify.post('/api/client/photo/response', {
    onRequest: authenticate,
    schema: { tags, summary: 'The outcome of a photo an app asked for', body: PhotoResponseBodySchema, response: { 200: OkSchema, ...errors } }
  }, async (request, reply) => await onSession(request, reply, 'photo_response', { body: request.body }))
} satisfies FastifyPluginAsyncTypebox<{ config: Config }>)
