/**
 * V8's own account of a server's garbage collections (`node --trace-gc`, one
 * line per collection on stdout), timed as the benchmark receives the lines, so
 * a phase can ask which collections fell inside it. A resume's tail on one core
 * is decided mostly by whether a full collection (mark-compact) of the heap
 * lands among the resumes: the report says so per round.
 */

/** `Scavenge` empties the young generation; `Mark-Compact` (and `Mark-Compact (reduce)`) walks the whole heap. */
export type GcKind = 'scavenge' | 'mark-compact'

export interface GcEvent {
  kind: GcKind
  /** performance.now() in the benchmark when the line arrived. */
  at: number
  /** The main thread's pause, as V8 prints it (the first of its "a / b ms"). */
  pauseMs: number
  /** Incremental marking done on the main thread before the pause ("+ N ms in M steps"). */
  stepsMs: number
}

export interface GcWindow {
  scavenges: number
  markCompacts: number
  /** Pauses plus incremental marking steps on the main thread. */
  mainThreadMs: number
}

// e.g. "[123:0x5e]   1234 ms: Mark-Compact 82.5 (112.3) -> 74.1 (114.1) MB, 12.21 / 0.01 ms  (+ 15.1 ms in 29 steps ..."
const LINE = /\d+ ms: (Scavenge|Mark-Compact)\b[^,]*, ([\d.]+) \/ [\d.]+ ms(?:\s+\(\+ ([\d.]+) ms in)?/

export class GcTrace {
  private readonly events: GcEvent[] = []
  /** Text of a line cut by a chunk boundary. */
  private partial = ''

  /** Feed stdout as it arrives; lines that are not collections (the server's logs) are skipped. */
  add (chunk: string, at: number): void {
    const lines = (this.partial + chunk).split('\n')
    this.partial = lines.pop() ?? ''
    for (const line of lines) {
      const match = LINE.exec(line)
      if (match === null) continue
      this.events.push({
        kind: match[1] === 'Scavenge' ? 'scavenge' : 'mark-compact',
        at,
        pauseMs: Number(match[2]),
        stepsMs: Number(match[3] ?? 0)
      })
    }
  }

  /** The collections whose line arrived between `from` and `to` (performance.now()). */
  between (from: number, to: number): GcWindow {
    const inside = this.events.filter(event => event.at >= from && event.at <= to)
    return {
      scavenges: inside.filter(event => event.kind === 'scavenge').length,
      markCompacts: inside.filter(event => event.kind === 'mark-compact').length,
      mainThreadMs: inside.reduce((sum, event) => sum + event.pauseMs + event.stepsMs, 0)
    }
  }
}

/** ` (GC meanwhile: ...)` for a report line; empty when the collections were not traced. */
export function gcNote (gc: GcWindow | null): string {
  if (gc === null) return ''
  return ` (GC meanwhile: ${gc.markCompacts} mark-compact, ${gc.scavenges} scavenges, ${gc.mainThreadMs.toFixed(0)} ms on the main thread)`
}
