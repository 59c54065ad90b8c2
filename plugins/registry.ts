/**
 * The node's session registry as `fastify.sessions`, with one structured log
 * line per lifecycle transition. Its sessions are composed by the one recipe
 * (`managers/session-recipe.ts`) from the node's heartbeat timer and app services.
 */
import fp from 'fastify-plugin'
import type { Config } from '../config.js'
import { sessionRecipe } from '../managers/session-recipe.js'
import { HeartbeatSweep } from '../sessions/heartbeat-sweep.js'
import type { ManagerFactory } from '../sessions/manager.js'
import { SessionRegistry } from '../sessions/session-registry.js'

declare module 'fastify' {
  interface FastifyInstance { sessions: SessionRegistry }
}

export interface RegistryPluginOptions {
  config: Config
  /** Managers every session gets after heartbeat and token expiry, before the app side (tests use this). */
  extraManagers?: readonly ManagerFactory[]
}

export default fp<RegistryPluginOptions>(async function registryPlugin (fastify, { config, extraManagers }) {
  const heartbeat = new HeartbeatSweep(config, fastify.log)
  const registry = new SessionRegistry({
    config,
    log: fastify.log,
    events: fastify.events,
    ownership: fastify.ownership,
    managerFactories: sessionRecipe({ heartbeat, apps: fastify.apps, extra: extraManagers })
  })
  fastify.addHook('onReady', async () => { await registry.start() })
  fastify.events.on('session.lifecycle', (event) => {
    const level = event.event === 'session.disposed' && (event.failures?.length ?? 0) > 0 ? 'warn' : 'info'
    fastify.log[level](event, event.event)
  })
  fastify.decorate('sessions', registry)
}, { name: 'tether-registry', dependencies: ['tether-events', 'tether-ownership', 'tether-apps'] })
