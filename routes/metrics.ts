/** Prometheus scrape endpoint. */
import type { FastifyPluginAsync } from 'fastify'

const metricsRoutes: FastifyPluginAsync = async function (fastify) {
  fastify.get('/metrics', async (_request, reply) => {
    const { registry } = fastify.serviceMetrics
    return await reply.type(registry.contentType).send(await registry.metrics())
  })
}

export default metricsRoutes
