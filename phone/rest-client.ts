/**
 * The phone's REST client (docs: PHONE.md section 1): every call carries
 * `Authorization: Bearer <core token>` (except `min-version`, which the phone
 * calls before it has a session) and `Content-Type: application/json`, also a
 * POST with no body. Every call and its answer is recorded, failures included:
 * the phone only logs a non-2xx, so nothing here throws.
 */

export type RestMethod = 'GET' | 'POST'

/** One REST call and its answer; `status` 0 means no HTTP answer (network error or abort). */
export interface RestCall {
  method: RestMethod
  path: string
  /** The JSON body sent, `undefined` for none. */
  request: unknown
  status: number
  /** The answer parsed as JSON, else its text (`null` when empty). */
  body: unknown
  /** Set when there was no HTTP answer. */
  error?: string
  /** When the call was sent and how long its answer took. */
  at: number
  ms: number
  /** True for the one retry after a `503 NO_ACTIVE_SESSION`. */
  retry: boolean
}

export interface RestResult { status: number, body: unknown }

export interface RestCallOptions {
  /** Send the bearer token (default true). */
  auth?: boolean
  retry?: boolean
}

export interface RestClientOptions {
  baseUrl: string
  token: string
  /** No answer after this long counts as a failure (status 0). */
  timeoutMs: number
  /** Told of every finished call, in order of completion. */
  onCall: (call: RestCall) => void
}

export class RestClient {
  private readonly base: string
  private readonly abort = new AbortController()

  constructor (private readonly options: RestClientOptions) {
    this.base = options.baseUrl.replace(/\/+$/, '')
  }

  async call (method: RestMethod, path: string, request?: unknown, callOptions: RestCallOptions = {}): Promise<RestCall> {
    const headers: Record<string, string> = { 'content-type': 'application/json' }
    if (callOptions.auth !== false) headers.authorization = `Bearer ${this.options.token}`
    const at = Date.now()
    const record = (status: number, body: unknown, error?: string): RestCall => {
      const call: RestCall = {
        method,
        path,
        request,
        status,
        body,
        at,
        ms: Date.now() - at,
        retry: callOptions.retry === true,
        ...(error === undefined ? {} : { error })
      }
      this.options.onCall(call)
      return call
    }
    if (this.abort.signal.aborted) return record(0, null, 'stopped')
    try {
      const response = await fetch(this.base + path, {
        method,
        headers,
        ...(request === undefined ? {} : { body: JSON.stringify(request) }),
        signal: AbortSignal.any([this.abort.signal, AbortSignal.timeout(this.options.timeoutMs)])
      })
      const text = await response.text()
      return record(response.status, parseBody(text))
    } catch (error) {
      return record(0, null, this.abort.signal.aborted ? 'stopped' : describe(error))
    }
  }

  /** Abort every call in flight and refuse new ones. */
  close (): void { this.abort.abort() }
}

function parseBody (text: string): unknown {
  if (text === '') return null
  try { return JSON.parse(text) as unknown } catch { return text }
}

function describe (error: unknown): string {
  if (!(error instanceof Error)) return String(error)
  const cause = error.cause instanceof Error ? `: ${error.cause.message}` : ''
  return `${error.message}${cause}`
}

/** True for the one answer on which the phone reconnects and retries: `503 {"error":"NO_ACTIVE_SESSION"}`. */
export function isNoActiveSession (call: RestResult): boolean {
  return call.status === 503 && typeof call.body === 'object' && call.body !== null &&
    (call.body as Record<string, unknown>).error === 'NO_ACTIVE_SESSION'
}
