/** The admin API (docs/PROTOCOL.md 3): list, inspect and end sessions. Every route needs an admin token. */
import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import {
  HttpErrorSchema, SessionDetailSchema, SessionListQuerySchema, SessionListSchema, UserIdParam
} from '../protocol/admin.js'
import { ADMIN_SECURITY } from '../plugins/openapi.js'
import type { Config } from '../config.js'
import { decodeCursor, encodeCursor } from '../http/cursor.js'

const NodeSchema = Type.Object({
  nodeId: Type.String(), publicUrl: Type.String(), active: Type.Integer(), grace: Type.Integer(), at: Type.String()
})

const Params = Type.Object({ userId: UserIdParam })
/** Up to 30 days: a longer exclusion belongs in the identity provider, not in a session server. */
const DeleteQuery = Type.Object({ blockSeconds: Type.Optional(Type.Integer({ minimum: 1, maximum: 30 * 24 * 3600 })) })
const errors = { 400: HttpErrorSchema, 401: HttpErrorSchema, 403: HttpErrorSchema }

const sessionsRoutes: FastifyPluginAsyncTypebox<{ config: Config }> = async function (fastify, { config }) {
  fastify.addHook('onRequest', fastify.requireAdmin)

  fastify.get('/nodes', {
    schema: {
      tags: ['sessions'],
      summary: 'The nodes of the cluster and their session counts (this node alone without Redis)',
      security: ADMIN_SECURITY,
      response: { 200: Type.Object({ nodes: Type.Array(NodeSchema) }), ...errors }
    }
  }, async () => ({ nodes: await fastify.ownership.nodes() }))

  fastify.get('/sessions', {
    schema: {
      tags: ['sessions'],
      summary: 'List the live sessions of every node, paged in start order',
      security: ADMIN_SECURITY,
      querystring: SessionListQuerySchema,
      response: { 200: SessionListSchema, ...errors }
    }
  }, async (request) => {
    const { state, limit, cursor } = request.query
    const after = cursor === undefined ? null : decodeCursor(cursor)
    if (cursor !== undefined && after === null) throw fastify.httpErrors.badRequest('invalid cursor')
    const page = await fastify.ownership.page({ state, after, limit })
    return { sessions: page.sessions, nextCursor: page.next === null ? null : encodeCursor(page.next), counts: page.counts }
  })

  fastify.get('/sessions/:userId', {
    schema: {
      tags: ['sessions'],
      summary: 'One session: summary, manager snapshots, recent lifecycle events',
      security: ADMIN_SECURITY,
      params: Params,
      response: { 200: SessionDetailSchema, 404: HttpErrorSchema, ...errors }
    }
  }, async (request) => {
    // From whichever node holds it; a silent owner's last written summary stands in.
    const detail = await fastify.ownership.detail(request.params.userId.toLowerCase())
    if (detail === null) throw fastify.httpErrors.notFound('no such session')
    return detail
  })

  fastify.delete('/sessions/:userId', {
    schema: {
      tags: ['sessions'],
      summary: 'End a session (reason manual, glasses closed 4002); with blockSeconds, also refuse the user that long on every node',
      security: ADMIN_SECURITY,
      params: Params,
      querystring: DeleteQuery,
      response: { 204: Type.Null({ description: 'Disposed (and blocked)' }), 404: HttpErrorSchema, ...errors }
    }
  }, async (request, reply) => {
    const userId = request.params.userId.toLowerCase()
    const { blockSeconds } = request.query
    // Block first: the phone reconnects 5 s after the close, and must find the door shut.
    if (blockSeconds !== undefined) await fastify.apps.userStore.block(userId, Date.now() + blockSeconds * 1000)
    const ended = await fastify.ownership.end(userId)
    if (!ended && blockSeconds === undefined) throw fastify.httpErrors.notFound('no such session')
    return await reply.code(204).send(null)
  })
}

export default sessionsRoutes
