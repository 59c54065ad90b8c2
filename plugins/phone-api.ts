/**
 * `fastify.phoneApi`: runs the phone's session-scoped REST operations on the
 * user's session wherever it lives. On this node it waits for a socket of the
 * user that is being attached (a spurious "no session" costs the phone a full
 * reconnect); in a cluster it forwards to the node that owns the session, which
 * serves such requests for its own sessions. It also keeps the per-user answers
 * that need no session: the admin's block, settings.
 */
import fp from 'fastify-plugin'
import type { Config } from '../config.js'
import {
  isPhoneOperation, runPhoneOperation, type PhoneAnswer, type PhoneOperation, type PhoneOperationInput
} from '../managers/phone-operations.js'

declare module 'fastify' {
  interface FastifyInstance { phoneApi: PhoneApi }
}

/** What another node forwards: an operation for a user's session. */
interface Forwarded { userId: string, operation: PhoneOperation, input: unknown }

/** The cluster request name. */
const FORWARD = 'phone'

/** Extra time a forwarded call is given beyond its own reply budget (the hop over Redis). */
const FORWARD_MARGIN_MS = 1000

export interface PhoneApi {
  /** Run an operation on the user's session; null when the user has no live session anywhere. */
  run: <K extends PhoneOperation>(userId: string, operation: K, input: PhoneOperationInput[K]) => Promise<PhoneAnswer | null>
}

export default fp<{ config: Config }>(async function phoneApiPlugin (fastify, { config }) {
  const { sessions, ownership } = fastify
  const catalogue = fastify.appsCatalogue

  ownership.serve(FORWARD, async params => {
    const { userId, operation, input } = params as Forwarded
    if (!isPhoneOperation(operation)) throw new Error('unknown phone operation')
    // The owner too waits for a socket of the user that it is attaching right now.
    const session = await sessions.live(userId, config.clientAttachWaitMs)
    return session === undefined ? null : await runPhoneOperation(session, catalogue, operation, input as never)
  })

  const api: PhoneApi = {
    async run (userId, operation, input) {
      const session = await sessions.live(userId, config.clientAttachWaitMs)
      if (session !== undefined) return await runPhoneOperation(session, catalogue, operation, input)
      const budget = (operation === 'start_app' ? config.appStartReplyMs : 0) + config.clientAttachWaitMs + config.handoverTimeoutMs + FORWARD_MARGIN_MS
      try {
        return await ownership.forward<PhoneAnswer | null>(userId, FORWARD, { userId, operation, input } satisfies Forwarded, budget)
      } catch (error) {
        // Redis away, or the owner failed the request: no session this call can reach.
        fastify.log.warn({ err: error, userId, operation }, 'could not forward a phone call to the owner of its session')
        return null
      }
    }
  }
  fastify.decorate('phoneApi', api)
}, { name: 'tether-phone-api', dependencies: ['tether-registry', 'tether-ownership', 'tether-apps-catalogue'] })
