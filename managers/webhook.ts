/**
 * POST a JSON webhook to an app (docs/PROTOCOL.md 2.1): retried once on a network error
 * or a 5xx, all attempts within one deadline, abortable when the session ends.
 */
export interface WebhookResult { ok: boolean, status?: number, error?: string }

export interface WebhookOptions {
  /** Absolute time (ms since epoch) by which every attempt must be over. */
  deadline: number
  /** Retries after the first attempt. */
  retries?: number
  signal?: AbortSignal
}

export async function postWebhook (url: string, body: unknown, options: WebhookOptions): Promise<WebhookResult> {
  const retries = options.retries ?? 1
  let last: WebhookResult = { ok: false, error: 'not sent' }
  for (let attempt = 0; attempt <= retries; attempt++) {
    const left = options.deadline - Date.now()
    if (left <= 0 || options.signal?.aborted === true) return last
    const signals = [AbortSignal.timeout(left), ...(options.signal === undefined ? [] : [options.signal])]
    try {
      const response = await fetch(url, {
        method: 'POST',
        // No Authorization header: the SDK would try to read it as a user's frontend token.
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
        signal: AbortSignal.any(signals)
      })
      await response.arrayBuffer()
      last = { ok: response.ok, status: response.status }
      if (response.status < 500) return last
    } catch (error) {
      last = { ok: false, error: (error as Error).message }
    }
  }
  return last
}
