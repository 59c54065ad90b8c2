/** Prometheus scrape endpoint. */
import type { FastifyPluginAsync } from 'fastify'

const metricsRoutes: FastifyPluginAsync = async function (fastify) {
  fastify.get('/metrics', {
    schema: {
      tags: ['observability'],
      summary: 'Prometheus metrics',
      produces: ['text/plain'],
      response: { 200: { description: 'Prometheus text exposition format', type: 'string' } }
    }
  }, async (_request, reply) => {
    const { registry } = fastify.serviceMetrics
    return await reply.type(registry.contentType).send(await registry.metrics())
  })
}

export default metricsRoutes
