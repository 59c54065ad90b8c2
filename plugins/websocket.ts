/**
 * WebSockets (@fastify/websocket): frame limits, the error handler, the upgrade
 * gate (an upgrade off a WebSocket route is 404, a draining node's is 503), and
 * the drain at shutdown. Registered before the routes; the registry and the
 * upgrade guard it calls are read when an upgrade or the shutdown comes.
 */
import websocket from '@fastify/websocket'
import fp from 'fastify-plugin'
import type { Config } from '../config.js'
import { CloseCode, CloseReason } from '../protocol/close-codes.js'

export default fp<{ config: Config }>(async function websocketPlugin (fastify, { config }) {
  await fastify.register(websocket, {
    // ws also terminates a peer that floods pings (more than 60 automatic pongs unsent, its default).
    options: { maxPayload: config.maxMessageBytes },
    errorHandler (error, socket, request) {
      // Protocol errors (oversized frame, invalid UTF-8) already made ws send the right
      // close code (1009, 1007); terminating here would drop that close frame.
      const code = (error as NodeJS.ErrnoException).code
      if (typeof code === 'string' && code.startsWith('WS_ERR_')) {
        request.log.info({ code }, 'glasses frame refused by the WebSocket layer')
        return
      }
      request.log.warn({ err: error }, 'websocket error')
      socket.terminate()
    },
    // Shutdown (docs/ARCHITECTURE.md "Shutdown"): dispose every session with `shutdown` (each closes its
    // socket 1001), then close any socket that never reached a session.
    async preClose () {
      const left = await fastify.sessions.drain(config.shutdownTimeoutMs,
        { batchSize: config.drainBatchSize, intervalMs: config.drainBatchIntervalMs })
      if (left > 0) fastify.log.warn({ left }, 'shutdown budget ran out with sessions still disposing')
      for (const client of fastify.websocketServer.clients) client.close(CloseCode.GOING_AWAY, CloseReason[CloseCode.GOING_AWAY])
    }
  })

  // An upgrade aimed at a route that is not a WebSocket route is answered 404 before
  // anything upgrades (and before @fastify/websocket would log its raw URL).
  // A draining node refuses every upgrade at once, before any other check (docs/ARCHITECTURE.md "Shutdown").
  // A callback hook, not an async one: every request passes here, and the usual answer (go on) then
  // costs no promise and no microtask hop.
  fastify.addHook('onRequest', (request, reply, done) => {
    if (!request.ws) {
      done()
      return
    }
    if (request.routeOptions.config.websocketRoute !== true) {
      reply.code(404).header('connection', 'close').send({ statusCode: 404, error: 'Not Found', message: 'no WebSocket here' })
    } else if (fastify.sessions.isDraining) {
      fastify.upgradeGuard.refuse(request, reply, 503, 'SHUTTING_DOWN', 'node is draining: reconnect').catch(done)
    } else {
      done()
    }
  })
}, { name: 'tether-websocket' })

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Marks the routes that accept a WebSocket upgrade; every other route answers an upgrade 404. */
    websocketRoute?: boolean
  }
}
