/**
 * What the benchmark reads from a running server: memory (from its Prometheus
 * text, the same two series for Tether and the baseline), a full GC first (over
 * the inspector, so both are measured without garbage), and HTTP latency.
 */
import { performance } from 'node:perf_hooks'
import WebSocket from 'ws'
import { summarize, type LatencySummary } from './stats.js'

export interface MemorySample { rssBytes: number, heapUsedBytes: number }

function metricValue (text: string, name: string): number {
  const match = new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.e+-]+)`, 'm').exec(text)
  if (match === null) throw new Error(`no ${name} in /metrics`)
  return Number(match[1])
}

export async function scrapeMemory (httpUrl: string): Promise<MemorySample> {
  const response = await fetch(`${httpUrl}/metrics`)
  const text = await response.text()
  return {
    rssBytes: metricValue(text, 'process_resident_memory_bytes'),
    heapUsedBytes: metricValue(text, 'nodejs_heap_size_used_bytes')
  }
}

/** A connection to a server's inspector: one request at a time is all the benchmark needs. */
class Inspector {
  private nextId = 1
  private constructor (private readonly ws: WebSocket) {}

  static async open (url: string): Promise<Inspector> {
    const ws = new WebSocket(url, { perMessageDeflate: false, maxPayload: 1024 * 1024 * 1024 })
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve())
      ws.once('error', reject)
    })
    return new Inspector(ws)
  }

  async call (method: string, params: Record<string, unknown> = {}): Promise<unknown> {
    const id = this.nextId++
    return await new Promise((resolve, reject) => {
      const timer = setTimeout(() => { this.ws.off('message', onMessage); reject(new Error(`inspector did not answer ${method}`)) }, 60_000)
      const onMessage = (data: Buffer): void => {
        const reply = JSON.parse(data.toString()) as { id?: number, result?: unknown, error?: { message: string } }
        if (reply.id !== id) return
        clearTimeout(timer)
        this.ws.off('message', onMessage)
        if (reply.error !== undefined) reject(new Error(`${method}: ${reply.error.message}`))
        else resolve(reply.result)
      }
      this.ws.on('message', onMessage)
      this.ws.send(JSON.stringify({ id, method, params }))
    })
  }

  close (): void { this.ws.close() }
}

/** Ask V8 for a full collection through the inspector protocol; twice, so weakly held garbage goes too. */
export async function collectGarbage (inspectorUrl: string, rounds = 2): Promise<void> {
  const inspector = await Inspector.open(inspectorUrl)
  try {
    for (let i = 0; i < rounds; i += 1) await inspector.call('HeapProfiler.collectGarbage')
  } finally {
    inspector.close()
  }
}

/** Start sampling the server's CPU; the returned function stops and hands back the .cpuprofile JSON. */
export async function startCpuProfile (inspectorUrl: string): Promise<() => Promise<unknown>> {
  const inspector = await Inspector.open(inspectorUrl)
  await inspector.call('Profiler.enable')
  await inspector.call('Profiler.setSamplingInterval', { interval: 250 })
  await inspector.call('Profiler.start')
  return stopWith(inspector, 'Profiler.stop')
}

/** The function that ends a profile: `method` hands back its `profile`, then the inspector session closes. */
function stopWith (inspector: Inspector, method: string): () => Promise<unknown> {
  return async () => {
    try {
      const result = await inspector.call(method) as { profile: unknown }
      return result.profile
    } finally {
      inspector.close()
    }
  }
}

/**
 * Start V8's sampling heap profiler on the server, keeping the samples of objects
 * collected since (a minor or a full collection), so the profile shows everything a
 * phase allocated, not only what it left live. The returned function stops and hands
 * back the .heapprofile JSON.
 */
export async function startAllocationProfile (inspectorUrl: string): Promise<() => Promise<unknown>> {
  const inspector = await Inspector.open(inspectorUrl)
  await inspector.call('HeapProfiler.enable')
  await inspector.call('HeapProfiler.startSampling', {
    samplingInterval: 4096,
    includeObjectsCollectedByMajorGC: true,
    includeObjectsCollectedByMinorGC: true
  })
  return stopWith(inspector, 'HeapProfiler.stopSampling')
}

/**
 * One untimed GET (it pays lazy compilation, reported as `firstMs`), then `count`
 * sequential GETs, each timed from the request to the last byte of the body.
 */
export async function timeGets (url: string, headers: Record<string, string>, count: number): Promise<LatencySummary & { status: number, bytes: number, firstMs: number }> {
  const samples: number[] = []
  let status = 0
  let bytes = 0
  let firstMs = Number.NaN
  for (let i = 0; i <= count; i += 1) {
    const started = performance.now()
    const response = await fetch(url, { headers })
    const body = await response.arrayBuffer()
    const elapsed = performance.now() - started
    if (i === 0) firstMs = elapsed
    else samples.push(elapsed)
    status = response.status
    bytes = body.byteLength
  }
  return { ...summarize(samples), status, bytes, firstMs }
}

export interface LoopDelay { p50: number, p99: number, max: number }

/**
 * The server's event-loop delay since its previous scrape, in ms: prom-client's
 * `nodejs_eventloop_lag_*` (perf_hooks.monitorEventLoopDelay, 10 ms resolution,
 * reset at every scrape), which the baseline exports the same way.
 */
export async function scrapeLoopDelay (httpUrl: string): Promise<LoopDelay> {
  const text = await (await fetch(`${httpUrl}/metrics`)).text()
  const ms = (name: string): number => {
    const match = new RegExp(`^${name} ([0-9.e+-]+)`, 'm').exec(text)
    return match === null ? Number.NaN : Number(match[1]) * 1000
  }
  return { p50: ms('nodejs_eventloop_lag_p50_seconds'), p99: ms('nodejs_eventloop_lag_p99_seconds'), max: ms('nodejs_eventloop_lag_max_seconds') }
}

/** A counter or gauge from a server's /metrics, summed over its label sets; 0 when absent. */
export async function scrapeSum (httpUrl: string, name: string): Promise<number> {
  const text = await (await fetch(`${httpUrl}/metrics`)).text()
  let sum = 0
  for (const match of text.matchAll(new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.e+-]+)`, 'gm'))) sum += Number(match[1])
  return sum
}
