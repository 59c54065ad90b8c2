/**
 * Latency samples and their percentiles. Samples are kept whole (a bench run
 * records at most a few tens of thousands), so percentiles are exact.
 */

export interface LatencySummary {
  count: number
  p50: number
  p99: number
  max: number
}

/** Nearest-rank percentile of an ascending array; NaN when empty. */
export function percentile (sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))
  return sorted[rank] as number
}

export function summarize (samples: readonly number[]): LatencySummary {
  const sorted = [...samples].sort((a, b) => a - b)
  return {
    count: sorted.length,
    p50: percentile(sorted, 50),
    p99: percentile(sorted, 99),
    max: sorted.length === 0 ? Number.NaN : sorted[sorted.length - 1] as number
  }
}

/** Milliseconds with one decimal, or `-` when there is nothing to show. */
export function fmtMs (value: number): string {
  return Number.isFinite(value) ? value.toFixed(1) : '-'
}

/** Bump a counter in a string-keyed tally. */
export function tally (counts: Record<string, number>, key: string | number): void {
  counts[key] = (counts[key] ?? 0) + 1
}
