/**
 * A restart storm (PHONE.md section 5): N phones connected to a Tether
 * process, the process is stopped with SIGTERM as a node restart does, a new
 * process starts on the same port, and every phone comes back 5 s after its
 * close, all in step, with the phone's REST calls at open and ack. Every phone
 * comes from 127.0.0.1, as phones behind a load balancer do (TRUST_PROXY off).
 *
 * The fleet is connected to the first process with the per-address upgrade
 * limit lifted (at the default it would take N / 10 seconds to fill); the
 * restarted process runs with the limit under test (`default`: Tether's own
 * default). Measured: SIGTERM to every phone acked again, refused upgrades by
 * HTTP status, and how many times each phone had to try (a phone that tries
 * again and again is cycling).
 */
import { performance } from 'node:perf_hooks'
import { pinForFleet } from './affinity.js'
import { PhoneFleet } from './phone-fleet.js'
import { startServerProcess, freePort, type ServerProcess } from './server-process.js'
import { sleep, targetSpec, type BenchContext } from './suites.js'
import { simEmail } from './tokens.js'

/** `default`: the server's own UPGRADE_RATE_LIMIT; a number: that limit; `off`: none in effect. */
export type StormLimit = 'default' | 'off' | number

export interface StormOptions {
  phones: number
  limit: StormLimit
  /** How long to wait for every phone to be acked again before giving up. */
  timeoutMs: number
  /** After all are back: watch this long for phones that fall out again. */
  settleMs: number
  concurrency: number
  /** Nice value for the servers and the phones (0: as they are). */
  nice: number
}

export interface StormResult {
  phones: number
  limit: string
  pinning: string
  /** Phones acked before the restart. */
  filled: number
  /** SIGTERM to the last phone's close (NaN: they were never all closed at once). */
  drainMs: number
  /** SIGTERM to the new process answering /health. */
  restartMs: number
  /** SIGTERM to every phone acked again; null when not within the timeout. */
  allAckedMs: number | null
  /** The last close of the old process to every phone acked again. */
  allAckedAfterCloseMs: number | null
  ackedAtEnd: number
  /** Acked phones every 5 s after SIGTERM. */
  timeline: number[]
  /** Connects per phone after SIGTERM: how many phones needed 1, 2, 3, ... attempts. */
  attempts: Record<string, number>
  maxAttempts: number
  /** Phones that needed more than one attempt. */
  cycled: number
  refusals: Record<string, number>
  connectErrors: Record<string, number>
  reconnects: Record<string, number>
  /** REST answers after SIGTERM by route and status. */
  rest: Record<string, number>
  /** Phones acked at the end that fell out again during the settle time. */
  droppedAfter: number
  /** When not all came back: the ack rate over the last 30 s and the time the rest would take at it. */
  tailRatePerSecond: number
  projectedAllMs: number | null
}

const TIMELINE_MS = 5000

function limitEnv (limit: StormLimit): Record<string, string> {
  if (limit === 'off') return { UPGRADE_RATE_LIMIT: '100000000' }
  if (limit === 'default') return {}
  return { UPGRADE_RATE_LIMIT: String(limit) }
}

function describeLimit (limit: StormLimit): string {
  if (limit === 'off') return 'off (UPGRADE_RATE_LIMIT=100000000)'
  if (limit === 'default') return 'default (UPGRADE_RATE_LIMIT and USER_CONNECTS_PER_MINUTE unset)'
  return `UPGRADE_RATE_LIMIT=${limit}`
}

function diff (after: Record<string, number>, before: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {}
  for (const [key, value] of Object.entries(after)) {
    const d = value - (before[key] ?? 0)
    if (d !== 0) out[key] = d
  }
  return out
}

export async function restartStorm (ctx: BenchContext, options: StormOptions): Promise<StormResult> {
  const port = await freePort()
  const pinning = pinForFleet(options.nice)
  const base = targetSpec(ctx, 'tether', port)
  const openFiles = options.phones + 2048
  let server: ServerProcess = await startServerProcess({ ...base, name: 'tether (before the restart)', openFiles, ...pinning.server })
  const fleet = new PhoneFleet({
    baseUrl: server.httpUrl,
    tokenFor: index => ctx.sign(simEmail('storm', index), `storm-${index}`),
    pingIntervalMs: 5000,
    reconnectDelayMs: 5000,
    rest: true,
    lc3: null,
    framesPerMessage: 10,
    handshakeTimeoutMs: 10_000
  })
  try {
    const ticker = setInterval(() => ctx.progress(`storm: connecting ${fleet.open}/${options.phones}`, true), 500)
    try {
      await fleet.grow(options.phones, options.concurrency, 300_000)
      await fleet.until(() => fleet.open >= options.phones, 30_000)
    } finally {
      clearInterval(ticker)
    }
    const filled = fleet.open
    // Let the fill's REST calls finish so the counts after the restart are the storm's own.
    await sleep(2000)
    const before = structuredClone(fleet.stats)
    for (const phone of fleet.phones) phone.attempts = 0

    ctx.progress(`storm: SIGTERM with ${filled} phones, then a new process on port ${port} (limit ${describeLimit(options.limit)})`)
    const signalled = server.terminate()
    await Promise.race([server.exited, sleep(30_000)])
    server.kill()
    const env = { ...base.env, ...limitEnv(options.limit) }
    if (options.limit === 'default') {
      delete env.UPGRADE_RATE_LIMIT
      delete env.USER_CONNECTS_PER_MINUTE
    }
    server = await startServerProcess({ ...base, env, name: 'tether (after the restart)', openFiles, ...pinning.server })
    const restartMs = performance.now() - signalled
    const timeline: number[] = []
    let nextMark = signalled + TIMELINE_MS
    const recent: Array<{ at: number, open: number }> = []
    let allAckedAt: number | null = null
    while (performance.now() - signalled < options.timeoutMs) {
      const now = performance.now()
      if (now >= nextMark) {
        timeline.push(fleet.open)
        nextMark += TIMELINE_MS
      }
      recent.push({ at: now, open: fleet.open })
      while (recent.length > 0 && now - (recent[0] as { at: number }).at > 30_000) recent.shift()
      ctx.progress(`storm: ${fleet.open}/${filled} acked again, ${((now - signalled) / 1000).toFixed(0)} s after SIGTERM, ` +
        `${Object.entries(diff(fleet.stats.refusals, before.refusals)).map(([k, v]) => `${v} x ${k}`).join(', ') || 'none'} refused`, true)
      if (fleet.open >= filled && fleet.allClosedAt > signalled) {
        allAckedAt = now
        break
      }
      await sleep(100)
    }
    const lastCloseAt = fleet.allClosedAt > signalled ? fleet.allClosedAt : Number.NaN
    const ackedAtEnd = fleet.open
    let droppedAfter = 0
    if (allAckedAt !== null) {
      await sleep(options.settleMs)
      droppedAfter = Math.max(0, ackedAtEnd - fleet.open)
    }
    const attempts: Record<string, number> = {}
    let maxAttempts = 0
    let cycled = 0
    for (const phone of fleet.phones) {
      attempts[phone.attempts] = (attempts[phone.attempts] ?? 0) + 1
      maxAttempts = Math.max(maxAttempts, phone.attempts)
      if (phone.attempts > 1) cycled += 1
    }
    const first = recent[0]
    const last = recent.at(-1)
    const tailRatePerSecond = first !== undefined && last !== undefined && last.at > first.at
      ? (last.open - first.open) / ((last.at - first.at) / 1000)
      : Number.NaN
    const remaining = filled - ackedAtEnd
    return {
      phones: options.phones,
      limit: describeLimit(options.limit),
      pinning: pinning.note,
      filled,
      drainMs: lastCloseAt - signalled,
      restartMs,
      allAckedMs: allAckedAt === null ? null : allAckedAt - signalled,
      allAckedAfterCloseMs: allAckedAt === null ? null : allAckedAt - lastCloseAt,
      ackedAtEnd,
      timeline,
      attempts,
      maxAttempts,
      cycled,
      refusals: diff(fleet.stats.refusals, before.refusals),
      connectErrors: diff(fleet.stats.connectErrors, before.connectErrors),
      reconnects: diff(fleet.stats.reconnects, before.reconnects),
      rest: diff(fleet.stats.rest, before.rest),
      droppedAfter,
      tailRatePerSecond,
      projectedAllMs: remaining <= 0
        ? null
        : tailRatePerSecond > 0 ? options.timeoutMs + remaining / tailRatePerSecond * 1000 : null
    }
  } finally {
    fleet.stop()
    server.terminate()
    await Promise.race([server.exited, sleep(15_000)])
    server.kill()
    pinning.release()
  }
}
