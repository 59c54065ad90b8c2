/**
 * The one app the benchmark subscribes to audio with: an apps catalogue file
 * (APPS_FILE) naming it, and the HTTP server that receives its webhooks. Tether
 * POSTs `session_request` there on `start_app`; the relay phase then opens the
 * app's socket as the webhook asks (docs/PROTOCOL.md 2).
 */
import { createHash, randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

export interface SessionRequest { sessionId: string, userId: string, mentraOSWebsocketUrl: string }

export interface BenchApp {
  packageName: string
  apiKey: string
  /** The catalogue to give Tether as APPS_FILE. */
  catalogueFile: string
  /** The next `session_request` for this user. */
  sessionRequest: (userId: string, timeoutMs: number) => Promise<SessionRequest>
  /**
   * Hand every later `session_request` to `listener` instead (null: back to
   * sessionRequest). The phone fleet serves thousands of sessions from one handler.
   */
  onSessionRequest: (listener: ((request: SessionRequest) => void) | null) => void
  close: () => Promise<void>
}

export const BENCH_APP_PACKAGE = 'com.tether.bench.relay'

export async function startBenchApp (): Promise<BenchApp> {
  const apiKey = randomBytes(16).toString('hex')
  const waiting = new Map<string, (request: SessionRequest) => void>()
  const early = new Map<string, SessionRequest>()
  let listener: ((request: SessionRequest) => void) | null = null
  const http = createServer((request, response) => {
    const chunks: Buffer[] = []
    request.on('data', (chunk: Buffer) => chunks.push(chunk))
    request.on('end', () => {
      response.writeHead(200, { 'content-type': 'application/json' })
      response.end('{"status":"success"}')
      let body: { type?: unknown, sessionId?: unknown, userId?: unknown, mentraOSWebsocketUrl?: unknown }
      try {
        body = JSON.parse(Buffer.concat(chunks).toString()) as typeof body
      } catch {
        return
      }
      if (body.type !== 'session_request' || typeof body.userId !== 'string' || typeof body.sessionId !== 'string' ||
        typeof body.mentraOSWebsocketUrl !== 'string') return
      const hook: SessionRequest = { sessionId: body.sessionId, userId: body.userId, mentraOSWebsocketUrl: body.mentraOSWebsocketUrl }
      if (listener !== null) {
        listener(hook)
        return
      }
      const resolve = waiting.get(hook.userId)
      if (resolve === undefined) early.set(hook.userId, hook)
      else {
        waiting.delete(hook.userId)
        resolve(hook)
      }
    })
  })
  await new Promise<void>(resolve => http.listen(0, '127.0.0.1', () => resolve()))
  const address = http.address()
  const port = typeof address === 'object' && address !== null ? address.port : 0
  const dir = mkdtempSync(join(tmpdir(), 'tether-bench-'))
  const catalogueFile = join(dir, 'apps.json')
  writeFileSync(catalogueFile, JSON.stringify([{
    packageName: BENCH_APP_PACKAGE,
    name: 'Tether bench relay',
    webhookUrl: `http://127.0.0.1:${port}/webhook`,
    apiKeySha256: createHash('sha256').update(apiKey).digest('hex')
  }]))
  return {
    packageName: BENCH_APP_PACKAGE,
    apiKey,
    catalogueFile,
    sessionRequest: async (userId, timeoutMs) => {
      const already = early.get(userId)
      if (already !== undefined) {
        early.delete(userId)
        return already
      }
      return await new Promise<SessionRequest>((resolve, reject) => {
        const timer = setTimeout(() => {
          waiting.delete(userId)
          reject(new Error(`no session_request webhook for ${userId} within ${timeoutMs} ms`))
        }, timeoutMs)
        waiting.set(userId, hook => { clearTimeout(timer); resolve(hook) })
      })
    },
    onSessionRequest: next => { listener = next },
    close: async () => {
      http.closeAllConnections()
      await new Promise(resolve => http.close(resolve))
      rmSync(dir, { recursive: true, force: true })
    }
  }
}
