/** The admin API (docs/PROTOCOL.md 3): list, inspect and end sessions. Every route needs an admin token. */
import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import {
  HttpErrorSchema, SessionDetailSchema, SessionListQuerySchema, SessionListSchema, UserIdParam
} from '../protocol/admin.js'
import { ADMIN_SECURITY } from '../plugins/openapi.js'
import { describe, summarize } from '../sessions/summary.js'
import type { Config } from '../config.js'
import type { Summary } from '../protocol/admin.js'
import type { Cluster } from '../sessions/cluster.js'
import {
  comparePositions, decodeClusterCursor, decodeCursor, encodeClusterCursor, encodeCursor, type ClusterPosition
} from './cursor.js'

const NodeSchema = Type.Object({
  nodeId: Type.String(), publicUrl: Type.String(), active: Type.Integer(), grace: Type.Integer(), at: Type.String()
})

const Params = Type.Object({ userId: UserIdParam })
/** Up to 30 days: a longer exclusion belongs in the identity provider, not in a session server. */
const DeleteQuery = Type.Object({ blockSeconds: Type.Optional(Type.Integer({ minimum: 1, maximum: 30 * 24 * 3600 })) })
const errors = { 400: HttpErrorSchema, 401: HttpErrorSchema, 403: HttpErrorSchema }

/** One page of the cluster's sessions, in (startedAt, sessionInstanceId) order. */
async function clusterPage (cluster: Cluster, state: 'active' | 'grace' | undefined, limit: number, cursor: string | undefined) {
  const after = cursor === undefined ? null : decodeClusterCursor(cursor)
  if (cursor !== undefined && after === null) throw Object.assign(new Error('invalid cursor'), { statusCode: 400 })
  const all = await cluster.summaries()
  const position = (s: Summary): ClusterPosition => ({ startedAt: Date.parse(s.startedAt), sessionInstanceId: s.sessionInstanceId })
  const ordered = all
    .filter(s => state === undefined ? s.state === 'active' || s.state === 'grace' : s.state === state)
    .sort((a, b) => comparePositions(position(a), position(b)))
  const rest = after === null ? ordered : ordered.filter(s => comparePositions(position(s), after) > 0)
  const page = rest.slice(0, limit)
  const last = page.at(-1)
  const active = all.filter(s => s.state === 'active').length
  const grace = all.filter(s => s.state === 'grace').length
  return {
    sessions: page,
    nextCursor: rest.length > limit && last !== undefined ? encodeClusterCursor(position(last)) : null,
    counts: { active, grace, total: active + grace }
  }
}

const sessionsRoutes: FastifyPluginAsyncTypebox<{ config: Config }> = async function (fastify, { config }) {
  fastify.addHook('onRequest', fastify.requireAdmin)

  fastify.get('/nodes', {
    schema: {
      tags: ['sessions'],
      summary: 'The nodes of the cluster and their session counts (this node alone without Redis)',
      security: ADMIN_SECURITY,
      response: { 200: Type.Object({ nodes: Type.Array(NodeSchema) }), ...errors }
    }
  }, async () => {
    if (fastify.cluster === null) {
      const { active, grace } = fastify.sessions.counts()
      return { nodes: [{ nodeId: config.nodeId, publicUrl: '', active, grace, at: new Date().toISOString() }] }
    }
    return { nodes: await fastify.cluster.directory.nodes() }
  })

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
    if (fastify.cluster !== null) return await clusterPage(fastify.cluster, state, limit, cursor)
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
    const userId = request.params.userId.toLowerCase()
    const session = fastify.sessions.get(userId)
    if (session !== undefined) return describe(session)
    // Cluster mode: the owner node answers; a silent owner's last written summary stands in.
    const remote = await fastify.cluster?.remoteDetail(userId)
    if (remote == null) throw fastify.httpErrors.notFound('no such session')
    return remote
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
    if (blockSeconds !== undefined) await fastify.apps.directory.block(userId, Date.now() + blockSeconds * 1000)
    const ended = await fastify.sessions.dispose(userId, 'manual') || (await fastify.cluster?.remoteEnd(userId) ?? false)
    if (!ended && blockSeconds === undefined) throw fastify.httpErrors.notFound('no such session')
    return await reply.code(204).send(null)
  })
}

export default sessionsRoutes
