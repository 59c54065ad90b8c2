/**
 * A realistic phone fleet against one server, N phones at a time up a ladder
 * (bench/phone-fleet.ts for the phones, bench/fleet-apps.ts for the app): each
 * phone pings every 5 s, its app shows a display about once a second, the
 * phone presses a button every 5 s and the app answers it with a display, and
 * one phone in ten streams LC3 (the 40-byte test vector, 100 frames/s) to an
 * app subscribed to `audio_chunk`. After a warm-up, one window is measured:
 * server CPU and RSS per phone, ping->pong, button->display (at the phone's
 * socket), LC3 message->PCM at the app, and the server's event-loop delay.
 *
 * A step "holds" when every phone stayed connected, no phone reconnected for a
 * missed pong and every p99 is under 100 ms; the capacity of the core is the
 * largest step that held below the first that broke. The machine is shared, so
 * the first step that breaks is tried once more (a step whose load generator
 * itself stalled, up to twice more), then one step half-way back to the last
 * that held is run. When only a p99 broke (no phone lost, CPU under
 * 90%), one more step up shows how the cost grows; then the ladder stops.
 *
 * The press comes half a second after the last periodic display, so the
 * display throttle (one per view per DISPLAY_INTERVAL_MS, 300 ms) does not
 * hold the answer back: what is timed is the server, not the throttle.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { loadavg } from 'node:os'
import { join } from 'node:path'
import { performance, monitorEventLoopDelay } from 'node:perf_hooks'
import { fileURLToPath } from 'node:url'
import { pinForFleet, type Pinning } from './affinity.js'
import { FleetApps } from './fleet-apps.js'
import { PhoneFleet, type FleetPhone, type ReconnectReason } from './phone-fleet.js'
import { collectGarbage, scrapeLoopDelay, scrapeMemory, scrapeSum, startCpuProfile, type LoopDelay } from './probes.js'
import { freePort, startServerProcess, threadCpuMs, type ServerProcess } from './server-process.js'
import { summarize, type LatencySummary } from './stats.js'
import { sleep, targetSpec, type BenchContext, type TargetName } from './suites.js'
import { simEmail } from './tokens.js'

export interface FleetLadderOptions {
  /** Phone counts to try, ascending. */
  ladder: number[]
  warmupMs: number
  windowMs: number
  /** Share of the phones that stream LC3 (0.1: one in ten). */
  streamShare: number
  /** Handshakes in flight while the fleet connects. */
  concurrency: number
  /** The p99 every latency must stay under for a step to hold. */
  p99LimitMs: number
  /** Nice value for the server and the load generator (0: as they are; negative needs root). */
  nice: number
}

export interface FleetStep {
  target: TargetName
  phones: number
  streaming: number
  /** Phones acked at the end of the window. */
  open: number
  connectMs: number
  windowMs: number
  serverCpuPercent: number
  /** Of which the main thread (the event loop); the rest is the other threads (LC3 worker, GC helpers). */
  mainThreadCpuPercent: number
  /** 1-minute load average at the end of the window: the machine is shared. */
  loadAverage: number
  rssBytes: number
  rssPerPhoneBytes: number
  pingPong: LatencySummary
  buttonDisplay: LatencySummary
  /** The periodic display: the app's send -> display_event at the phone. */
  tickDisplay: LatencySummary
  audio: LatencySummary
  /** Audio messages at the apps over LC3 messages the phones sent, in the window. */
  audioDelivered: number
  audioLost: number
  /** Tether's tether_lc3_messages_dropped_total over the window (NaN for the baseline). */
  lc3Dropped: number
  /** The server's event-loop delay over the window, in ms beyond the monitor's 10 ms sampling interval. */
  serverLoop: LoopDelay
  /** This process's own loop delay p99 over the window: a busy load generator would skew every latency. */
  loadLoopP99: number
  reconnects: Record<ReconnectReason, number>
  refusals: Record<string, number>
  rest: Record<string, number>
  holds: boolean
  /** Why the step did not hold. */
  broke: string[]
  /** Set when this is a later try: why each earlier one broke. */
  retried?: string[]
  /**
   * The load generator's own loop delay p99 reached half the limit: its
   * latency samples carry its own stalls, so a break says little about the server.
   */
  stalled: boolean
}

export interface FleetLadderResult {
  options: FleetLadderOptions
  pinning: string
  steps: Record<TargetName, FleetStep[]>
  /** Largest step that held, null when none did or the target was not run. */
  capacity: Record<TargetName, number | null>
}

const FRAME_BYTES = 40
const FRAMES_PER_MESSAGE = 10
const DRIVER_TICK_MS = 500
/** Of every ten ticks (5 s): tick 0 the press, the even ticks the periodic display. */
const PRESS_TICK = 5
const USER_PREFIX = 'fleet'
/**
 * Both loop monitors sample every 10 ms and record the whole interval between
 * samples (an idle loop reads 10 ms): the delay is what lies beyond it.
 */
const LOOP_RESOLUTION_MS = 10
const beyondResolution = (ms: number): number => Math.max(0, ms - LOOP_RESOLUTION_MS)

/** What one phone's workload is waiting for: its press's answer, and the ticks it sent. */
class Driver {
  tick = 0
  pressedAt = 0
  pressStamp = ''
  readonly tickSentAt = new Map<string, number>()
  timer: NodeJS.Timeout | null = null
  constructor (readonly phone: FleetPhone, readonly userId: string) {}
}

interface Samples { button: number[], tick: number[] }

const userOf = (index: number): string => simEmail(USER_PREFIX, index)

async function runStep (ctx: BenchContext, name: TargetName, phones: number, options: FleetLadderOptions,
  placement: Pinning['server'], lc3Frames: Buffer): Promise<FleetStep> {
  const port = await freePort()
  const base = targetSpec(ctx, name, port)
  const server: ServerProcess = await startServerProcess({
    ...base,
    name: `${name} fleet ${phones}`,
    openFiles: 3 * phones + 2048,
    ...placement
  })
  const streamEvery = options.streamShare > 0 ? Math.max(1, Math.round(1 / options.streamShare)) : 0
  const streams = (index: number): boolean => streamEvery > 0 && index % streamEvery === 0
  const streamingUsers = new Set<string>()
  for (let i = 0; i < phones; i += 1) if (streams(i)) streamingUsers.add(userOf(i))
  const apps = new FleetApps({ packageName: ctx.app.packageName, apiKey: ctx.app.apiKey, wantsAudio: userId => streamingUsers.has(userId) })
  const drivers: Driver[] = []
  const samples: Samples = { button: [], tick: [] }
  let fleet: PhoneFleet | null = null
  try {
    const inspector = server.inspectorUrl()
    if (inspector !== null) await collectGarbage(inspector)
    const before = await scrapeMemory(server.httpUrl)
    if (name === 'tether') ctx.app.onSessionRequest(request => apps.attach(request))
    fleet = new PhoneFleet({
      baseUrl: server.httpUrl,
      tokenFor: index => ctx.sign(userOf(index), `${USER_PREFIX}-${index}`),
      pingIntervalMs: 5000,
      reconnectDelayMs: 5000,
      rest: true,
      lc3: { frames: lc3Frames, frameBytes: FRAME_BYTES },
      framesPerMessage: FRAMES_PER_MESSAGE,
      handshakeTimeoutMs: 10_000,
      onAck: phone => {
        // The phone starts the app once (Tether remembers it); the baseline's app connects by itself.
        if (phone.acks !== 1) return
        if (name === 'tether') phone.fleet.restCall(phone, 'POST', `/apps/${encodeURIComponent(ctx.app.packageName)}/start`)
        else apps.connectDirect(userOf(phone.index), `${server.wsUrl}/app-ws`)
      },
      onDisplay: (phone, message, at) => {
        const driver = drivers[phone.index]
        const text = message.layout?.text
        if (driver === undefined || typeof text !== 'string') return
        if (text.startsWith('button ')) {
          if (text.slice(7) === driver.pressStamp && driver.pressedAt > 0) {
            samples.button.push(at - driver.pressedAt)
            driver.pressedAt = 0
          }
        } else {
          const sentAt = driver.tickSentAt.get(text)
          if (sentAt !== undefined) {
            samples.tick.push(at - sentAt)
            driver.tickSentAt.delete(text)
          }
        }
      },
      onAudioSent: (phone, at) => apps.audioSent(userOf(phone.index), at)
    })
    const connectStarted = performance.now()
    const progress = setInterval(() => {
      ctx.progress(`${name}: fleet of ${phones}: ${fleet?.open ?? 0} acked, ${apps.ready} apps ready`, true)
    }, 500)
    try {
      await fleet.grow(phones, options.concurrency, 120_000)
      const streamingCount = streamingUsers.size
      const currentFleet = fleet
      await fleet.until(() => apps.ready >= phones &&
        currentFleet.phones.filter(p => p.streaming).length >= streamingCount, 60_000)
    } finally {
      clearInterval(progress)
    }
    const connectMs = performance.now() - connectStarted

    for (const phone of fleet.phones) {
      const driver = new Driver(phone, userOf(phone.index))
      drivers[phone.index] = driver
      const drive = (): void => {
        const step = driver.tick % 10
        driver.tick += 1
        if (step % 2 === 0) {
          const text = `tick ${driver.tick}`
          if (apps.display(driver.userId, text)) driver.tickSentAt.set(text, performance.now())
          // Never answered ticks (a drop) must not pile up.
          if (driver.tickSentAt.size > 8) driver.tickSentAt.clear()
        } else if (step === PRESS_TICK) {
          const stamp = new Date().toISOString()
          if (phone.pressButton(stamp)) {
            driver.pressStamp = stamp
            driver.pressedAt = performance.now()
          }
        }
      }
      // Spread the phones over the tick so the load is even, as real phones are.
      driver.timer = setTimeout(() => {
        drive()
        driver.timer = setInterval(drive, DRIVER_TICK_MS)
      }, Math.random() * DRIVER_TICK_MS)
    }

    ctx.progress(`${name}: fleet of ${phones}: warm-up ${options.warmupMs} ms`)
    await sleep(options.warmupMs)
    fleet.takePongSamples()
    apps.takeAudioSamples()
    samples.button = []
    samples.tick = []
    const deliveredBefore = apps.audioMessages
    const lostBefore = apps.audioLost
    const audioBefore = fleet.stats.audioMessages
    const droppedBefore = name === 'tether' ? await scrapeSum(server.httpUrl, 'tether_lc3_messages_dropped_total') : Number.NaN
    await scrapeLoopDelay(server.httpUrl)
    const loadLoop = monitorEventLoopDelay({ resolution: LOOP_RESOLUTION_MS })
    loadLoop.enable()
    const stopProfile = ctx.options.profileDir === null || inspector === null ? null : await startCpuProfile(inspector)
    const cpuBefore = server.cpuMs()
    const threadsBefore = threadCpuMs(server.pid)
    const windowStarted = performance.now()
    while (performance.now() - windowStarted < options.windowMs) {
      ctx.progress(`${name}: fleet of ${phones}: measuring, ${((performance.now() - windowStarted) / 1000).toFixed(0)}/` +
        `${(options.windowMs / 1000).toFixed(0)} s, ${fleet.open} open, ${fleet.stats.reconnects.missed_pong} missed pongs`, true)
      await sleep(Math.min(1000, options.windowMs))
    }
    const windowMs = performance.now() - windowStarted
    const cpuMs = server.cpuMs() - cpuBefore
    const mainThreadMs = threadCpuMs(server.pid).main - threadsBefore.main
    const loadAverage = loadavg()[0] ?? Number.NaN
    if (stopProfile !== null && ctx.options.profileDir !== null) {
      mkdirSync(ctx.options.profileDir, { recursive: true })
      writeFileSync(join(ctx.options.profileDir, `${name}-fleet-${phones}.cpuprofile`), JSON.stringify(await stopProfile()))
    }
    loadLoop.disable()
    const rawLoop = await scrapeLoopDelay(server.httpUrl)
    const serverLoop = { p50: beyondResolution(rawLoop.p50), p99: beyondResolution(rawLoop.p99), max: beyondResolution(rawLoop.max) }
    const lc3Dropped = name === 'tether' ? await scrapeSum(server.httpUrl, 'tether_lc3_messages_dropped_total') - droppedBefore : Number.NaN
    const audioMessages = fleet.stats.audioMessages - audioBefore
    const audioDelivered = audioMessages === 0 ? Number.NaN : (apps.audioMessages - deliveredBefore) / audioMessages
    const open = fleet.open
    const pingPong = summarize(fleet.takePongSamples())
    const audio = summarize(apps.takeAudioSamples())
    const buttonDisplay = summarize(samples.button)
    const tickDisplay = summarize(samples.tick)
    const memory = await scrapeMemory(server.httpUrl)
    const stats = fleet.stats
    const step: FleetStep = {
      target: name,
      phones,
      streaming: streamingUsers.size,
      open,
      connectMs,
      windowMs,
      serverCpuPercent: cpuMs / windowMs * 100,
      mainThreadCpuPercent: mainThreadMs / windowMs * 100,
      loadAverage,
      rssBytes: memory.rssBytes,
      rssPerPhoneBytes: (memory.rssBytes - before.rssBytes) / phones,
      pingPong,
      buttonDisplay,
      tickDisplay,
      audio,
      audioDelivered,
      audioLost: apps.audioLost - lostBefore,
      lc3Dropped,
      serverLoop,
      loadLoopP99: beyondResolution(loadLoop.percentile(99) / 1e6),
      reconnects: { ...stats.reconnects },
      refusals: { ...stats.refusals },
      rest: { ...stats.rest },
      holds: false,
      broke: [],
      stalled: false
    }
    judgeStep(step, options)
    return step
  } finally {
    for (const driver of drivers) if (driver?.timer != null) clearInterval(driver.timer)
    fleet?.stop()
    apps.close()
    if (name === 'tether') ctx.app.onSessionRequest(null)
    server.terminate()
    const exited = await Promise.race([server.exited.then(() => true), sleep(15_000).then(() => false)])
    if (!exited) server.kill()
  }
}

/** The step holds when every phone stayed, none missed a pong and every p99 is under the limit. */
function judgeStep (step: FleetStep, options: FleetLadderOptions): void {
  const limit = options.p99LimitMs
  const broke: string[] = []
  if (step.open < step.phones) broke.push(`${step.phones - step.open} phones not connected`)
  if (step.reconnects.missed_pong > 0) broke.push(`${step.reconnects.missed_pong} missed-pong reconnects`)
  const check = (label: string, value: number, required: boolean): void => {
    if (!Number.isFinite(value)) {
      if (required) broke.push(`no ${label} samples`)
    } else if (value >= limit) broke.push(`${label} p99 ${value.toFixed(1)} ms`)
  }
  check('ping->pong', step.pingPong.p99, true)
  check('button->display', step.buttonDisplay.p99, true)
  check('audio->app', step.audio.p99, step.streaming > 0)
  check('server loop delay', step.serverLoop.p99, true)
  step.broke = broke
  step.holds = broke.length === 0
  step.stalled = step.loadLoopP99 >= limit / 2
}

export async function fleetLadder (ctx: BenchContext, targets: readonly TargetName[], options: FleetLadderOptions): Promise<FleetLadderResult> {
  const lc3Frames = readFileSync(fileURLToPath(new URL('../../test/vectors/lc3/frames-40.lc3', import.meta.url)))
  const pinning = pinForFleet(options.nice)
  const result: FleetLadderResult = {
    options,
    pinning: pinning.note,
    steps: { tether: [], baseline: [] },
    capacity: { tether: null, baseline: null }
  }
  const run = async (name: TargetName, phones: number, retry: boolean): Promise<FleetStep> => {
    ctx.progress(`${name}: fleet of ${phones} phones`)
    let step = await runStep(ctx, name, phones, options, pinning.server, lc3Frames)
    // The machine is shared: a step that decides the capacity gets a second try, and one measured by a
    // stalled load generator up to two more; the report says so.
    const earlier: string[] = []
    while (!step.holds && earlier.length < (step.stalled ? 2 : retry ? 1 : 0)) {
      logStep(step, `try ${earlier.length + 1}`)
      earlier.push(step.broke.join('; '))
      step = await runStep(ctx, name, phones, options, pinning.server, lc3Frames)
    }
    if (earlier.length > 0) step.retried = earlier
    logStep(step)
    result.steps[name].push(step)
    return step
  }
  try {
    for (const name of targets) {
      let held: number | null = null
      let broken = 0
      for (const phones of options.ladder) {
        const step = await run(name, phones, broken === 0)
        if (step.holds) {
          if (broken === 0) held = phones
          continue
        }
        broken += 1
        if (broken === 1) {
          // One step half-way between the last that held and this one sharpens the reading.
          const middle = held === null ? Math.floor(phones / 2) : Math.round((held + phones) / 2 / 50) * 50
          if (middle > (held ?? 0) && middle < phones && (await run(name, middle, true)).holds) held = middle
        }
        // Past a p99 break the ladder goes one step further (how CPU and memory grow), unless phones were lost.
        if (broken >= 2 || step.open < step.phones || step.reconnects.missed_pong > 0 || step.serverCpuPercent >= 90) break
      }
      result.capacity[name] = held
    }
  } finally {
    pinning.release()
  }
  return result
}

function logStep (step: FleetStep, label = ''): void {
  process.stderr.write(`[bench] ${step.target} fleet ${step.phones}${label === '' ? '' : ` (${label})`}: ` +
    `${step.holds ? 'holds' : `breaks (${step.broke.join(', ')})`}; cpu ${step.serverCpuPercent.toFixed(0)}% ` +
    `(main thread ${step.mainThreadCpuPercent.toFixed(0)}%), load average ${step.loadAverage.toFixed(1)}, ` +
    `ping p99 ${step.pingPong.p99.toFixed(1)}, button p99 ${step.buttonDisplay.p99.toFixed(1)}, audio p99 ${step.audio.p99.toFixed(1)}, ` +
    `loop p99 ${step.serverLoop.p99.toFixed(1)} ms, load loop p99 ${step.loadLoopP99.toFixed(1)} ms\n`)
}
