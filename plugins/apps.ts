/**
 * The node's app services as `fastify.apps`: catalogue, user store, app session
 * index and the public URL apps connect back to.
 */
import fp from 'fastify-plugin'
import type { Config } from '../config.js'
import { AppsService } from '../managers/apps-service.js'
import { publicUrlOf } from '../http/public-url.js'
import { createLc3Decoding } from '../audio/lc3-decoding.js'

declare module 'fastify' {
  interface FastifyInstance { apps: AppsService }
}

export default fp<{ config: Config }>(async function appsPlugin (fastify, { config }) {
  // Without PUBLIC_URL, apps are sent to the address this server really listens on.
  const publicUrl = publicUrlOf(fastify, config)
  if (config.publicUrl === null && (config.host === '0.0.0.0' || config.host === '::')) {
    fastify.log.warn('PUBLIC_URL is not set while listening on all interfaces: apps are told to connect to 127.0.0.1')
  }
  const decoding = createLc3Decoding({
    thread: config.lc3DecodeThread,
    onError: error => { fastify.log.error({ err: error }, 'LC3 decoding failed') }
  })
  fastify.addHook('onClose', async () => { await decoding.close() })
  const service = new AppsService(fastify.appsCatalogue, fastify.ownership.userStore, config, fastify.log, publicUrl, decoding,
    fastify.events)
  fastify.decorate('apps', service)
}, { name: 'tether-apps', dependencies: ['tether-events', 'tether-apps-catalogue', 'tether-ownership'] })
