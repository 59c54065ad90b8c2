/**
 * buildApp(config): registers third-party plugins, then Tether's shared plugins,
 * then routes (STYLE habit 2). No listen and no signals: `server.ts` owns those,
 * and tests build the very same app.
 */
import sensible from '@fastify/sensible'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import websocket from '@fastify/websocket'
import { STATUS_CODES } from 'node:http'
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyServerOptions } from 'fastify'
import type { DestinationStream } from 'pino'
import type { Config } from './config.js'
import appsCataloguePlugin from './plugins/apps-catalogue.js'
import appsPlugin from './plugins/apps.js'
import authPlugin from './plugins/auth.js'
import ownershipPlugin from './plugins/ownership.js'
import openapiPlugin from './plugins/openapi.js'
import metricsPlugin from './plugins/metrics.js'
import registryPlugin from './plugins/registry.js'
import upgradeGuardPlugin from './plugins/upgrade-guard.js'
import adminPageRoutes from './routes/admin-page.js'
import appWsRoutes from './routes/app-ws.js'
import glassesWsRoutes from './routes/glasses-ws.js'
import healthRoutes from './routes/health.js'
import metricsRoutes from './routes/metrics.js'
import sessionsRoutes from './routes/sessions.js'
import clientApiRoutes from './routes/client-api.js'
import phoneApiPlugin from './plugins/phone-api.js'
import { CloseCode, CloseReason } from './protocol/close-codes.js'
import type { ManagerFactory } from './sessions/manager.js'
import { redactedRequest } from './plugins/log-serializers.js'

export interface BuildOptions {
  /** Where logs go (default stdout); tests pass a stream to read them. */
  logStream?: DestinationStream
  /** Managers every session gets beyond the recipe's own (heartbeat, token expiry, the app side): tests use this. */
  managerFactories?: readonly ManagerFactory[]
}

export type TetherApp = FastifyInstance

export async function buildApp (config: Config, options: BuildOptions = {}): Promise<TetherApp> {
  const logger: FastifyServerOptions['logger'] = {
    level: config.logLevel,
    serializers: { req: redactedRequest },
    ...(options.logStream === undefined ? {} : { stream: options.logStream })
  }
  const app = Fastify({
    logger,
    // Tether answers draining itself (/ready 503, upgrades 503 SHUTTING_DOWN) with documented bodies.
    return503OnClosing: false,
    trustProxy: config.trustProxy,
    // Long enough for any userId (254) so the schema, not the router, answers a bad one with 400.
    routerOptions: { maxParamLength: 512 },
    ajv: { customOptions: { coerceTypes: 'array', removeAdditional: false } },
    // A malformed or over-long URL is answered without echoing it (it may be kilobytes of markup).
    frameworkErrors (error, _request, reply: FastifyReply) {
      const statusCode = error.statusCode ?? 400
      void reply.code(statusCode).send({ statusCode, error: STATUS_CODES[statusCode], message: 'malformed or too long URL' })
    }
  }).withTypeProvider<TypeBoxTypeProvider>()

  // No client input in an error: a route that does not exist is not named, and an unexpected error's detail
  // stays in the log. Errors that carry their own status (4xx, and Tether's retryable 503s) keep their message.
  app.setNotFoundHandler(async (_request, reply) => await reply.code(404).send({ statusCode: 404, error: 'Not Found', message: 'no such route' }))
  app.setErrorHandler(async (error: Error & { statusCode?: number }, request, reply) => {
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

  await app.register(sensible)
  await app.register(websocket, {
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
      const left = await app.sessions.drain(config.shutdownTimeoutMs,
        { batchSize: config.drainBatchSize, intervalMs: config.drainBatchIntervalMs })
      if (left > 0) app.log.warn({ left }, 'shutdown budget ran out with sessions still disposing')
      for (const client of app.websocketServer.clients) client.close(CloseCode.GOING_AWAY, CloseReason[CloseCode.GOING_AWAY])
    }
  })

  await app.register(openapiPlugin)
  // An upgrade aimed at a route that is not a WebSocket route is answered 404 before
  // anything upgrades (and before @fastify/websocket would log its raw URL).
  // A draining node refuses every upgrade at once, before any other check (docs/ARCHITECTURE.md "Shutdown").
  app.addHook('onRequest', async (request, reply) => {
    if (!request.ws) return
    if (request.routeOptions.config.websocketRoute !== true) {
      await reply.code(404).header('connection', 'close').send({ statusCode: 404, error: 'Not Found', message: 'no WebSocket here' })
    } else if (app.sessions.isDraining) {
      await app.upgradeGuard.refuse(request, reply, 503, 'SHUTTING_DOWN', 'node is draining: reconnect')
    }
  })

  await app.register(authPlugin, { config })
  await app.register(ownershipPlugin, { config })
  await app.register(appsCataloguePlugin, { config })
  await app.register(appsPlugin, { config })
  // Extra managers go before the app side: dispatch stops at the first manager that owns a message,
  // and the app relays own every relayable one.
  await app.register(registryPlugin, { config, extraManagers: options.managerFactories })
  await app.register(metricsPlugin)
  await app.register(phoneApiPlugin, { config })

  await app.register(upgradeGuardPlugin, { config })

  await app.register(healthRoutes)
  await app.register(metricsRoutes)
  await app.register(glassesWsRoutes, { config })
  await app.register(appWsRoutes, { config })
  await app.register(sessionsRoutes, { config })
  await app.register(clientApiRoutes, { config })
  await app.register(adminPageRoutes, { config })
  return app
}

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Marks the routes that accept a WebSocket upgrade; every other route answers an upgrade 404. */
    websocketRoute?: boolean
  }
}
