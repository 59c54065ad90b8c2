/**
 * buildApp(config): registers third-party plugins, then Tether's shared plugins,
 * then routes (STYLE habit 2). No listen and no signals: `server.ts` owns those,
 * and tests build the very same app.
 */
import sensible from '@fastify/sensible'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import { STATUS_CODES } from 'node:http'
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyServerOptions } from 'fastify'
import type { DestinationStream } from 'pino'
import type { Config } from './config.js'
import appsCataloguePlugin from './plugins/apps-catalogue.js'
import appsPlugin from './plugins/apps.js'
import authPlugin from './plugins/auth.js'
import errorsPlugin from './plugins/errors.js'
import eventsPlugin from './plugins/events.js'
import websocketPlugin from './plugins/websocket.js'
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
import type { ManagerFactory } from './sessions/manager.js'
import { redactedRequest } from './http/log-serializers.js'
import { lazyChildLogger } from './http/request-logger.js'

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
    childLoggerFactory: lazyChildLogger,
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

  await app.register(errorsPlugin)
  await app.register(sensible)
  await app.register(websocketPlugin, { config })
  await app.register(openapiPlugin)
  await app.register(eventsPlugin)
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
