/**
 * The command line of `npm run bench:cluster-scale`: which designs, how many
 * idle sessions, how long to watch Redis. Parsed once into a typed object.
 */
import { parseArgs } from 'node:util'

export const USAGE = `usage: npm run bench:cluster-scale -- [options]
  --baseline-ref REF   the old design to compare with, built from git (default 266020a)
  --no-baseline        measure the current build only
  --sessions LIST      idle session counts, comma-separated (default 300,3000)
  --window-ms MS       how long Redis is watched while the sessions idle (default 10000)
  --lease-ms MS        LEASE_TTL_MS of both nodes; the settle time is twice this (default 3000)
  --page-requests N    sequential GET /sessions?limit=50 to node B, after one untimed (default 50)
  --concurrency N      glasses handshakes in flight (default 50)
  --json               print the results as JSON instead of tables`

export class UsageError extends Error {
  /** True when the user asked for the usage text: not an error. */
  constructor (message: string, readonly help = false) { super(message) }
}

export interface ScaleOptions {
  /** Null: the current build only. */
  baselineRef: string | null
  sessions: number[]
  windowMs: number
  leaseMs: number
  pageRequests: number
  concurrency: number
  json: boolean
}

function int (value: string | undefined, name: string, fallback: number, min: number): number {
  if (value === undefined) return fallback
  const parsed = Number(value)
  if (!Number.isInteger(parsed) || parsed < min) throw new UsageError(`--${name} must be an integer >= ${min}`)
  return parsed
}

export function parseOptions (argv: string[]): ScaleOptions {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      'baseline-ref': { type: 'string' },
      'no-baseline': { type: 'boolean' },
      sessions: { type: 'string' },
      'window-ms': { type: 'string' },
      'lease-ms': { type: 'string' },
      'page-requests': { type: 'string' },
      concurrency: { type: 'string' },
      json: { type: 'boolean' },
      help: { type: 'boolean' }
    }
  })
  if (values.help === true) throw new UsageError(USAGE, true)
  const sessions = (values.sessions ?? '300,3000').split(',').map(part => int(part.trim(), 'sessions', 0, 1))
  if (sessions.length === 0) throw new UsageError('--sessions needs at least one count')
  return {
    baselineRef: values['no-baseline'] === true ? null : values['baseline-ref'] ?? '266020a',
    // Ascending, so the ratios read "largest over smallest".
    sessions: [...new Set(sessions)].sort((a, b) => a - b),
    windowMs: int(values['window-ms'], 'window-ms', 10_000, 1000),
    leaseMs: int(values['lease-ms'], 'lease-ms', 3000, 300),
    pageRequests: int(values['page-requests'], 'page-requests', 50, 1),
    concurrency: int(values.concurrency, 'concurrency', 50, 1),
    json: values.json === true
  }
}
