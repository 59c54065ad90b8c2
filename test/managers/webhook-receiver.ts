/**
 * The apps' webhook endpoints for manager unit tests: one loopback HTTP server
 * (port 0) that records each webhook and answers it with the status the test
 * chooses, so the lifecycle is tested against real POSTs without an app SDK.
 */
import { createServer } from 'node:http'
import { listenOnLoopback, type Teardown } from '../helper.js'

/** One webhook as the app received it. */
export interface ReceivedWebhook { packageName: string, body: { type: string, sessionId: string, [key: string]: unknown } }

export interface WebhookReceiver {
  /** The webhook URL for an app's catalogue entry. */
  urlFor: (packageName: string) => string
  readonly received: ReceivedWebhook[]
  /** Webhooks of one type, in arrival order. */
  of: (type: string) => ReceivedWebhook[]
}

/** `answer` gives the HTTP status for each webhook (200 unless said). */
export async function webhookReceiver (t: Teardown, answer: (hook: ReceivedWebhook) => number = () => 200): Promise<WebhookReceiver> {
  const received: ReceivedWebhook[] = []
  const server = createServer((request, response) => {
    let text = ''
    request.on('data', (chunk: Buffer) => { text += chunk.toString() })
    request.on('end', () => {
      const hook = { packageName: request.url?.split('/')[1] ?? '', body: JSON.parse(text) as ReceivedWebhook['body'] }
      received.push(hook)
      response.writeHead(answer(hook), { 'content-type': 'application/json' }).end('{}')
    })
  }).listen(0, '127.0.0.1')
  const port = await listenOnLoopback(t, server)
  return {
    urlFor: packageName => `http://127.0.0.1:${port}/${packageName}/webhook`,
    received,
    of: type => received.filter(hook => hook.body.type === type)
  }
}
