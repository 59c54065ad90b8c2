/**
 * Steady glasses traffic over an open fleet: JSON pings, button presses, local
 * transcripts and binary audio frames at per-glasses rates. One shared ticker
 * (not a timer per socket) works out how many of each kind are due fleet-wide
 * and sends them round-robin, so a fleet of 15,000 costs one timer.
 */
import { performance } from 'node:perf_hooks'
import type { Fleet } from './fleet.js'

export interface TrafficRates {
  /** Per glasses: a `{"type":"ping"}` every this many ms; 0 = none. */
  jsonPingEveryMs: number
  /** Per glasses: a `button_press` every this many ms; 0 = none. */
  buttonEveryMs: number
  /** Per glasses: a `local_transcription` every this many ms; 0 = none. */
  transcriptEveryMs: number
  /** Per glasses: binary audio frames per second; 0 = none. */
  audioFramesPerSecond: number
  /** Bytes per audio frame: PCM16 LE, 16 kHz mono, so 640 bytes are 20 ms. */
  audioFrameBytes: number
}

export const NO_TRAFFIC: TrafficRates = {
  jsonPingEveryMs: 0, buttonEveryMs: 0, transcriptEveryMs: 0, audioFramesPerSecond: 0, audioFrameBytes: 640
}

interface Stream {
  kind: string
  /** Frames per ms per open glasses. */
  perMs: number
  frame: () => string | Buffer
  due: number
}

const TICK_MS = 20

export class TrafficGenerator {
  private readonly streams: Stream[]
  private timer: NodeJS.Timeout | null = null
  private lastTick = 0

  constructor (private readonly fleet: Fleet, rates: TrafficRates) {
    // Silence as audio: the server relays bytes, it never looks inside them.
    const audio = Buffer.alloc(rates.audioFrameBytes)
    const candidates: Array<Omit<Stream, 'due'> | null> = [
      rates.jsonPingEveryMs > 0 ? { kind: 'ping', perMs: 1 / rates.jsonPingEveryMs, frame: () => '{"type":"ping"}' } : null,
      rates.buttonEveryMs > 0
        ? {
            kind: 'button_press',
            perMs: 1 / rates.buttonEveryMs,
            frame: () => JSON.stringify({ type: 'button_press', buttonId: 'main', pressType: 'short', timestamp: Date.now() })
          }
        : null,
      rates.transcriptEveryMs > 0
        ? {
            kind: 'local_transcription',
            perMs: 1 / rates.transcriptEveryMs,
            frame: () => JSON.stringify({
              type: 'local_transcription', text: 'the quick brown fox jumps over the lazy dog', isFinal: true, transcribeLanguage: 'en-US'
            })
          }
        : null,
      rates.audioFramesPerSecond > 0 ? { kind: 'audio', perMs: rates.audioFramesPerSecond / 1000, frame: () => audio } : null
    ]
    this.streams = candidates.filter((s): s is Omit<Stream, 'due'> => s !== null).map(s => ({ ...s, due: 0 }))
  }

  get active (): boolean { return this.streams.length > 0 }

  start (): void {
    if (this.timer !== null || this.streams.length === 0) return
    this.lastTick = performance.now()
    this.timer = setInterval(() => this.tick(), TICK_MS)
  }

  stop (): void {
    if (this.timer !== null) clearInterval(this.timer)
    this.timer = null
  }

  private tick (): void {
    const now = performance.now()
    const elapsed = now - this.lastTick
    this.lastTick = now
    const open = this.fleet.open
    for (const stream of this.streams) {
      stream.due += stream.perMs * elapsed * open
      // A tick never sends more than one frame per open socket per kind: rates the
      // machine cannot keep up with are capped instead of piling up without bound.
      const count = Math.min(Math.floor(stream.due), open)
      stream.due = Math.min(stream.due - count, open)
      for (let i = 0; i < count; i += 1) {
        const ws = this.fleet.nextOpen()
        if (ws === null) break
        this.fleet.send(ws, stream.frame(), stream.kind)
      }
    }
  }
}
