/**
 * Every setting Tether reads, validated once at boot into a typed object.
 * Nothing else in the code base reads `process.env`.
 */
import { randomBytes } from 'node:crypto'
import { hostname } from 'node:os'
import { Type, type Static } from 'typebox'
import { Value } from 'typebox/value'

const Ms = (fallback: number, minimum = 1) => Type.Integer({ minimum, default: fallback })

/** The environment as Tether reads it: names, types and defaults in one place (README "Configuration"). */
export const EnvSchema = Type.Object({
  PORT: Type.Integer({ minimum: 0, maximum: 65535, default: 8002 }),
  HOST: Type.String({ minLength: 1, default: '127.0.0.1' }),
  AUGMENTOS_AUTH_JWT_SECRET: Type.Optional(Type.String()),
  REQUIRE_TOKEN_EXP: Type.Boolean({ default: false }),
  TOKEN_CLOCK_TOLERANCE_MS: Ms(5000, 0),
  ADMIN_EMAILS: Type.String({ default: '' }),
  GRACE_PERIOD_MS: Ms(60_000),
  PING_INTERVAL_MS: Ms(25_000),
  SILENCE_TIMEOUT_MS: Type.Optional(Type.Integer({ minimum: 1 })),
  MAX_MESSAGE_BYTES: Type.Integer({ minimum: 1024, default: 1024 * 1024 }),
  MAX_BUFFERED_BYTES: Type.Integer({ minimum: 1024, default: 4 * 1024 * 1024 }),
  MAX_BAD_FRAMES: Type.Integer({ minimum: 0, default: 20 }),
  MAX_JSON_DEPTH: Type.Integer({ minimum: 2, maximum: 1000, default: 32 }),
  UPGRADE_RATE_LIMIT: Type.Integer({ minimum: 1, default: 100 }),
  UPGRADE_RATE_WINDOW_MS: Ms(10_000),
  USER_CONNECTS_PER_MINUTE: Type.Integer({ minimum: 1, default: 30 }),
  ALLOWED_ORIGINS: Type.String({ default: '' }),
  TRUST_PROXY: Type.Boolean({ default: false }),
  DRAIN_BATCH_SIZE: Type.Integer({ minimum: 1, default: 1000 }),
  DRAIN_BATCH_INTERVAL_MS: Ms(25, 0),
  MANAGER_DISPOSE_TIMEOUT_MS: Ms(2000),
  SHUTDOWN_TIMEOUT_MS: Ms(10_000),
  ADMIN_FEED_INTERVAL_MS: Ms(1000, 50),
  APPS_FILE: Type.Optional(Type.String({ minLength: 1 })),
  PUBLIC_URL: Type.Optional(Type.String({ pattern: '^https?://[^\\s]+$' })),
  APP_START_TIMEOUT_MS: Ms(5000),
  APP_GRACE_PERIOD_MS: Ms(5000),
  APP_INIT_TIMEOUT_MS: Ms(5000),
  NODE_ID: Type.Optional(Type.String({ minLength: 1, maxLength: 128 })),
  /** One URL, or with REDIS_CLUSTER=true a comma-separated list of seed nodes of a Redis Cluster. */
  REDIS_URL: Type.Optional(Type.String({ pattern: '^rediss?://[^,\\s]+(,rediss?://[^,\\s]+)*$' })),
  REDIS_CLUSTER: Type.Boolean({ default: false }),
  LEASE_TTL_MS: Ms(15_000, 300),
  HANDOVER_TIMEOUT_MS: Ms(2000),
  COUNTERS_WRITE_MS: Ms(30_000, 100),
  MIN_APP_VERSION: Type.String({ pattern: '^\\d+\\.\\d+\\.\\d+', default: '2.0.0' }),
  RECOMMENDED_APP_VERSION: Type.String({ pattern: '^\\d+\\.\\d+\\.\\d+', default: '2.0.0' }),
  SUPABASE_JWT_SECRET: Type.Optional(Type.String({ minLength: 1 })),
  CLIENT_ATTACH_WAIT_MS: Ms(8000, 0),
  APP_START_REPLY_MS: Ms(6000, 0),
  MIC_DEBOUNCE_MS: Ms(100, 0),
  MIC_OFF_DELAY_MS: Ms(3000, 0),
  MIC_MIN_INTERVAL_MS: Ms(1000, 0),
  MIC_REFRESH_MS: Ms(10_000),
  DISPLAY_INTERVAL_MS: Ms(300, 0),
  TAKEOVER_LIMIT: Type.Integer({ minimum: 2, default: 3 }),
  TAKEOVER_WINDOW_MS: Ms(30_000),
  TAKEOVER_COOLDOWN_MS: Ms(300_000),
  DEVICE_STATE_PER_SECOND: Type.Integer({ minimum: 1, default: 10 }),
  LC3_DECODE_THREAD: Type.Union([Type.Literal('worker'), Type.Literal('main')], { default: 'worker' }),
  LOG_LEVEL: Type.Union([
    Type.Literal('fatal'), Type.Literal('error'), Type.Literal('warn'), Type.Literal('info'),
    Type.Literal('debug'), Type.Literal('trace'), Type.Literal('silent')
  ], { default: 'info' })
})
export type Env = Static<typeof EnvSchema>

export interface Config {
  port: number
  host: string
  /** HS256 secret for glasses and admin tokens. */
  jwtSecret: string
  /** True when no secret was configured and one was generated for this process only. */
  devMode: boolean
  requireTokenExp: boolean
  tokenClockToleranceMs: number
  /** Lower-cased admin identities. */
  adminEmails: ReadonlySet<string>
  gracePeriodMs: number
  pingIntervalMs: number
  silenceTimeoutMs: number
  maxMessageBytes: number
  maxBufferedBytes: number
  maxBadFrames: number
  /** Deepest nesting of objects and arrays accepted in a JSON frame. */
  maxJsonDepth: number
  /** Upgrades per client address per window (glasses and apps together), then 429. */
  upgradeRateLimit: number
  upgradeRateWindowMs: number
  /** Glasses connections per user per minute, then 429 for the rest of that minute. */
  userConnectsPerMinute: number
  /** Origins browsers may connect from; empty: any. Requests without an Origin (native clients) always pass. */
  allowedOrigins: ReadonlySet<string>
  /** Behind a load balancer: take the client address from X-Forwarded-For (rate limits, logs). */
  trustProxy: boolean
  /** Shutdown closes sessions this many at a time, */
  drainBatchSize: number
  /** with this pause between batches (shortened when the budget would not allow it). */
  drainBatchIntervalMs: number
  managerDisposeTimeoutMs: number
  shutdownTimeoutMs: number
  /** How often the admin page's live feed pushes a snapshot even when nothing changed. */
  adminFeedIntervalMs: number
  /** JSON apps catalogue; none means no app can be started. */
  appsFile: string | null
  /**
   * Base URL apps are told to connect back to (http(s); turned into ws(s) + /app-ws).
   * Null: derived from the address the server actually listens on.
   */
  publicUrl: string | null
  appStartTimeoutMs: number
  appGracePeriodMs: number
  /** Time an app socket has to send its `tpa_connection_init`. */
  appInitTimeoutMs: number
  nodeId: string
  /** Cluster mode when set: the session directory, leases and node-to-node requests live in this Redis. */
  redisUrl: string | null
  /** REDIS_URL lists seed nodes of a Redis Cluster (sharded), not one server. */
  redisCluster: boolean
  /** A node whose liveness was not renewed for this long is dead and its users claimable; renewed every third of it. */
  leaseTtlMs: number
  /** How long a node waits for the owner of a session to hand it over (or answer an admin request). */
  handoverTimeoutMs: number
  /**
   * Cluster mode: a session's counters (transcripts, audio) that moved are written this often; a crash loses
   * at most this much counting. State and apps are written when they change; sessions that only ping, never.
   */
  countersWriteMs: number
  /** Phone app versions GET /api/client/min-version answers with (semver). */
  minAppVersion: string
  recommendedAppVersion: string
  /** Verifies Supabase access tokens for POST /auth/exchange-token; null: that route answers 501. */
  supabaseJwtSecret: string | null
  /** How long a phone REST call waits for the user's socket being attached before 503 NO_ACTIVE_SESSION. */
  clientAttachWaitMs: number
  /** POST /apps/:pkg/start holds its reply until the app is acknowledged, at most this long. */
  appStartReplyMs: number
  /** microphone_state_change timing: debounce of app changes, hold-down before "off", minimum spacing, refresh while on. */
  micDebounceMs: number
  micOffDelayMs: number
  micMinIntervalMs: number
  micRefreshMs: number
  /** At most one display per view per this interval; the latest waiting layout wins. */
  displayIntervalMs: number
  /** This many takeovers of one user's live socket within the window start a cool-down in which the holder keeps it. */
  takeoverLimit: number
  takeoverWindowMs: number
  takeoverCooldownMs: number
  /** POST /api/client/device/state calls per user per second, then 429. */
  deviceStatePerSecond: number
  /** Where the phone's LC3 is decoded: one worker thread for the node, or the main thread. */
  lc3DecodeThread: 'worker' | 'main'
  logLevel: Env['LOG_LEVEL']
}

/** Secrets shorter than this are accepted with a warning: HS256 wants at least 256 bits of key. */
export const MIN_SECRET_BYTES = 32

/** The identity dev mode adds to the admins, so the printed admin token works. */
export const DEV_ADMIN_EMAIL = 'admin@tether.dev'

export class ConfigError extends Error {
  override readonly name = 'ConfigError'
}

/** Read and validate the environment; throws a ConfigError naming every bad variable. */
export function loadConfig (env: Record<string, string | undefined>): Config {
  // An empty value counts as unset, except the secret: set-but-empty is a mistake, never dev mode.
  if (env.AUGMENTOS_AUTH_JWT_SECRET !== undefined && env.AUGMENTOS_AUTH_JWT_SECRET.trim() === '') {
    throw new ConfigError('invalid configuration: AUGMENTOS_AUTH_JWT_SECRET is set but empty (unset it for dev mode)')
  }
  const known = Object.fromEntries(
    Object.keys(EnvSchema.properties)
      .filter(key => env[key] !== undefined && env[key] !== '')
      .map(key => [key, env[key]])
  )
  const converted = Value.Convert(EnvSchema, Value.Default(EnvSchema, known))
  if (!Value.Check(EnvSchema, converted)) {
    const problems = Value.Errors(EnvSchema, converted)
      .map(e => `${e.instancePath.slice(1) || 'environment'} ${e.message}`)
    throw new ConfigError(`invalid configuration: ${problems.join('; ')}`)
  }
  const parsed = converted as Env
  const devMode = parsed.AUGMENTOS_AUTH_JWT_SECRET === undefined
  const adminEmails = new Set(parsed.ADMIN_EMAILS.split(',').map(e => e.trim().toLowerCase()).filter(Boolean))
  if (devMode) adminEmails.add(DEV_ADMIN_EMAIL)
  const silenceTimeoutMs = parsed.SILENCE_TIMEOUT_MS ?? 3 * parsed.PING_INTERVAL_MS
  if (silenceTimeoutMs <= parsed.PING_INTERVAL_MS) {
    throw new ConfigError('invalid configuration: SILENCE_TIMEOUT_MS must be longer than PING_INTERVAL_MS')
  }
  return {
    port: parsed.PORT,
    host: parsed.HOST,
    jwtSecret: parsed.AUGMENTOS_AUTH_JWT_SECRET ?? randomBytes(32).toString('hex'),
    devMode,
    requireTokenExp: parsed.REQUIRE_TOKEN_EXP,
    tokenClockToleranceMs: parsed.TOKEN_CLOCK_TOLERANCE_MS,
    adminEmails,
    gracePeriodMs: parsed.GRACE_PERIOD_MS,
    pingIntervalMs: parsed.PING_INTERVAL_MS,
    silenceTimeoutMs,
    maxMessageBytes: parsed.MAX_MESSAGE_BYTES,
    maxBufferedBytes: parsed.MAX_BUFFERED_BYTES,
    maxBadFrames: parsed.MAX_BAD_FRAMES,
    maxJsonDepth: parsed.MAX_JSON_DEPTH,
    upgradeRateLimit: parsed.UPGRADE_RATE_LIMIT,
    upgradeRateWindowMs: parsed.UPGRADE_RATE_WINDOW_MS,
    userConnectsPerMinute: parsed.USER_CONNECTS_PER_MINUTE,
    allowedOrigins: new Set(parsed.ALLOWED_ORIGINS.split(',').map(o => o.trim().replace(/\/+$/, '').toLowerCase()).filter(Boolean)),
    trustProxy: parsed.TRUST_PROXY,
    drainBatchSize: parsed.DRAIN_BATCH_SIZE,
    drainBatchIntervalMs: parsed.DRAIN_BATCH_INTERVAL_MS,
    managerDisposeTimeoutMs: parsed.MANAGER_DISPOSE_TIMEOUT_MS,
    shutdownTimeoutMs: parsed.SHUTDOWN_TIMEOUT_MS,
    adminFeedIntervalMs: parsed.ADMIN_FEED_INTERVAL_MS,
    appsFile: parsed.APPS_FILE ?? null,
    publicUrl: parsed.PUBLIC_URL === undefined ? null : parsed.PUBLIC_URL.replace(/\/+$/, ''),
    appStartTimeoutMs: parsed.APP_START_TIMEOUT_MS,
    appGracePeriodMs: parsed.APP_GRACE_PERIOD_MS,
    appInitTimeoutMs: parsed.APP_INIT_TIMEOUT_MS,
    nodeId: parsed.NODE_ID ?? `${hostname()}-${process.pid}`,
    redisUrl: parsed.REDIS_URL ?? null,
    redisCluster: parsed.REDIS_CLUSTER,
    leaseTtlMs: parsed.LEASE_TTL_MS,
    handoverTimeoutMs: parsed.HANDOVER_TIMEOUT_MS,
    countersWriteMs: parsed.COUNTERS_WRITE_MS,
    minAppVersion: parsed.MIN_APP_VERSION,
    recommendedAppVersion: parsed.RECOMMENDED_APP_VERSION,
    supabaseJwtSecret: parsed.SUPABASE_JWT_SECRET ?? null,
    clientAttachWaitMs: parsed.CLIENT_ATTACH_WAIT_MS,
    appStartReplyMs: parsed.APP_START_REPLY_MS,
    micDebounceMs: parsed.MIC_DEBOUNCE_MS,
    micOffDelayMs: parsed.MIC_OFF_DELAY_MS,
    micMinIntervalMs: parsed.MIC_MIN_INTERVAL_MS,
    micRefreshMs: parsed.MIC_REFRESH_MS,
    displayIntervalMs: parsed.DISPLAY_INTERVAL_MS,
    takeoverLimit: parsed.TAKEOVER_LIMIT,
    takeoverWindowMs: parsed.TAKEOVER_WINDOW_MS,
    takeoverCooldownMs: parsed.TAKEOVER_COOLDOWN_MS,
    deviceStatePerSecond: parsed.DEVICE_STATE_PER_SECOND,
    lc3DecodeThread: parsed.LC3_DECODE_THREAD,
    logLevel: parsed.LOG_LEVEL
  }
}
