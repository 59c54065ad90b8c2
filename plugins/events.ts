/**
 * `fastify.events`: the node's one event emitter (sessions/node-events.ts). Registered
 * first, so every plugin that reports (sessions, apps, ownership, sockets) and every
 * plugin that listens (logs, metrics) reads the same one.
 */
import fp from 'fastify-plugin'
import { NodeEvents } from '../sessions/node-events.js'

declare module 'fastify' {
  interface FastifyInstance { events: NodeEvents }
}

export default fp(async function eventsPlugin (fastify) {
  fastify.decorate('events', new NodeEvents(fastify.log))
}, { name: 'tether-events' })
