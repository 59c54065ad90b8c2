/**
 * `GET /glasses-ws`: authenticate before the upgrade (PROTOCOL 1.1), then hand
 * the socket to its user's session. Listeners are attached synchronously by
 * GlassesConnection; the session claim happens after, with early frames buffered.
 */
import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyReply, FastifyRequest } from 'fastify'
import type {} from '@fastify/websocket'
import type { Config } from '../config.js'
import { CloseCode } from '../protocol/close-codes.js'
import type { ConnectionErrorCode } from '../protocol/error-codes.js'
import { bearerToken } from '../plugins/auth.js'
import { GlassesConnection, type GlassesIdentity } from '../sessions/glasses-connection.js'
import { RegistryDrainingError } from '../sessions/session-registry.js'

declare module 'fastify' {
  interface FastifyRequest { glassesIdentity: GlassesIdentity | null }
}

const Query = Type.Object({ token: Type.Optional(Type.String()) })

export default (async function glassesWsRoutes (fastify, { config }) {
  fastify.decorateRequest('glassesIdentity', null)

  async function refuse (request: FastifyRequest, reply: FastifyReply, status: 401 | 503, code: ConnectionErrorCode,
    message: string): Promise<void> {
    fastify.serviceMetrics.upgradeRejections.inc({ status, code })
    request.log.info({ status, code }, 'glasses upgrade refused')
    await reply.code(status).header('connection', 'close').send({
      type: 'connection_error', code, message, timestamp: new Date().toISOString()
    })
  }

  async function authenticateUpgrade (request: FastifyRequest<{ Querystring: { token?: string } }>,
    reply: FastifyReply): Promise<void> {
    // A plain GET (no upgrade) falls through to @fastify/websocket's 404.
    if (!request.ws) return
    if (fastify.sessions.isDraining) {
      await refuse(request, reply, 503, 'SHUTTING_DOWN', 'node is draining: reconnect')
      return
    }
    const token = bearerToken(request.headers.authorization) ?? request.query.token
    if (token === undefined || token === '') {
      await refuse(request, reply, 401, 'NO_TOKEN', 'a token is required')
      return
    }
    try {
      request.glassesIdentity = fastify.verifyGlassesToken(token)
    } catch {
      await refuse(request, reply, 401, 'INVALID_TOKEN', 'the token is not valid')
    }
  }

  fastify.get('/glasses-ws', {
    websocket: true,
    config: { websocketRoute: true },
    onRequest: authenticateUpgrade,
    schema: { querystring: Query }
  }, (socket, request) => {
    const identity = request.glassesIdentity
    if (identity === null) {
      socket.close(CloseCode.POLICY_VIOLATION, 'unauthenticated')
      return
    }
    const metrics = fastify.serviceMetrics
    const connection = new GlassesConnection(socket, identity, config, {
      onCloseSent: code => metrics.closeCodesSent.inc({ code })
    })
    fastify.sessions.connect(connection).catch((error: unknown) => {
      if (error instanceof RegistryDrainingError) {
        connection.close(CloseCode.GOING_AWAY)
        return
      }
      request.log.error({ err: error }, 'could not attach glasses socket')
      connection.close(CloseCode.INTERNAL_ERROR)
    })
  })
} satisfies FastifyPluginAsyncTypebox<{ config: Config }>)
