/**
 * The raw baseline: Tether's glasses work on `node:http` and `ws` alone, no
 * framework, so the benchmark's Tether/baseline ratios say what the framework,
 * the managers and the bookkeeping cost. It does the same work where a client
 * can tell: HS256 auth before the upgrade (401 otherwise), the same ack,
 * heartbeat, grace and resume, a 1008 close once the token's `exp` passes
 * (checked by the heartbeat sweep), an admin `/sessions` page with the same
 * Summary, `/metrics` with the two memory series Tether exports and the same
 * event-loop delay series (prom-client's, computed the same way), an audio relay
 * to one subscriber on `/app-ws`, and a drain on SIGTERM (1001, exit 0).
 *
 * For the phone fleet (bench/fleet-ladder.ts) it also does the phone's work, as
 * plainly as it can: JSON ping -> pong, the REST calls a phone makes at connect
 * (`POST /api/client/device/state`, `GET /api/client/apps`,
 * `POST /api/client/audio/configure`) with the same bearer check and JSON
 * parse, `button_press` relayed to the app, the app's displays relayed to the
 * phone, and audio relayed to the app as it came (no LC3 decode).
 *
 * With BASELINE_ROUTER=fastify the same server takes its WebSocket upgrades
 * through Fastify and @fastify/websocket instead (routes with a querystring
 * schema, the checks in a callback onRequest hook, the upgrade's request let go
 * of, as Tether's glasses route has them); everything else stays raw. The benchmark runs both to price Fastify's
 * share of the upgrade path (bench/routing-price.ts).
 *
 * Environment (read once, the names Tether uses): PORT, HOST,
 * AUGMENTOS_AUTH_JWT_SECRET, ADMIN_EMAILS, GRACE_PERIOD_MS, PING_INTERVAL_MS,
 * SILENCE_TIMEOUT_MS, MAX_MESSAGE_BYTES, MAX_BUFFERED_BYTES, TOKEN_CLOCK_TOLERANCE_MS,
 * SHUTDOWN_TIMEOUT_MS, NODE_ID; and BASELINE_ROUTER (`raw`, the default, or `fastify`).
 */
import { STATUS_CODES, createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import type { Duplex } from 'node:stream'
import websocket from '@fastify/websocket'
import { createVerifier } from 'fast-jwt'
import Fastify, { type FastifyReply, type FastifyRequest } from 'fastify'
import { WebSocketServer, type WebSocket } from 'ws'
import { releaseUpgrade } from '../http/release-upgrade.js'
import { BaselineRegistry, type Identity } from './baseline-sessions.js'

interface Claims { email?: unknown, sub?: unknown, exp?: unknown }

function intEnv (env: Record<string, string | undefined>, name: string, fallback: number): number {
  const raw = env[name]
  if (raw === undefined || raw === '') return fallback
  const value = Number(raw)
  if (!Number.isInteger(value) || value < 0) throw new Error(`${name} must be a non-negative integer`)
  return value
}

function readConfig (env: Record<string, string | undefined>): {
  port: number,
  host: string,
  secret: string,
  admins: Set<string>,
  clockToleranceMs: number,
  maxMessageBytes: number,
  shutdownTimeoutMs: number,
  router: 'raw' | 'fastify',
  registry: ConstructorParameters<typeof BaselineRegistry>[0]
} {
  const secret = env.AUGMENTOS_AUTH_JWT_SECRET
  if (secret === undefined || secret === '') throw new Error('AUGMENTOS_AUTH_JWT_SECRET is required')
  const pingIntervalMs = intEnv(env, 'PING_INTERVAL_MS', 25_000)
  const router = env.BASELINE_ROUTER ?? 'raw'
  if (router !== 'raw' && router !== 'fastify') throw new Error('BASELINE_ROUTER is raw or fastify')
  return {
    port: intEnv(env, 'PORT', 8003),
    host: env.HOST ?? '127.0.0.1',
    secret,
    admins: new Set((env.ADMIN_EMAILS ?? '').split(',').map(e => e.trim().toLowerCase()).filter(Boolean)),
    clockToleranceMs: intEnv(env, 'TOKEN_CLOCK_TOLERANCE_MS', 5000),
    maxMessageBytes: intEnv(env, 'MAX_MESSAGE_BYTES', 1024 * 1024),
    shutdownTimeoutMs: intEnv(env, 'SHUTDOWN_TIMEOUT_MS', 10_000),
    router,
    registry: {
      nodeId: env.NODE_ID ?? 'baseline',
      gracePeriodMs: intEnv(env, 'GRACE_PERIOD_MS', 60_000),
      pingIntervalMs,
      silenceTimeoutMs: intEnv(env, 'SILENCE_TIMEOUT_MS', 3 * pingIntervalMs),
      maxBufferedBytes: intEnv(env, 'MAX_BUFFERED_BYTES', 4 * 1024 * 1024),
      clockToleranceMs: intEnv(env, 'TOKEN_CLOCK_TOLERANCE_MS', 5000)
    }
  }
}

function bearer (header: string | undefined): string | undefined {
  if (header === undefined) return undefined
  return /^Bearer\s+(\S+)\s*$/i.exec(header)?.[1]
}

/** Answer a refused upgrade with a JSON HTTP response on the raw socket, as Tether does. */
function refuseUpgrade (socket: Duplex, status: number, code: string): void {
  const body = JSON.stringify({ type: 'connection_error', code, message: code, timestamp: new Date().toISOString() })
  socket.end(`HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\ncontent-type: application/json\r\n` +
    `content-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`)
}

function json (response: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body)
  response.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) })
  response.end(text)
}

async function main (): Promise<void> {
  const config = readConfig(process.env)
  const verify = createVerifier({ key: config.secret, algorithms: ['HS256'], clockTolerance: config.clockToleranceMs })
  const identityOf = (token: string): Identity | null => {
    let claims: Claims
    try {
      claims = verify(token) as Claims
    } catch {
      return null
    }
    const email = typeof claims.email === 'string' ? claims.email.trim().toLowerCase() : ''
    if (email === '' || typeof claims.sub !== 'string' || claims.sub === '') return null
    return { userId: email, subject: claims.sub, expiresAt: typeof claims.exp === 'number' ? claims.exp * 1000 : null }
  }
  const registry = new BaselineRegistry(config.registry)
  const wsOptions = { maxPayload: config.maxMessageBytes, perMessageDeflate: false }
  let wss = new WebSocketServer({ noServer: true, ...wsOptions })
  const appSockets = new Set<WebSocket>()
  let draining = false

  function listSessions (request: IncomingMessage, response: ServerResponse, url: URL): void {
    const token = bearer(request.headers.authorization)
    const identity = token === undefined ? null : identityOf(token)
    if (identity === null) return json(response, 401, { statusCode: 401, error: 'Unauthorized', message: 'admin token required' })
    if (!config.admins.has(identity.userId)) return json(response, 403, { statusCode: 403, error: 'Forbidden', message: 'not an admin' })
    const limit = Number(url.searchParams.get('limit') ?? 100)
    const state = url.searchParams.get('state') ?? undefined
    const cursor = url.searchParams.get('cursor')
    const after = cursor === null ? 0 : Number(Buffer.from(cursor, 'base64url').toString())
    if (!Number.isInteger(limit) || limit < 1 || limit > 1000 || !Number.isInteger(after) ||
      (state !== undefined && state !== 'active' && state !== 'grace')) {
      return json(response, 400, { statusCode: 400, error: 'Bad Request', message: 'bad query' })
    }
    const page = registry.page(after, limit, state as 'active' | 'grace' | undefined)
    const now = Date.now()
    const last = page.sessions.at(-1)
    json(response, 200, {
      sessions: page.sessions.map(session => registry.summary(session, now)),
      nextCursor: page.more && last !== undefined ? Buffer.from(String(last.sequence)).toString('base64url') : null,
      counts: registry.counts()
    })
  }

  // prom-client's event-loop series: 10 ms resolution, reset at every scrape.
  const loopDelay = monitorEventLoopDelay({ resolution: 10 })
  loopDelay.enable()

  /** The phone's REST calls at connect (PHONE.md section 1), the minimum a phone needs from each. */
  function clientApi (request: IncomingMessage, response: ServerResponse, path: string, body: Record<string, unknown>): void {
    const token = bearer(request.headers.authorization)
    const identity = token === undefined ? null : identityOf(token)
    if (identity === null) return json(response, 401, { error: 'invalid or missing token' })
    const route = `${request.method ?? ''} ${path}`
    const now = new Date().toISOString()
    if (route === 'POST /api/client/device/state') {
      if (!registry.deviceState(identity.userId, body)) return json(response, 503, { error: 'NO_ACTIVE_SESSION', message: 'no session' })
      const modelName = typeof body.modelName === 'string' ? body.modelName : null
      return json(response, 200, {
        success: true,
        appliedState: { isGlassesConnected: body.connected === true, isPhoneConnected: true, modelName },
        timestamp: now
      })
    }
    if (route === 'GET /api/client/apps') {
      const running = registry.sessions.get(identity.userId)?.app != null
      return json(response, 200, {
        success: true,
        data: [{
          packageName: 'com.tether.bench.relay',
          name: 'Tether bench relay',
          webviewUrl: '',
          logoUrl: '',
          type: 'standard',
          permissions: [],
          running,
          healthy: true,
          hardwareRequirements: []
        }],
        timestamp: now
      })
    }
    if (route === 'POST /api/client/audio/configure') {
      if (body.format !== 'lc3' && body.format !== 'pcm') return json(response, 400, { error: 'format must be lc3 or pcm' })
      const lc3Config = body.format === 'lc3' ? { sampleRate: 16000, frameDurationMs: 10, frameSizeBytes: 20, ...(body.lc3Config as object) } : undefined
      return json(response, 200, { success: true, format: body.format, lc3Config, timestamp: now })
    }
    json(response, 404, { statusCode: 404, error: 'Not Found', message: 'no route' })
  }

  function get (request: IncomingMessage, response: ServerResponse, url: URL): void {
    switch (url.pathname) {
      case '/health': return json(response, 200, { status: 'ok' })
      case '/ready': return json(response, draining ? 503 : 200, { status: draining ? 'draining' : 'ready' })
      case '/sessions': return listSessions(request, response, url)
      case '/metrics': {
        // The series the benchmark reads from Tether's prom-client metrics, computed the same way.
        const memory = process.memoryUsage()
        const seconds = (ns: number): number => ns / 1e9
        const lag = `nodejs_eventloop_lag_p50_seconds ${seconds(loopDelay.percentile(50))}\n` +
          `nodejs_eventloop_lag_p99_seconds ${seconds(loopDelay.percentile(99))}\nnodejs_eventloop_lag_max_seconds ${seconds(loopDelay.max)}\n`
        loopDelay.reset()
        response.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' })
        response.end(`process_resident_memory_bytes ${memory.rss}\nnodejs_heap_size_used_bytes ${memory.heapUsed}\n${lag}`)
        return
      }
      case '/api/client/apps': return clientApi(request, response, url.pathname, {})
      default: return json(response, 404, { statusCode: 404, error: 'Not Found', message: 'no route' })
    }
  }

  const server = createServer((request, response) => {
    const url = new URL(request.url ?? '/', 'http://baseline')
    if (request.method === 'GET') return get(request, response, url)
    if (request.method !== 'POST') return json(response, 404, { statusCode: 404, error: 'Not Found', message: 'no route' })
    const chunks: Buffer[] = []
    request.on('data', (chunk: Buffer) => chunks.push(chunk))
    request.on('end', () => {
      // The phone sends `content-type: application/json` also with no body: empty is {}.
      const text = Buffer.concat(chunks).toString('utf8')
      let body: unknown
      try {
        body = text === '' ? {} : JSON.parse(text)
      } catch {
        return json(response, 400, { error: 'body is not JSON' })
      }
      if (typeof body !== 'object' || body === null || Array.isArray(body)) return json(response, 400, { error: 'body must be an object' })
      clientApi(request, response, url.pathname, body as Record<string, unknown>)
    })
  })

  /** The upgrades through Fastify: the same checks and answers, in a route's onRequest hook. */
  async function routeUpgradesThroughFastify (): Promise<WebSocketServer> {
    const app = Fastify({ logger: false, serverFactory: () => server })
    await app.register(websocket, { options: wsOptions })
    const identities = new WeakMap<object, Identity>()
    const refuse = async (reply: FastifyReply, status: number, code: string): Promise<void> => {
      await reply.code(status).header('connection', 'close')
        .send({ type: 'connection_error', code, message: code, timestamp: new Date().toISOString() })
    }
    const check = (request: FastifyRequest<{ Querystring: { token?: string } }>, reply: FastifyReply): Promise<void> | null => {
      if (draining) return refuse(reply, 503, 'SHUTTING_DOWN')
      const token = bearer(request.headers.authorization) ?? request.query.token ?? ''
      if (token === '') return refuse(reply, 401, 'NO_TOKEN')
      const identity = identityOf(token)
      if (identity === null) return refuse(reply, 401, 'INVALID_TOKEN')
      identities.set(request, identity)
      return null
    }
    const querystring = { type: 'object', properties: { token: { type: 'string' } }, additionalProperties: true }
    app.get<{ Querystring: { token?: string } }>('/glasses-ws', {
      websocket: true,
      schema: { querystring },
      // A callback hook whose checks answer at once, as Tether's glasses route has it: a refusal alone is awaited.
      onRequest: (request, reply, done) => {
        const refusal = check(request, reply)
        if (refusal === null) done()
        else refusal.then(() => { done() }, done)
      }
    }, (socket, request) => {
      const identity = identities.get(request)
      if (identity === undefined) {
        socket.close(1008, 'unauthenticated')
        return
      }
      // As Tether's routes do: a socket must not keep its upgrade's request and reply alive.
      releaseUpgrade(socket, request.raw)
      registry.attach(socket, identity)
    })
    app.get('/app-ws', {
      websocket: true,
      onRequest: async (_request, reply) => { if (draining) await refuse(reply, 503, 'SHUTTING_DOWN') }
    }, (socket, request) => {
      releaseUpgrade(socket, request.raw)
      acceptApp(socket)
    })
    await app.ready()
    return app.websocketServer
  }

  function rawUpgrade (request: IncomingMessage, socket: Duplex, head: Buffer): void {
    const url = new URL(request.url ?? '/', 'http://baseline')
    if (url.pathname === '/glasses-ws') {
      if (draining) return refuseUpgrade(socket, 503, 'SHUTTING_DOWN')
      const token = bearer(request.headers.authorization) ?? url.searchParams.get('token') ?? ''
      if (token === '') return refuseUpgrade(socket, 401, 'NO_TOKEN')
      const identity = identityOf(token)
      if (identity === null) return refuseUpgrade(socket, 401, 'INVALID_TOKEN')
      wss.handleUpgrade(request, socket, head, ws => registry.attach(ws, identity))
      return
    }
    if (url.pathname === '/app-ws') {
      if (draining) return refuseUpgrade(socket, 503, 'SHUTTING_DOWN')
      wss.handleUpgrade(request, socket, head, ws => acceptApp(ws))
      return
    }
    refuseUpgrade(socket, 404, 'NOT_FOUND')
  }

  if (config.router === 'fastify') {
    wss.close()
    wss = await routeUpgradesThroughFastify()
  } else {
    server.on('upgrade', rawUpgrade)
  }

  /**
   * An app: `tpa_connection_init` names the user (its sessionId), `subscription_update` asks for audio and
   * button presses, `display_event` goes to the phone.
   */
  function acceptApp (ws: WebSocket): void {
    appSockets.add(ws)
    let userId: string | null = null
    ws.on('close', () => appSockets.delete(ws))
    ws.on('error', () => ws.terminate())
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      if (isBinary) return
      let message: { type?: unknown, sessionId?: unknown, subscriptions?: unknown, packageName?: unknown, view?: unknown, layout?: unknown }
      try {
        message = JSON.parse(data.toString('utf8')) as typeof message
      } catch {
        ws.close(1008, 'not JSON')
        return
      }
      if (message.type === 'tpa_connection_init' && typeof message.sessionId === 'string' && registry.attachApp(message.sessionId, ws)) {
        userId = message.sessionId
        ws.send(JSON.stringify({ type: 'tpa_connection_ack', sessionId: userId, settings: [], timestamp: new Date().toISOString() }))
      } else if (message.type === 'subscription_update' && userId !== null && Array.isArray(message.subscriptions)) {
        registry.subscribe(userId, ws, message.subscriptions)
      } else if (message.type === 'display_event' && userId !== null && typeof message.layout === 'object' && message.layout !== null) {
        registry.display(userId, typeof message.packageName === 'string' ? message.packageName : 'app', message)
      } else if (userId === null) {
        ws.close(1008, 'bad init')
      }
    })
  }

  async function shutdown (): Promise<void> {
    if (draining) return
    draining = true
    const force = setTimeout(() => {
      for (const client of wss.clients) client.terminate()
      process.exit(0)
    }, config.shutdownTimeoutMs)
    force.unref()
    for (const ws of appSockets) ws.close(1001, 'server shutting down')
    await registry.drain()
    wss.close()
    server.close()
    server.closeIdleConnections()
  }
  process.on('SIGTERM', () => { void shutdown() })
  process.on('SIGINT', () => { void shutdown() })

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(config.port, config.host, () => resolve())
  })
  process.stdout.write(`baseline listening on http://${config.host}:${config.port}\n`)
}

await main()
