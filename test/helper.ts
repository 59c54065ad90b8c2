/**
 * Test helpers: the real app (buildApp) on a real port, real `ws` clients, and
 * tokens signed with fast-jwt (also for the algorithms Tether must refuse).
 */
import { once } from 'node:events'
import type { Server as HttpServer } from 'node:http'
import { PassThrough } from 'node:stream'
import { createSigner } from 'fast-jwt'
import WebSocket from 'ws'
import { buildApp, type BuildOptions, type TetherApp } from '../app.js'
import { loadConfig, type Config } from '../config.js'

export const SECRET = 'tether-test-secret-0123456789abcdef0123456789'
export const ADMIN = 'admin@test.example'

/** A teardown registry: tap's `t` fits it. */
export interface Teardown { teardown: (fn: () => unknown) => void }

export function testConfig (overrides: Partial<Config> = {}): Config {
  const base = loadConfig({
    AUGMENTOS_AUTH_JWT_SECRET: SECRET,
    ADMIN_EMAILS: ADMIN,
    LOG_LEVEL: 'silent',
    PORT: '0',
    NODE_ID: 'test-node',
    // Every test connects from 127.0.0.1; the per-address limit has its own test.
    UPGRADE_RATE_LIMIT: '100000'
  })
  return { ...base, ...overrides }
}

export function sign (claims: Record<string, unknown>, options: { algorithm?: 'HS256' | 'HS384' | 'HS512', key?: string, expiresIn?: number, notBefore?: number } = {}): string {
  const signer = createSigner({
    key: options.key ?? SECRET,
    algorithm: options.algorithm ?? 'HS256',
    ...(options.expiresIn === undefined ? {} : { expiresIn: options.expiresIn }),
    ...(options.notBefore === undefined ? {} : { notBefore: options.notBefore })
  })
  return signer(claims)
}

export function glassesToken (email: string, extra: Record<string, unknown> = {}): string {
  return sign({ email, sub: `sub-${email}`, ...extra })
}

export const adminToken = (): string => sign({ email: ADMIN, sub: 'admin' })

export interface Server {
  app: TetherApp
  config: Config
  httpUrl: string
  wsUrl: string
  /** Everything the app logged, one parsed JSON object per line (when a log level is set). */
  logs: () => Array<Record<string, unknown>>
  rawLogs: () => string
}

/** Build the real app, listen on a free loopback port, close it in teardown. */
export async function startServer (t: Teardown, overrides: Partial<Config> = {}, options: BuildOptions = {}): Promise<Server> {
  const config = testConfig(overrides)
  const stream = new PassThrough()
  let raw = ''
  stream.on('data', (chunk: Buffer) => { raw += chunk.toString() })
  const app = await buildApp(config, { logStream: stream, ...options })
  await app.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(async () => { await app.close() })
  const address = app.server.address()
  if (address === null || typeof address === 'string') throw new Error('no address')
  const httpUrl = `http://127.0.0.1:${address.port}`
  return {
    app,
    config,
    httpUrl,
    wsUrl: `ws://127.0.0.1:${address.port}`,
    rawLogs: () => raw,
    logs: () => raw.split('\n').filter(Boolean).map(line => JSON.parse(line) as Record<string, unknown>)
  }
}

export interface Message { type: string, [key: string]: unknown }

/** A glasses client on a real socket that records everything it receives. */
export class Client {
  readonly messages: Message[] = []
  readonly binaries: Buffer[] = []
  closeCode: number | null = null
  closeReason = ''
  readonly closed: Promise<number>
  private waiters: Array<() => void> = []

  constructor (readonly ws: WebSocket) {
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      if (isBinary) this.binaries.push(data)
      else this.messages.push(JSON.parse(data.toString()) as Message)
      this.wake()
    })
    this.closed = new Promise(resolve => {
      ws.on('close', (code: number, reason: Buffer) => {
        this.closeCode = code
        this.closeReason = reason.toString()
        this.wake()
        resolve(code)
      })
    })
    ws.on('error', () => { /* surfaced through close */ })
  }

  send (message: unknown): void { this.ws.send(typeof message === 'string' ? message : JSON.stringify(message)) }

  /** The first message of a type at or after index `from`, waiting up to `ms`. */
  async next (type: string, ms = 2000, from = 0): Promise<Message> {
    return await this.until(() => this.messages.slice(from).find(m => m.type === type), `message ${type}`, ms)
  }

  /** Wait until the predicate returns something. */
  async until<T> (check: () => T | undefined | false, what: string, ms = 2000): Promise<T> {
    const deadline = Date.now() + ms
    for (;;) {
      const value = check()
      if (value !== undefined && value !== false) return value
      const left = deadline - Date.now()
      if (left <= 0) throw new Error(`timed out waiting for ${what}`)
      await new Promise<void>(resolve => {
        const timer = setTimeout(resolve, left)
        this.waiters.push(() => { clearTimeout(timer); resolve() })
      })
    }
  }

  count (type: string): number { return this.messages.filter(m => m.type === type).length }

  async waitClosed (ms = 2000): Promise<number> {
    return await this.until(() => this.closeCode ?? undefined, 'close', ms)
  }

  terminate (): void { this.ws.terminate() }

  private wake (): void {
    const waiters = this.waiters
    this.waiters = []
    for (const wake of waiters) wake()
  }
}

/** Open a glasses socket with the token in the header (or the query) and wait for it to open. */
export async function connectGlasses (t: Teardown, server: Server, token: string,
  how: 'header' | 'query' = 'header'): Promise<Client> {
  const url = how === 'query' ? `${server.wsUrl}/glasses-ws?token=${encodeURIComponent(token)}` : `${server.wsUrl}/glasses-ws`
  const ws = new WebSocket(url, how === 'header' ? { headers: { authorization: `Bearer ${token}` } } : {})
  const client = new Client(ws)
  t.teardown(() => ws.terminate())
  await once(ws, 'open')
  return client
}

/** Connect and wait for the ack. */
export async function connectAcked (t: Teardown, server: Server, email: string): Promise<{ client: Client, ack: Message }> {
  const client = await connectGlasses(t, server, glassesToken(email))
  const ack = await client.next('connection_ack')
  return { client, ack }
}

/** The HTTP answer to an upgrade that the server refuses. */
export async function refusedUpgrade (server: Server, headers: Record<string, string>, query = '', path = '/glasses-ws'):
Promise<{ status: number, body: Record<string, unknown>, headers: Record<string, string | string[] | undefined> }> {
  const ws = new WebSocket(`${server.wsUrl}${path}${query}`, { headers })
  return await new Promise((resolve, reject) => {
    ws.on('open', () => { ws.terminate(); reject(new Error('upgrade was accepted')) })
    ws.on('error', () => { /* unexpected-response is the expected path */ })
    ws.on('unexpected-response', (_request, response) => {
      let body = ''
      response.on('data', (chunk: Buffer) => { body += chunk.toString() })
      response.on('end', () => resolve({
        status: response.statusCode ?? 0, body: JSON.parse(body) as Record<string, unknown>, headers: response.headers
      }))
    })
  })
}

export async function admin (server: Server, method: 'GET' | 'DELETE', url: string, token = adminToken()) {
  return await server.app.inject({ method, url, headers: { authorization: `Bearer ${token}` } })
}

/** For a server told to listen on a loopback port: wait for it, close it (connections included) in teardown; its port. */
export async function listenOnLoopback (t: Teardown, server: HttpServer): Promise<number> {
  if (!server.listening) await once(server, 'listening')
  t.teardown(async () => {
    server.closeAllConnections()
    await new Promise(resolve => server.close(resolve))
  })
  const address = server.address()
  if (address === null || typeof address === 'string') throw new Error('no address')
  return address.port
}

export const delay = async (ms: number): Promise<void> => { await new Promise(resolve => setTimeout(resolve, ms)) }

/** Poll a condition (a state reached asynchronously on the server) with a deadline. */
export async function eventually<T> (check: () => T | undefined | false | Promise<T | undefined | false>, what: string, ms = 2000): Promise<T> {
  const deadline = Date.now() + ms
  for (;;) {
    const value = await check()
    if (value !== undefined && value !== false) return value
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await delay(5)
  }
}
