/** Liveness and readiness for load balancers and orchestrators (docs/PROTOCOL.md 3). */
import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'

const Status = Type.Object({ status: Type.String(), reason: Type.Optional(Type.String()) })

const healthRoutes: FastifyPluginAsyncTypebox = async function (fastify) {
  fastify.get('/health', {
    schema: { tags: ['health'], summary: 'The process runs', response: { 200: Status } }
  }, async () => ({ status: 'ok' }))

  fastify.get('/ready', {
    schema: { tags: ['health'], summary: 'The node accepts sessions', response: { 200: Status, 503: Status } }
  }, async (_request, reply) => {
    if (fastify.sessions.isDraining) return await reply.code(503).send({ status: 'draining', reason: 'shutdown' })
    if (!fastify.ownership.healthy) {
      return await reply.code(503).send({ status: 'draining', reason: 'redis_unreachable' })
    }
    return { status: 'ready' }
  })
}

export default healthRoutes
