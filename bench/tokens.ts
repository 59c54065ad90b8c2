/**
 * HS256 tokens for virtual glasses and the bench admin, signed the way a real
 * identity provider would (email + sub claims, one hour of validity).
 */
import { createSigner } from 'fast-jwt'

export type TokenSigner = (email: string, subject: string) => string

/** The identity of virtual glasses number `index`. */
export function simEmail (prefix: string, index: number): string {
  return `${prefix}-${index}@tether.sim`
}

export function createTokenSigner (secret: string, validForSeconds = 3600): TokenSigner {
  const sign = createSigner({ key: secret, algorithm: 'HS256', expiresIn: validForSeconds * 1000 })
  return (email, subject) => sign({ email, sub: subject })
}
