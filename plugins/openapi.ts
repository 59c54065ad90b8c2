/**
 * OpenAPI 3 generated from the routes' TypeBox schemas (@fastify/swagger), with
 * the browsable UI at /docs. Registered before the routes so it sees them all.
 */
import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import fp from 'fastify-plugin'

/** The security requirement admin routes declare in their schema. */
export const ADMIN_SECURITY = [{ adminBearer: [] }]

export default fp(async function openapiPlugin (fastify) {
  await fastify.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'Tether admin API',
        description: 'Sessions, health and metrics of a Tether node. Glasses and apps connect over WebSocket (see the README).',
        version: '0.1.0'
      },
      components: {
        securitySchemes: {
          adminBearer: {
            type: 'http',
            scheme: 'bearer',
            bearerFormat: 'JWT',
            description: 'HS256 token whose email claim is listed in ADMIN_EMAILS'
          }
        }
      }
    }
  })
  await fastify.register(swaggerUi, { routePrefix: '/docs' })
}, { name: 'tether-openapi' })
