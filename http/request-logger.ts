/**
 * Fastify gives every request a pino child logger with its reqId bound. Making one costs several
 * microseconds (pino rebuilds its level methods for each child), and most requests, every glasses
 * upgrade among them, never write a line at the configured level: the child is made on the first
 * line that would be written, and lines then go out exactly as before.
 */
import type { FastifyBaseLogger } from 'fastify'
import type { Bindings, ChildLoggerOptions, Level, Logger } from 'pino'

type Line = [obj: unknown, msg?: string, ...args: unknown[]]

class LazyChildLogger {
  private made: FastifyBaseLogger | null = null

  constructor (private readonly parent: Logger, private readonly bindings: Bindings) {}

  get level (): string { return (this.made ?? this.parent).level }
  set level (level: string) { this.logger().level = level }

  fatal (...line: Line): void { this.write('fatal', line) }
  error (...line: Line): void { this.write('error', line) }
  warn (...line: Line): void { this.write('warn', line) }
  info (...line: Line): void { this.write('info', line) }
  debug (...line: Line): void { this.write('debug', line) }
  trace (...line: Line): void { this.write('trace', line) }
  silent (): void {}

  child (...args: Parameters<FastifyBaseLogger['child']>): FastifyBaseLogger { return this.logger().child(...args) }

  private logger (): FastifyBaseLogger {
    this.made ??= this.parent.child(this.bindings)
    return this.made
  }

  private write (level: Level, line: Line): void {
    if (this.made === null && !this.parent.isLevelEnabled(level)) return
    const logger = this.logger()
    Reflect.apply(logger[level], logger, line)
  }
}

/** Fastify's `childLoggerFactory`: a lazy child, unless the route sets its own level or serialisers. */
export function lazyChildLogger (logger: FastifyBaseLogger, bindings: Bindings, options: ChildLoggerOptions): FastifyBaseLogger {
  const pino = logger as Partial<Logger>
  if (options.level !== undefined || options.serializers !== undefined || typeof pino.isLevelEnabled !== 'function') {
    return logger.child(bindings, options)
  }
  return new LazyChildLogger(pino as Logger, bindings) as unknown as FastifyBaseLogger
}
