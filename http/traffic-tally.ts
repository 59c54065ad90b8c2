/**
 * Glasses traffic counted once per message, in plain numbers: the hot path is an
 * addition, and every Prometheus series about traffic (by direction and kind,
 * and the per-kind totals kept for dashboards) is read from here at scrape time.
 */
import type { Counter } from 'prom-client'

type Direction = 'in' | 'out'
type Measure = 'messages' | 'bytes'

interface Tally { direction: Direction, kind: string, messages: number, bytes: number }

export class TrafficTally {
  private readonly byKey = new Map<string, Tally>()

  add (direction: Direction, kind: string, bytes: number): void {
    const tally = this.get(direction, kind)
    tally.messages += 1
    tally.bytes += bytes
  }

  /** Set a counter labelled by direction and kind to the tally's totals. */
  report (counter: Counter<'direction' | 'kind'>, measure: Measure): void {
    counter.reset()
    for (const tally of this.byKey.values()) counter.inc({ direction: tally.direction, kind: tally.kind }, tally[measure])
  }

  /** Set an unlabelled counter to one (direction, kind)'s total; zero before the first such message. */
  reportOne (counter: Counter, direction: Direction, kind: string, measure: Measure): void {
    counter.reset()
    counter.inc(this.byKey.get(`${direction}:${kind}`)?.[measure] ?? 0)
  }

  private get (direction: Direction, kind: string): Tally {
    const key = `${direction}:${kind}`
    let tally = this.byKey.get(key)
    if (tally === undefined) {
      tally = { direction, kind, messages: 0, bytes: 0 }
      this.byKey.set(key, tally)
    }
    return tally
  }
}
