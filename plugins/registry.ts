/**
 * The node's session registry as `fastify.sessions`, with one structured log
 * line per lifecycle transition.
 */
import fp from 'fastify-plugin'
import type { Config } from '../config.js'
import type { ManagerFactory } from '../sessions/manager.js'
import type { Ownership } from '../sessions/ownership.js'
import { SessionRegistry } from '../sessions/session-registry.js'

declare module 'fastify' {
  interface FastifyInstance { sessions: SessionRegistry }
}

export interface RegistryPluginOptions {
  config: Config
  ownership: Ownership
  /** Managers every session gets beyond heartbeat and metrics. */
  managerFactories: readonly ManagerFactory[]
}

export default fp<RegistryPluginOptions>(async function registryPlugin (fastify, { config, managerFactories, ownership }) {
  const registry = new SessionRegistry({ config, log: fastify.log, managerFactories, ownership })
  fastify.addHook('onReady', async () => { await registry.start() })
  registry.observe({
    event: (event) => {
      const level = event.event === 'session.disposed' && (event.failures?.length ?? 0) > 0 ? 'warn' : 'info'
      fastify.log[level](event, event.event)
    }
  })
  fastify.decorate('sessions', registry)
}, { name: 'tether-registry' })
