/**
 * What every WebSocket upgrade passes before it is authenticated or upgraded
 * (docs/PROTOCOL.md 1.1): the node is not draining, the client address is within
 * UPGRADE_RATE_LIMIT (counted before any token is verified), and a browser's
 * Origin is on ALLOWED_ORIGINS. Refusals are HTTP answers with the
 * `connection_error` body, counted in tether_upgrade_rejections_total.
 */
import rateLimit from '@fastify/rate-limit'
import type { FastifyReply, FastifyRequest, preHandlerAsyncHookHandler } from 'fastify'
import fp from 'fastify-plugin'
import type { Config } from '../config.js'
import type { ConnectionErrorCode } from '../protocol/error-codes.js'
import { WindowCounter } from './window-counter.js'

export interface UpgradeGuard {
  /** Answer an upgrade with `{type:"connection_error", code, message, timestamp}` and count it. */
  refuse: (request: FastifyRequest, reply: FastifyReply, status: number, code: ConnectionErrorCode, message: string) => Promise<void>
  /** Per client address, glasses and apps together (one store); call first, before any token is looked at. */
  addressLimit: preHandlerAsyncHookHandler
  /** Per-user connect limit (USER_CONNECTS_PER_MINUTE); call after the token named the user. */
  userLimit: (request: FastifyRequest, reply: FastifyReply) => Promise<void>
  /** Refuse a browser Origin that is not allowed; true when the request was answered. */
  refuseOrigin: (request: FastifyRequest, reply: FastifyReply) => Promise<boolean>
}

declare module 'fastify' {
  interface FastifyInstance { upgradeGuard: UpgradeGuard }
}

const USER_WINDOW_MS = 60_000

/** The 429 body, thrown by @fastify/rate-limit and sent as is. */
function rateLimited (message: string): Record<string, unknown> {
  return { statusCode: 429, type: 'connection_error', code: 'RATE_LIMITED', message, timestamp: new Date().toISOString() }
}

export default fp<{ config: Config }>(async function upgradeGuardPlugin (fastify, { config }) {
  await fastify.register(rateLimit, { global: false })

  const countLimited = (): void => { fastify.events.emit('upgrade.refused', 429, 'RATE_LIMITED') }
  const userConnects = new WindowCounter(USER_WINDOW_MS)
  const sweeper = setInterval(() => userConnects.sweep(), USER_WINDOW_MS).unref()
  fastify.addHook('onClose', async () => { clearInterval(sweeper) })

  const guard: UpgradeGuard = {
    async refuse (request, reply, status, code, message) {
      fastify.events.emit('upgrade.refused', status, code)
      request.log.info({ status, code }, 'upgrade refused')
      await reply.code(status).header('connection', 'close').send({
        type: 'connection_error', code, message, timestamp: new Date().toISOString()
      })
    },
    addressLimit: fastify.rateLimit({
      max: config.upgradeRateLimit,
      timeWindow: config.upgradeRateWindowMs,
      keyGenerator: request => request.ip,
      onExceeded: countLimited,
      errorResponseBuilder: (_request, context) => rateLimited(`too many connections from this address; retry in ${context.after}`)
    }),
    async userLimit (request, reply) {
      const userId = request.glassesIdentity?.userId
      if (userId === undefined) return
      const { count, resetsAt } = userConnects.hit(userId)
      if (count <= config.userConnectsPerMinute) return
      countLimited()
      const seconds = Math.ceil((resetsAt - Date.now()) / 1000)
      await reply.code(429).header('connection', 'close').header('retry-after', seconds)
        .send(rateLimited(`this user reconnects too often; retry in ${seconds} seconds`))
    },
    async refuseOrigin (request, reply) {
      const origin = request.headers.origin
      if (origin === undefined || config.allowedOrigins.size === 0) return false
      if (config.allowedOrigins.has(origin.replace(/\/+$/, '').toLowerCase())) return false
      await guard.refuse(request, reply, 403, 'ORIGIN_NOT_ALLOWED', 'this origin may not connect')
      return true
    }
  }
  fastify.decorate('upgradeGuard', guard)
}, { name: 'tether-upgrade-guard', dependencies: ['tether-events'] })
