/**
 * A hand-driven app for the cases the SDK never produces (bad keys, floods,
 * apps that do not come back): a real HTTP server that receives webhooks and a
 * raw `ws` client on /app-ws.
 */
import { createHash, randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { createServer } from 'node:http'
import WebSocket from 'ws'
import { Client, listenOnLoopback, type Server, type Teardown } from './helper.js'

export interface Webhook { type: string, sessionId: string, userId: string, [key: string]: unknown }

export interface WebhookReceiver {
  url: string
  received: Webhook[]
  /** Status codes to answer, in order; 200 once the list runs out. */
  statuses: number[]
}

export async function startWebhookReceiver (t: Teardown): Promise<WebhookReceiver> {
  const receiver: WebhookReceiver = { url: '', received: [], statuses: [] }
  const http = createServer((request, response) => {
    let body = ''
    request.on('data', (chunk: Buffer) => { body += chunk.toString() })
    request.on('end', () => {
      receiver.received.push(JSON.parse(body) as Webhook)
      response.writeHead(receiver.statuses.shift() ?? 200, { 'content-type': 'application/json' })
      response.end('{"status":"success"}')
    })
  })
  const port = await listenOnLoopback(t, http.listen(0, '127.0.0.1'))
  receiver.url = `http://127.0.0.1:${port}/webhook`
  return receiver
}

export interface RawAppIdentity { packageName: string, apiKey: string, webhookUrl: string }

export function rawAppIdentity (packageName: string, webhookUrl: string): RawAppIdentity {
  return { packageName, apiKey: randomBytes(12).toString('hex'), webhookUrl }
}

export const sha256 = (text: string): string => createHash('sha256').update(text).digest('hex')

/** Open /app-ws and (unless `init` is false) send the init; resolves once open. */
export async function connectApp (t: Teardown, server: Server, init: Record<string, unknown> | false): Promise<Client> {
  const ws = new WebSocket(`${server.wsUrl}/app-ws`)
  const client = new Client(ws)
  t.teardown(() => ws.terminate())
  await once(ws, 'open')
  if (init !== false) client.send({ type: 'tpa_connection_init', ...init })
  return client
}
