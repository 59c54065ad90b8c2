/**
 * What every WebSocket upgrade passes before it is authenticated or upgraded
 * (docs/PROTOCOL.md 1.1): the node is not draining, the client address has not
 * spent its budget of refused upgrades (UPGRADE_RATE_LIMIT per
 * UPGRADE_RATE_WINDOW_MS), and a browser's Origin is on ALLOWED_ORIGINS.
 * Refusals are HTTP answers with the `connection_error` body, counted in
 * tether_upgrade_rejections_total.
 *
 * The address budget counts refusals that say the client is not who it claims
 * (no or bad token, bad API key or init, a disallowed origin), never accepted
 * upgrades: every phone behind one balancer or carrier NAT address comes back
 * within the same second after a node restart (they retry every 5 s, in step), and
 * counting those would turn the restart into a loop of 429s (bench/RESULTS.md,
 * restart storm). A host that keeps failing is still cut off before its tokens
 * are verified.
 */
import type { FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import type { Config } from '../config.js'
import type { ConnectionErrorCode } from '../protocol/error-codes.js'
import { WindowCounter } from '../http/window-counter.js'
import { isoNow } from '../protocol/timestamp.js'

/**
 * A check's verdict: null lets the upgrade go on; otherwise the refusal being sent, to await.
 * The checks pass nearly every upgrade, which then costs no promise and no turn of the loop.
 */
export type Refusal = Promise<void> | null

export interface UpgradeGuard {
  /** Answer an upgrade with `{type:"connection_error", code, message, timestamp}` and count it. */
  refuse: (request: FastifyRequest, reply: FastifyReply, status: number, code: ConnectionErrorCode, message: string) => Promise<void>
  /** 429 when the client address spent its budget of refused upgrades. Call first. */
  addressLimit: (request: FastifyRequest, reply: FastifyReply) => Refusal
  /** Count a refusal against an address (an app's init refused after its upgrade). */
  countRefusal: (address: string) => void
  /** Per-user connect limit (USER_CONNECTS_PER_MINUTE); call after the token named the user. */
  userLimit: (request: FastifyRequest, reply: FastifyReply) => Refusal
  /** Refuse a browser Origin that is not allowed. */
  refuseOrigin: (request: FastifyRequest, reply: FastifyReply) => Refusal
}

declare module 'fastify' {
  interface FastifyInstance { upgradeGuard: UpgradeGuard }
}

const USER_WINDOW_MS = 60_000

/** Refusals that spend the address's budget: the client could not say who it is. */
const ADDRESS_COUNTED = new Set<ConnectionErrorCode>(['NO_TOKEN', 'INVALID_TOKEN', 'ORIGIN_NOT_ALLOWED'])

/** The 429 body. */
function rateLimited (message: string): Record<string, unknown> {
  return { statusCode: 429, type: 'connection_error', code: 'RATE_LIMITED', message, timestamp: isoNow() }
}

export default fp<{ config: Config }>(async function upgradeGuardPlugin (fastify, { config }) {
  const countLimited = (): void => { fastify.events.emit('upgrade.refused', 429, 'RATE_LIMITED') }
  const userConnects = new WindowCounter(USER_WINDOW_MS)
  const addressRefusals = new WindowCounter(config.upgradeRateWindowMs)
  const sweeper = setInterval(() => { userConnects.sweep(); addressRefusals.sweep() },
    Math.min(USER_WINDOW_MS, config.upgradeRateWindowMs)).unref()
  fastify.addHook('onClose', async () => { clearInterval(sweeper) })

  /** The 429 of either limit, with the seconds until its window lets the client in again. */
  const limited = async (reply: FastifyReply, resetsAt: number, why: string): Promise<void> => {
    countLimited()
    const seconds = Math.ceil((resetsAt - Date.now()) / 1000)
    await reply.code(429).header('connection', 'close').header('retry-after', seconds)
      .send(rateLimited(`${why}; retry in ${seconds} seconds`))
  }

  const guard: UpgradeGuard = {
    async refuse (request, reply, status, code, message) {
      fastify.events.emit('upgrade.refused', status, code)
      if (ADDRESS_COUNTED.has(code)) addressRefusals.hit(request.ip)
      request.log.info({ status, code }, 'upgrade refused')
      await reply.code(status).header('connection', 'close').send({
        type: 'connection_error', code, message, timestamp: isoNow()
      })
    },
    addressLimit (request, reply) {
      // No address has a refusal counted: nothing to look up. Reading `request.ip` asks the kernel
      // for the peer's address (getpeername), a few microseconds of every upgrade.
      if (addressRefusals.size === 0) return null
      const { count, resetsAt } = addressRefusals.peek(request.ip)
      if (count < config.upgradeRateLimit) return null
      return limited(reply, resetsAt, 'too many refused connections from this address')
    },
    countRefusal (address) { addressRefusals.hit(address) },
    userLimit (request, reply) {
      const userId = request.glassesIdentity?.userId
      if (userId === undefined) return null
      const { count, resetsAt } = userConnects.hit(userId)
      if (count <= config.userConnectsPerMinute) return null
      return limited(reply, resetsAt, 'this user reconnects too often')
    },
    refuseOrigin (request, reply) {
      const origin = request.headers.origin
      if (origin === undefined || config.allowedOrigins.size === 0) return null
      if (config.allowedOrigins.has(origin.replace(/\/+$/, '').toLowerCase())) return null
      return guard.refuse(request, reply, 403, 'ORIGIN_NOT_ALLOWED', 'this origin may not connect')
    }
  }
  fastify.decorate('upgradeGuard', guard)
}, { name: 'tether-upgrade-guard', dependencies: ['tether-events'] })
