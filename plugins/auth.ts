/**
 * Token checks for glasses and admins (docs/PROTOCOL.md 1.1 and 3), on @fastify/jwt with
 * HS256 pinned. Glasses are checked before the upgrade so a bad token is an HTTP
 * answer; admins get 401 for a missing or bad token and 403 for a non-admin.
 */
import fastifyJwt from '@fastify/jwt'
import { createVerifier } from 'fast-jwt'
import type {} from '@fastify/sensible'
import type { FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import type { Config } from '../config.js'
import type { GlassesIdentity } from '../sessions/glasses-connection.js'

/** Claims Tether reads; anything else in a token is ignored. */
export interface TokenClaims {
  email?: unknown
  sub?: unknown
  exp?: number
  iat?: number
  nbf?: number
}

declare module '@fastify/jwt' {
  interface FastifyJWT { payload: TokenClaims, user: TokenClaims }
}

declare module 'fastify' {
  interface FastifyInstance {
    /** Verify a glasses token; throws `TokenRejectedError`. */
    verifyGlassesToken: (token: string) => GlassesIdentity
    /** onRequest hook for admin routes. */
    requireAdmin: (request: FastifyRequest, reply: FastifyReply) => Promise<void>
  }
}

export class TokenRejectedError extends Error {
  override readonly name = 'TokenRejectedError'
}

/** The bearer token of an Authorization header, or undefined. */
export function bearerToken (header: string | undefined): string | undefined {
  if (header === undefined) return undefined
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header)
  return match?.[1]
}

/** Longer tokens are refused unread: a real one is a few hundred bytes. */
export const MAX_TOKEN_LENGTH = 8192

/** The identity a token names: `email` trimmed and lower-cased is the userId; `sub` is required. */
function identityOf (claims: TokenClaims, clockToleranceMs: number): GlassesIdentity {
  // A token issued in the future was minted by a broken or hostile clock.
  if (typeof claims.iat === 'number' && claims.iat * 1000 > Date.now() + clockToleranceMs) {
    throw new TokenRejectedError('token issued in the future')
  }
  const email = typeof claims.email === 'string' ? claims.email.trim().toLowerCase() : ''
  if (email === '') throw new TokenRejectedError('token has no email claim')
  if (typeof claims.sub !== 'string' || claims.sub === '') throw new TokenRejectedError('token has no sub claim')
  return { userId: email, subject: claims.sub, expiresAt: typeof claims.exp === 'number' ? claims.exp * 1000 : null }
}

export default fp<{ config: Config }>(async function authPlugin (fastify, { config }) {
  const verifyOptions = {
    algorithms: ['HS256' as const],
    clockTolerance: config.tokenClockToleranceMs,
    requiredClaims: config.requireTokenExp ? ['exp'] : []
  }
  await fastify.register(fastifyJwt, { secret: config.jwtSecret, sign: { algorithm: 'HS256' }, verify: verifyOptions })
  // The verifier @fastify/jwt builds from these same options, called directly: its `verify` merges
  // options and checks arguments on every call, a few microseconds of every upgrade.
  const verify = createVerifier({ ...verifyOptions, key: config.jwtSecret }) as (token: string) => TokenClaims

  fastify.decorate('verifyGlassesToken', function verifyGlassesToken (token: string): GlassesIdentity {
    if (token.length > MAX_TOKEN_LENGTH) throw new TokenRejectedError('token too long')
    let claims: TokenClaims
    try {
      claims = verify(token)
    } catch (error) {
      throw new TokenRejectedError((error as Error).message)
    }
    return identityOf(claims, config.tokenClockToleranceMs)
  })

  fastify.decorate('requireAdmin', async function requireAdmin (request: FastifyRequest): Promise<void> {
    const token = bearerToken(request.headers.authorization)
    if (token === undefined) throw fastify.httpErrors.unauthorized('admin token required')
    let identity: GlassesIdentity
    try {
      if (token.length > MAX_TOKEN_LENGTH) throw new TokenRejectedError('token too long')
      identity = identityOf(verify(token), config.tokenClockToleranceMs)
    } catch {
      throw fastify.httpErrors.unauthorized('invalid admin token')
    }
    if (!config.adminEmails.has(identity.userId)) throw fastify.httpErrors.forbidden('not an admin')
  })
}, { name: 'tether-auth', dependencies: ['@fastify/sensible'] })
