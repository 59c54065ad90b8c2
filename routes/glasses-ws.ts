/**
 * `GET /glasses-ws`: authenticate before the upgrade (docs/PROTOCOL.md 1.1), then hand
 * the socket to its user's session. Listeners are attached synchronously by
 * GlassesConnection; the session claim happens after, with early frames buffered.
 */
import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify'
import type { Socket } from 'node:net'
import type {} from '@fastify/websocket'
import type { Config } from '../config.js'
import { CloseCode } from '../protocol/close-codes.js'
import { bearerToken } from '../plugins/auth.js'
import { releaseUpgrade } from '../http/release-upgrade.js'
import { GlassesConnection, type GlassesIdentity } from '../sessions/glasses-connection.js'
import { RegistryDrainingError } from '../sessions/session-registry.js'
import { blockOf } from '../sessions/user-store.js'
import { DirectoryUnavailableError, SessionMovingError } from '../sessions/ownership.js'

declare module 'fastify' {
  interface FastifyRequest {
    glassesIdentity: GlassesIdentity | null
    /** Ends the registry's "upgrade in flight" mark of this user (REST calls wait while it stands). */
    endAttach: (() => void) | null
  }
}

/** The paths of the glasses socket: Tether's own, and the one the MentraOS cloud also serves. */
const GLASSES_PATHS = ['/glasses-ws', '/ws/client']

// Phones add `livekit` and `udpEncryption`; extra parameters are ignored.
const Query = Type.Object({ token: Type.Optional(Type.String()) }, { additionalProperties: true })

export default (async function glassesWsRoutes (fastify, { config }) {
  fastify.decorateRequest('glassesIdentity', null)
  fastify.decorateRequest('endAttach', null)

  const guard = fastify.upgradeGuard

  /**
   * docs/PROTOCOL.md 1.1: the address limit, the origin, the token (header, then query), then the per-user limit.
   * A callback hook, not an async one: on one node every check answers at once, and an upgrade that passes
   * them all then costs no promise and no turn of the loop. Only a refusal or a cluster's answer is awaited.
   */
  function authenticateUpgrade (request: FastifyRequest<{ Querystring: { token?: string } }>,
    reply: FastifyReply, done: HookHandlerDoneFunction): void {
    let pending: Promise<void> | null
    try {
      pending = checkUpgrade(request, reply)
    } catch (error) {
      done(asError(error))
      return
    }
    if (pending === null) done()
    else pending.then(() => { done() }, (error: unknown) => { done(asError(error)) })
  }

  /** The checks of one upgrade: null when they are done (passed or refused), else what to wait for. */
  function checkUpgrade (request: FastifyRequest<{ Querystring: { token?: string } }>, reply: FastifyReply): Promise<void> | null {
    // A plain GET (no upgrade) falls through to @fastify/websocket's 404.
    if (!request.ws) return null
    const refused = guard.addressLimit(request, reply) ?? guard.refuseOrigin(request, reply)
    if (refused !== null) return refused
    const token = bearerToken(request.headers.authorization) ?? request.query.token
    if (token === undefined || token === '') return guard.refuse(request, reply, 401, 'NO_TOKEN', 'a token is required')
    try {
      request.glassesIdentity = fastify.verifyGlassesToken(token)
    } catch {
      return guard.refuse(request, reply, 401, 'INVALID_TOKEN', 'the token is not valid')
    }
    const userId = request.glassesIdentity.userId
    const end = fastify.sessions.beginAttach(userId)
    request.endAttach = end
    let admitting: Promise<void> | null
    try {
      admitting = admit(request, reply, userId)
    } catch (error) {
      end()
      throw error
    }
    if (admitting === null) {
      admitted(request, reply, end)
      return null
    }
    return admitting.then(() => { admitted(request, reply, end) }, (error: unknown) => {
      end()
      throw error
    })
  }

  /** After the per-user checks: refused (no socket is coming), or hold the 101 for the ack. */
  function admitted (request: FastifyRequest, reply: FastifyReply, end: () => void): void {
    if (reply.sent) end()
    else request.endAttach = holdHandshakeForAck(request.raw.socket as Socket | undefined, end)
  }

  /**
   * The per-user checks: connect rate, an admin's block, a takeover cool-down, then (cluster) the claim.
   * Null when they answered at once and the upgrade may go on; else the refusal or the claim to wait for.
   */
  function admit (request: FastifyRequest, reply: FastifyReply, userId: string): Promise<void> | null {
    const limited = guard.userLimit(request, reply)
    if (limited !== null) return limited
    // Redis away: the block cannot be read; the claim below then fails closed anyway.
    const blockedUntil = blockOf(fastify.apps.userStore, userId)
    if (blockedUntil instanceof Promise) {
      return blockedUntil.then(until => admitUnblocked(request, reply, userId, until) ?? undefined)
    }
    return admitUnblocked(request, reply, userId, blockedUntil)
  }

  /** The per-user checks once the block is read: the block itself, the takeover cool-down, the claim. */
  function admitUnblocked (request: FastifyRequest, reply: FastifyReply, userId: string, blockedUntil: number | null): Promise<void> | null {
    if (blockedUntil !== null) {
      reply.header('retry-after', Math.ceil((blockedUntil - Date.now()) / 1000))
      return guard.refuse(request, reply, 403, 'USER_BLOCKED', 'this user is blocked by an administrator for now')
    }
    const admission = fastify.sessions.admission(userId)
    if (!admission.admitted) {
      fastify.events.emit('session.takeover_refused')
      reply.header('retry-after', Math.ceil(admission.retryAfterMs / 1000))
      return guard.refuse(request, reply, 409, 'SESSION_IN_USE',
        'another device of this user holds the session after repeated takeovers: retry later')
    }
    // Own the user before upgrading (in a cluster), so a session that cannot move yet is an HTTP answer.
    // One node has nothing to ask: no promise, no turn of the loop.
    const preparing = fastify.sessions.prepare(userId)
    if (preparing === undefined) return null
    return preparing.catch(async (error: unknown) => {
      if (error instanceof SessionMovingError) {
        await guard.refuse(request, reply, 503, 'SESSION_MOVING', 'your session is moving between nodes: retry shortly')
      } else if (error instanceof DirectoryUnavailableError) {
        await guard.refuse(request, reply, 503, 'DIRECTORY_UNAVAILABLE', 'the session directory is unreachable: retry shortly')
      } else {
        throw error
      }
    })
  }

  for (const path of GLASSES_PATHS) {
    fastify.get(path, {
      websocket: true,
      config: { websocketRoute: true },
      onRequest: authenticateUpgrade,
      schema: { querystring: Query }
    }, (socket, request) => {
      const identity = request.glassesIdentity
      const end = request.endAttach ?? noop
      if (identity === null) {
        socket.close(CloseCode.POLICY_VIOLATION, 'unauthenticated')
        return
      }
      // Nothing made here may close over `request`: a session outlives its upgrade by hours.
      releaseUpgrade(socket, request.raw)
      attach(new GlassesConnection(socket, identity, config, fastify.events), end)
    })
  }

  function attach (connection: GlassesConnection, end: () => void): void {
    // `end` only updates the registry's in-flight marks and uncorks the socket: it does not throw.
    fastify.sessions.connect(connection).then(end, (error: unknown) => {
      end()
      if (error instanceof RegistryDrainingError) {
        connection.close(CloseCode.GOING_AWAY)
        return
      }
      if (error instanceof SessionMovingError || error instanceof DirectoryUnavailableError) {
        connection.close(CloseCode.TRY_AGAIN_LATER)
        return
      }
      fastify.log.error({ err: error, userId: connection.identity.userId }, 'could not attach glasses socket')
      connection.close(CloseCode.INTERNAL_ERROR)
    })
  }
} satisfies FastifyPluginAsyncTypebox<{ config: Config }>)

function noop (): void {}

/** Fastify reads `done()` with a falsy argument as success: a failure that is not an Error must still refuse. */
function asError (error: unknown): Error {
  return error instanceof Error ? error : new Error(`upgrade check failed: ${String(error)}`)
}

/**
 * Corks the TCP socket so that ws's 101 response and the session's `connection_ack` leave in one
 * write: one syscall (and one wake-up of the peer) per connect instead of two. Uncorked when the
 * attach ends (the returned function, which also calls `end`), or at the latest on the next turn
 * of the event loop, so a slow attach (a cluster claim) never holds the 101 back.
 */
function holdHandshakeForAck (socket: Socket | undefined, end: () => void): () => void {
  // Absent under app.injectWS, whose request has no real socket.
  if (socket === undefined) return end
  socket.cork()
  let corked = true
  const uncork = (): void => {
    if (!corked) return
    corked = false
    socket.uncork()
  }
  setImmediate(uncork)
  return () => {
    end()
    uncork()
  }
}
