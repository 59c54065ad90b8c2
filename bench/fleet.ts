/**
 * A fleet of virtual glasses on real sockets: connect a range of them with a
 * bounded number of handshakes in flight, drop some without a close frame (as a
 * phone losing its network does) and resume them, and keep count of everything
 * the server does to them. The simulator CLI and the benchmark both drive it.
 *
 * Keep-alive needs nothing here: the `ws` client answers every server ping
 * with a pong by itself, which Tether and the baseline both count as traffic.
 */
import { performance } from 'node:perf_hooks'
import WebSocket from 'ws'
import { summarize, tally, type LatencySummary } from './stats.js'

export interface FleetOptions {
  /** The glasses endpoint, e.g. ws://127.0.0.1:8002/glasses-ws. */
  url: string
  /** The token of virtual glasses number `index`. */
  tokenFor: (index: number) => string
  /** Handshakes in flight at once. */
  concurrency: number
  /** A handshake (TCP, upgrade, ack) that takes longer than this fails. */
  handshakeTimeoutMs: number
}

/** Running totals over the fleet's whole life. */
export interface FleetStats {
  attempts: number
  acked: number
  failed: number
  /** Why connects failed: `http 401`, `ECONNREFUSED`, `closed 1001`, `timeout`, ... */
  failures: Record<string, number>
  resumesAttempted: number
  /** Acks of a resume that said `reconnection: true` with the same sessionInstanceId. */
  resumed: number
  /** Acks of a resume that started a new session instead. */
  resumeMismatches: number
  dropped: number
  /** Frames sent, by kind (`button_press`, `audio`, ...). */
  sent: Record<string, number>
  /** Frames received, by message type (`binary` for binary frames). */
  received: Record<string, number>
  bytesSent: number
  bytesReceived: number
  /** Close codes of sockets the simulator did not end itself. */
  closeCodes: Record<string, number>
  /** Acked sockets the server (or the network) ended. */
  unexpectedCloses: number
}

/** One batch of connects or resumes. */
export interface ConnectReport {
  attempted: number
  acked: number
  failed: number
  elapsedMs: number
  /** Acked connections per second over the batch. */
  ratePerSecond: number
  /** Socket creation to `connection_ack`, in ms. */
  timeToAck: LatencySummary
}

interface Glasses {
  readonly index: number
  ws: WebSocket | null
  /** Acked and not closed. */
  open: boolean
  sessionInstanceId: string | null
  /** We ended this socket ourselves; its close is not the server's doing. */
  endedByUs: boolean
}

interface AckMessage { type: string, sessionInstanceId?: unknown, reconnection?: unknown }

type ConnectKind = 'connect' | 'resume'

const OPEN = WebSocket.OPEN

export class Fleet {
  readonly stats: FleetStats = {
    attempts: 0,
    acked: 0,
    failed: 0,
    failures: {},
    resumesAttempted: 0,
    resumed: 0,
    resumeMismatches: 0,
    dropped: 0,
    sent: {},
    received: {},
    bytesSent: 0,
    bytesReceived: 0,
    closeCodes: {},
    unexpectedCloses: 0
  }

  /** Socket creation to ack, in ms: every first connect, and every resume. */
  readonly ackMs: number[] = []
  readonly resumeMs: number[] = []
  private readonly glasses: Glasses[] = []
  private openCount = 0
  private cursor = 0
  private closeWaiters: Array<() => void> = []
  /** Set by halt(): batches stop starting new handshakes. */
  private halted = false
  /** performance.now() of the latest close of any socket. */
  private lastCloseAt = 0
  /** performance.now() of the WebSocket pings the server sent, recorded only while afterPingBurst waits (else null). */
  private pingTimes: number[] | null = null

  constructor (private readonly options: FleetOptions) {}

  get size (): number { return this.glasses.length }

  get open (): number { return this.openCount }

  get lastClose (): number { return this.lastCloseAt }

  /** Connect glasses number `from` to `to - 1`; resolves once each is acked or failed. */
  async connectRange (from: number, to: number): Promise<ConnectReport> {
    const indices: number[] = []
    for (let i = from; i < to; i += 1) indices.push(i)
    return await this.runBatch(indices, 'connect')
  }

  /**
   * Drop (terminate, no close frame) up to `count` open glasses, spread evenly
   * over the fleet. Returns the indices dropped, to resume later. `shift` (0..1)
   * is where in each step of the spread to start: a drop at 0.5 takes the glasses
   * half-way between those a drop at 0 takes, when there are enough.
   */
  drop (count: number, shift = 0): number[] {
    const openOnes = this.glasses.filter(g => g.open)
    const step = Math.max(1, Math.floor(openOnes.length / Math.max(1, count)))
    const dropped: number[] = []
    for (let i = Math.floor(step * shift); i < openOnes.length && dropped.length < count; i += step) {
      const g = openOnes[i] as Glasses
      g.endedByUs = true
      g.ws?.terminate()
      dropped.push(g.index)
    }
    this.stats.dropped += dropped.length
    return dropped
  }

  /** Reconnect dropped glasses with their own token; a resume expects the same sessionInstanceId back. */
  async resume (indices: readonly number[]): Promise<ConnectReport> {
    return await this.runBatch(indices, 'resume')
  }

  /** The next open glasses in round-robin order, or null when none is open. */
  nextOpen (): WebSocket | null {
    const total = this.glasses.length
    for (let scanned = 0; scanned < total; scanned += 1) {
      this.cursor = (this.cursor + 1) % total
      const g = this.glasses[this.cursor] as Glasses
      if (g.open && g.ws !== null && g.ws.readyState === OPEN) return g.ws
    }
    return null
  }

  /** Send one frame and count it. False when the socket is closed or already behind. */
  send (ws: WebSocket, data: string | Buffer, kind: string, maxBufferedBytes = 1024 * 1024): boolean {
    if (ws.readyState !== OPEN || ws.bufferedAmount > maxBufferedBytes) return false
    ws.send(data)
    tally(this.stats.sent, kind)
    this.stats.bytesSent += typeof data === 'string' ? Buffer.byteLength(data) : data.length
    return true
  }

  /** Resolves once no socket is open, or after `timeoutMs`; true when all closed. */
  async allClosed (timeoutMs: number): Promise<boolean> {
    if (this.openCount === 0 && !this.glasses.some(g => g.ws !== null && g.ws.readyState !== WebSocket.CLOSED)) return true
    return await new Promise<boolean>(resolve => {
      const timer = setTimeout(() => {
        this.closeWaiters = this.closeWaiters.filter(w => w !== done)
        resolve(false)
      }, timeoutMs)
      const done = (): void => { clearTimeout(timer); resolve(true) }
      this.closeWaiters.push(done)
    })
  }

  /**
   * Wait for the end of a burst of server pings: at least `share` of the open sockets pinged within `windowMs` (a
   * server that pings every socket in one tick), then quiet for `windowMs`. Resolves true after such a burst, false
   * after `timeoutMs` without one (a server that spreads its pings). A phase started then runs clear of the next
   * tick for a whole ping interval, so its tail does not depend on where the tick happened to fall.
   */
  async afterPingBurst (share: number, windowMs: number, timeoutMs: number): Promise<boolean> {
    const started = performance.now()
    let burstSeenAt: number | null = null
    this.pingTimes = []
    try {
      while (performance.now() - started < timeoutMs) {
        await new Promise(resolve => setTimeout(resolve, 20))
        const now = performance.now()
        // Only what the window still covers is kept.
        this.pingTimes = this.pingTimes.filter(at => now - at <= windowMs)
        if (burstSeenAt === null && this.pingTimes.length >= share * this.openCount) burstSeenAt = now
        if (burstSeenAt !== null && this.pingTimes.length === 0) return true
      }
      return false
    } finally {
      this.pingTimes = null
    }
  }

  /** Stop every batch from starting further handshakes (the run is out of time). */
  halt (): void { this.halted = true }

  /** End every socket without a close frame (clean-up between phases). */
  terminateAll (): void {
    for (const g of this.glasses) {
      if (g.ws === null) continue
      g.endedByUs = true
      g.ws.terminate()
    }
  }

  private async runBatch (indices: readonly number[], kind: ConnectKind): Promise<ConnectReport> {
    const before = { acked: this.stats.acked + this.stats.resumed + this.stats.resumeMismatches, failed: this.stats.failed }
    const samples = kind === 'connect' ? this.ackMs : this.resumeMs
    const firstSample = samples.length
    const started = performance.now()
    let next = 0
    const worker = async (): Promise<void> => {
      while (next < indices.length && !this.halted) {
        const index = indices[next] as number
        next += 1
        await this.connectOne(this.glassesAt(index), kind)
      }
    }
    const workers = Math.max(1, Math.min(this.options.concurrency, indices.length))
    await Promise.all(Array.from({ length: workers }, worker))
    const elapsedMs = performance.now() - started
    const acked = this.stats.acked + this.stats.resumed + this.stats.resumeMismatches - before.acked
    return {
      attempted: Math.min(next, indices.length),
      acked,
      failed: this.stats.failed - before.failed,
      elapsedMs,
      ratePerSecond: elapsedMs > 0 ? acked / (elapsedMs / 1000) : 0,
      timeToAck: summarize(samples.slice(firstSample))
    }
  }

  private glassesAt (index: number): Glasses {
    while (this.glasses.length <= index) {
      this.glasses.push({ index: this.glasses.length, ws: null, open: false, sessionInstanceId: null, endedByUs: false })
    }
    return this.glasses[index] as Glasses
  }

  /** One handshake: resolves true on `connection_ack`, false on any failure before it. */
  private async connectOne (g: Glasses, kind: ConnectKind): Promise<boolean> {
    const stats = this.stats
    if (kind === 'resume') stats.resumesAttempted += 1
    else stats.attempts += 1
    return await new Promise<boolean>(resolve => {
      const started = performance.now()
      let settled = false
      const settle = (ok: boolean, failure?: string): void => {
        if (settled) return
        settled = true
        if (!ok) {
          stats.failed += 1
          tally(stats.failures, failure ?? 'unknown')
        }
        resolve(ok)
      }
      const ws = new WebSocket(this.options.url, {
        headers: { authorization: `Bearer ${this.options.tokenFor(g.index)}` },
        perMessageDeflate: false,
        handshakeTimeout: this.options.handshakeTimeoutMs
      })
      g.ws = ws
      g.endedByUs = false
      ws.on('ping', () => { this.pingTimes?.push(performance.now()) })
      ws.on('unexpected-response', (_request, response) => {
        settle(false, `http ${response.statusCode ?? '?'}`)
        response.resume()
        // The refusal is the failure; the socket we then abort is not a close the server sent.
        g.endedByUs = true
        ws.terminate()
      })
      ws.on('error', (error: NodeJS.ErrnoException) => {
        settle(false, error.code ?? (error.message.includes('timed out') ? 'timeout' : error.message))
      })
      ws.on('message', (data: Buffer, isBinary: boolean) => {
        stats.bytesReceived += data.length
        if (isBinary) {
          tally(stats.received, 'binary')
          return
        }
        let message: AckMessage
        try {
          message = JSON.parse(data.toString('utf8')) as AckMessage
        } catch {
          tally(stats.received, 'not_json')
          return
        }
        tally(stats.received, message.type)
        if (message.type !== 'connection_ack' || settled) return
        const ms = performance.now() - started
        if (kind === 'resume') {
          this.resumeMs.push(ms)
          if (message.reconnection === true && message.sessionInstanceId === g.sessionInstanceId) stats.resumed += 1
          else stats.resumeMismatches += 1
        } else {
          this.ackMs.push(ms)
          stats.acked += 1
        }
        g.sessionInstanceId = typeof message.sessionInstanceId === 'string' ? message.sessionInstanceId : null
        g.open = true
        this.openCount += 1
        settle(true)
      })
      ws.on('close', (code: number) => {
        this.lastCloseAt = performance.now()
        if (g.open) {
          g.open = false
          this.openCount -= 1
          if (!g.endedByUs) stats.unexpectedCloses += 1
        }
        if (!g.endedByUs) tally(stats.closeCodes, code)
        settle(false, `closed ${code}`)
        if (this.openCount === 0 && this.closeWaiters.length > 0) {
          const waiters = this.closeWaiters
          this.closeWaiters = []
          for (const waiter of waiters) waiter()
        }
      })
    })
  }
}
