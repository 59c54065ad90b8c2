/**
 * One burst of resumes, as the main suite measures it: drop some open glasses, let the
 * server see every drop, start clear of a ping tick, reconnect them all at once.
 */
import { performance } from 'node:perf_hooks'
import { setTimeout as sleep } from 'node:timers/promises'
import type { ConnectReport, Fleet } from './fleet.js'
import type { GcWindow } from './gc-trace.js'
import { threadCpuMs, type ServerProcess } from './server-process.js'

export interface ResumeBurstOptions {
  count: number
  /** Where in each step of the drop's spread to start (Fleet.drop): 0.5 takes other glasses than 0. */
  shift: number
  pingMs: number
}

export interface ResumeBurst extends ConnectReport {
  /** Acks that came back with the same session, and those that got a new one. */
  resumed: number
  mismatches: number
  /** The resumes began right after a tick that pinged every socket at once (see Fleet.afterPingBurst). */
  afterPingTick: boolean
  /** The server's garbage collections while the resumes ran. */
  gc: GcWindow | null
  /** Server CPU (user + system, /proc) per acked resume, ms, and the main thread's part of it. */
  cpuMsPerSession: number
  mainMsPerSession: number
}

/** `measure`, when given, wraps the resumes themselves (the main suite profiles them as a phase). */
export async function resumeBurst (server: ServerProcess, fleet: Fleet, options: ResumeBurstOptions,
  measure: (work: () => Promise<ConnectReport>) => Promise<ConnectReport> = async work => await work()): Promise<ResumeBurst> {
  const dropped = fleet.drop(options.count, options.shift)
  // Long enough for the server to see every drop and start each grace period.
  await sleep(1000)
  // A server that pings every socket in one tick (the raw baseline) stalls for that tick: resume right after one, so
  // no round's tail depends on whether the tick fell among the resumes. Tether's sweep pings a tenth of its sockets
  // every half second: no such tick comes, and one or two of its sweeps fall among the resumes.
  const afterPingTick = await fleet.afterPingBurst(0.5, 300, options.pingMs + 1000)
  const resumedBefore = fleet.stats.resumed
  const mismatchesBefore = fleet.stats.resumeMismatches
  const cpuBefore = server.cpuMs()
  const mainBefore = threadCpuMs(server.pid).main
  const started = performance.now()
  const report = await measure(async () => await fleet.resume(dropped))
  const acked = Math.max(1, report.acked)
  const cpuMsPerSession = (server.cpuMs() - cpuBefore) / acked
  const mainMsPerSession = (threadCpuMs(server.pid).main - mainBefore) / acked
  return {
    ...report,
    resumed: fleet.stats.resumed - resumedBefore,
    mismatches: fleet.stats.resumeMismatches - mismatchesBefore,
    afterPingTick,
    gc: await server.gcSince(started),
    cpuMsPerSession,
    mainMsPerSession
  }
}
