/**
 * The slice of a pino logger the plain-TypeScript layers use, so `sessions/` and
 * `managers/` need no Fastify import. Fastify's and pino's loggers both fit it.
 */
export interface Log {
  error: (obj: object, msg?: string) => void
  warn: (obj: object, msg?: string) => void
  info: (obj: object, msg?: string) => void
  debug: (obj: object, msg?: string) => void
  child: (bindings: Record<string, unknown>) => Log
}

/** A logger that drops everything: for unit tests of sessions without a server. */
export const silentLog: Log = {
  error () {}, warn () {}, info () {}, debug () {}, child () { return silentLog }
}
