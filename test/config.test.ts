import t from 'tap'
import { ConfigError, DEV_ADMIN_EMAIL, loadConfig } from '../config.js'

t.test('defaults match the documented ones', async t => {
  const c = loadConfig({ AUGMENTOS_AUTH_JWT_SECRET: 's'.repeat(32) })
  t.match(c, {
    port: 8002,
    host: '127.0.0.1',
    devMode: false,
    gracePeriodMs: 60_000,
    pingIntervalMs: 25_000,
    silenceTimeoutMs: 75_000,
    maxMessageBytes: 1024 * 1024,
    maxBufferedBytes: 4 * 1024 * 1024,
    maxBadFrames: 20,
    shutdownTimeoutMs: 10_000,
    requireTokenExp: false,
    logLevel: 'info'
  })
  t.equal(c.adminEmails.size, 0)
})

t.test('values are converted and validated', async t => {
  const c = loadConfig({
    AUGMENTOS_AUTH_JWT_SECRET: 'x',
    PING_INTERVAL_MS: '1000',
    REQUIRE_TOKEN_EXP: 'true',
    ADMIN_EMAILS: ' A@x.io , b@y.io,',
    NODE_ID: 'n1'
  })
  t.equal(c.silenceTimeoutMs, 3000, 'silence defaults to 3x the ping interval')
  t.equal(c.requireTokenExp, true)
  t.same([...c.adminEmails], ['a@x.io', 'b@y.io'])
  t.equal(c.nodeId, 'n1')
  t.throws(() => loadConfig({ PORT: 'eighty' }), ConfigError)
  t.throws(() => loadConfig({ GRACE_PERIOD_MS: '0' }), /GRACE_PERIOD_MS/)
  t.throws(() => loadConfig({ LOG_LEVEL: 'loud' }), /LOG_LEVEL/)
  t.throws(() => loadConfig({ PING_INTERVAL_MS: '1000', SILENCE_TIMEOUT_MS: '1000' }), /SILENCE_TIMEOUT_MS/)
  t.equal(loadConfig({ PUBLIC_URL: 'https://tether.example.com/' }).publicUrl, 'https://tether.example.com')
  t.throws(() => loadConfig({ PUBLIC_URL: 'ftp://x' }), /PUBLIC_URL/)
})

t.test('no secret means dev mode with a generated secret and a dev admin', async t => {
  const a = loadConfig({})
  const b = loadConfig({})
  t.equal(a.devMode, true)
  t.not(a.jwtSecret, b.jwtSecret, 'generated per process start')
  t.throws(() => loadConfig({ AUGMENTOS_AUTH_JWT_SECRET: '' }), /set but empty/, 'an empty secret is refused, not dev mode')
  t.throws(() => loadConfig({ AUGMENTOS_AUTH_JWT_SECRET: '   ' }), /set but empty/)
  t.ok(a.jwtSecret.length >= 32)
  t.ok(a.adminEmails.has(DEV_ADMIN_EMAIL))
})
