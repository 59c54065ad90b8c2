/** Log serialisers: a token given in a query string never reaches the logs (docs/PROTOCOL.md 1.1). */
import type { FastifyRequest } from 'fastify'

/** The request URL with the value of every `token` query parameter replaced. */
export function redactUrl (url: string): string {
  return url.replace(/([?&]token=)[^&#]*/gi, '$1[redacted]')
}

export function redactedRequest (request: FastifyRequest): Record<string, unknown> {
  return {
    method: request.method,
    url: redactUrl(request.url),
    host: request.host,
    remoteAddress: request.ip,
    remotePort: request.socket?.remotePort
  }
}
