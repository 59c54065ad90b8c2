/** `fastify.appsCatalogue`: the apps of APPS_FILE (or the catalogue given), read once at boot. */
import fp from 'fastify-plugin'
import type { Config } from '../config.js'
import { loadCatalogue, type AppsCatalogue } from '../protocol/apps-catalogue.js'

declare module 'fastify' {
  interface FastifyInstance { appsCatalogue: AppsCatalogue }
}

export default fp<{ config: Config, catalogue?: AppsCatalogue }>(async function appsCataloguePlugin (fastify, options) {
  fastify.decorate('appsCatalogue', options.catalogue ?? loadCatalogue(options.config.appsFile))
}, { name: 'tether-apps-catalogue' })
