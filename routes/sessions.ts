/** The admin API (PROTOCOL 3): list, inspect and end sessions. Every route needs an admin token. */
import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import {
  HttpErrorSchema, SessionDetailSchema, SessionListQuerySchema, SessionListSchema, UserIdParam
} from '../protocol/admin.js'
import { ADMIN_SECURITY } from '../plugins/openapi.js'
import { describe, summarize } from '../sessions/summary.js'
import { decodeCursor, encodeCursor } from './cursor.js'

const Params = Type.Object({ userId: UserIdParam })
const errors = { 400: HttpErrorSchema, 401: HttpErrorSchema, 403: HttpErrorSchema }

const sessionsRoutes: FastifyPluginAsyncTypebox = async function (fastify) {
  fastify.addHook('onRequest', fastify.requireAdmin)

  fastify.get('/sessions', {
    schema: {
      tags: ['sessions'],
      summary: 'List live sessions, paged in creation order',
      security: ADMIN_SECURITY,
      querystring: SessionListQuerySchema,
      response: { 200: SessionListSchema, ...errors }
    }
  }, async (request) => {
    const { state, limit, cursor } = request.query
    const after = cursor === undefined ? 0 : decodeCursor(cursor)
    if (after === null) throw fastify.httpErrors.badRequest('invalid cursor')
    const page = fastify.sessions.page({ state, after, limit })
    const now = Date.now()
    const last = page.sessions.at(-1)
    return {
      sessions: page.sessions.map(session => summarize(session, now)),
      nextCursor: page.more && last !== undefined ? encodeCursor(last.sequence) : null,
      counts: fastify.sessions.counts()
    }
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
    const session = fastify.sessions.get(request.params.userId.toLowerCase())
    if (session === undefined) throw fastify.httpErrors.notFound('no such session')
    return describe(session)
  })

  fastify.delete('/sessions/:userId', {
    schema: {
      tags: ['sessions'],
      summary: 'End a session (reason manual, glasses closed 4002)',
      security: ADMIN_SECURITY,
      params: Params,
      response: { 204: Type.Null({ description: 'Disposed' }), 404: HttpErrorSchema, ...errors }
    }
  }, async (request, reply) => {
    const ended = await fastify.sessions.dispose(request.params.userId.toLowerCase(), 'manual')
    if (!ended) throw fastify.httpErrors.notFound('no such session')
    return await reply.code(204).send(null)
  })
}

export default sessionsRoutes
