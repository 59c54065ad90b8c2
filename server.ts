/**
 * The process: read config, build the app, listen, and shut down gracefully on
 * SIGINT/SIGTERM (close-with-grace). Everything testable lives in app.ts.
 */
import closeWithGrace from 'close-with-grace'
import type { Logger } from 'pino'
import { buildApp } from './app.js'
import { ConfigError, DEV_ADMIN_EMAIL, MIN_SECRET_BYTES, loadConfig, type Config } from './config.js'

import type { TetherApp } from './app.js'

/** Connections waiting to be accepted. */
const LISTEN_BACKLOG = 4096

async function main (): Promise<void> {
  let config: Config
  let app: TetherApp
  try {
    config = loadConfig(process.env)
    app = await buildApp(config)
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`tether: ${error.message}\n`)
      process.exit(2)
    }
    throw error
  }
  if (!config.devMode && Buffer.byteLength(config.jwtSecret) < MIN_SECRET_BYTES) {
    app.log.warn(`AUGMENTOS_AUTH_JWT_SECRET is shorter than ${MIN_SECRET_BYTES} bytes: use a longer random secret`)
  }

  closeWithGrace({
    // The sessions' own budget is SHUTDOWN_TIMEOUT_MS; the extra second lets the close frames flush.
    delay: config.shutdownTimeoutMs + 1000,
    logger: { error: (message: unknown) => app.log.error(message) }
  }, async ({ signal, err }) => {
    if (err !== undefined) app.log.error({ err }, 'fatal error: shutting down')
    else app.log.info({ signal }, 'shutting down: draining sessions')
    await app.close()
    // close-with-grace exits the process next: flush the last lifecycle lines first.
    // Fastify's logger type hides it, but the instance is the pino logger buildApp configured.
    const logger = app.log as unknown as Logger
    await new Promise<void>(resolve => { logger.flush(() => resolve()) })
  })

  // A node restart brings every phone back within the same second (they retry every 5 s, in step): node's
  // default accept queue of 511 overflowed at 10,000 (connection resets); the kernel caps it at somaxconn.
  await app.listen({ port: config.port, host: config.host, backlog: LISTEN_BACKLOG })
  if (config.devMode) announceDevMode(app, config)
}

/**
 * Zero-config dev mode: no secret was set, so one was generated for this process
 * and we print tokens to try it with. Never reached when a secret is configured.
 */
function announceDevMode (app: TetherApp, config: Config): void {
  const address = app.server.address()
  const port = typeof address === 'object' && address !== null ? address.port : config.port
  const base = `http://${config.host}:${port}`
  const glassesToken = app.jwt.sign({ email: 'glasses@tether.dev', sub: 'dev-glasses' }, { expiresIn: '12h' })
  const adminToken = app.jwt.sign({ email: DEV_ADMIN_EMAIL, sub: 'dev-admin' }, { expiresIn: '12h' })
  app.log.warn('DEV MODE: AUGMENTOS_AUTH_JWT_SECRET is not set; a random secret was generated for this process only. ' +
    'Set AUGMENTOS_AUTH_JWT_SECRET before serving real users.')
  process.stdout.write([
    '',
    '================ TETHER DEV MODE ================',
    'No AUGMENTOS_AUTH_JWT_SECRET: tokens below are signed with a secret that dies with this process.',
    `glasses token (${'glasses@tether.dev'}):`,
    `  ${glassesToken}`,
    `admin token (${DEV_ADMIN_EMAIL}):`,
    `  ${adminToken}`,
    'try:',
    `  npm run glasses -- --url ${base.replace(/^http/, 'ws')}/glasses-ws --token ${glassesToken}`,
    `  curl -H "Authorization: Bearer ${adminToken}" ${base}/sessions`,
    '=================================================',
    ''
  ].join('\n'))
}

await main()
