/** The base URL apps (and other nodes\' admins) are given for this node: PUBLIC_URL, else where it listens. */
import type { FastifyInstance } from 'fastify'
import type { Config } from '../config.js'

export function publicUrlOf (fastify: FastifyInstance, config: Config): () => string {
  return () => {
    if (config.publicUrl !== null) return config.publicUrl
    const address = fastify.server.address()
    const port = typeof address === 'object' && address !== null ? address.port : config.port
    // A wildcard address is no place to connect to; loopback is right for a single host.
    const host = config.host === '0.0.0.0' || config.host === '::' ? '127.0.0.1' : config.host
    return `http://${host}:${port}`
  }
}
