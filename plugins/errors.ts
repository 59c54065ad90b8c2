/**
 * What an error answer says: no client input in it. A route that does not exist
 * is not named, and an unexpected error's detail stays in the log; errors that
 * carry their own status (4xx, and Tether's retryable 503s) keep their message.
 */
import { STATUS_CODES } from 'node:http'
import fp from 'fastify-plugin'

export default fp(async function errorsPlugin (fastify) {
  fastify.setNotFoundHandler(async (_request, reply) => await reply.code(404).send({ statusCode: 404, error: 'Not Found', message: 'no such route' }))
  fastify.setErrorHandler(async (error: Error & { statusCode?: number }, request, reply) => {
    const statusCode = error.statusCode !== undefined && error.statusCode >= 400 ? error.statusCode : 500
    // A body a plugin prepared and threw (the rate limit's 429 `connection_error`) goes out as it is.
    if (!(error instanceof Error) && statusCode < 500) return await reply.code(statusCode).send(error)
    if (statusCode >= 500) request.log.error({ err: error }, 'request failed')
    return await reply.code(statusCode).send({
      statusCode,
      error: STATUS_CODES[statusCode] ?? 'Error',
      message: statusCode === 500 ? 'internal error' : error.message
    })
  })
}, { name: 'tether-errors' })
