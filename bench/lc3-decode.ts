/**
 * LC3 decoding: what it costs and where it should run. Part of `npm run bench`
 * (bench/run.ts), or alone: `node dist/bench/lc3-decode.js [--phones 200] [--seconds 5] [--warmup 2] [--rounds 1]`
 * after `npm run build`.
 *
 * 1. Codec cost: one stream's frames (the committed test vectors,
 *    test/vectors/lc3/) decoded in 10-frame messages for a while after a
 *    warm-up, as ms of CPU per second of audio for one streaming phone, and so
 *    how many streaming phones one core holds; for lc3codec through
 *    audio/lc3-decoder.ts (what Tether runs), and for Google's liblc3 through
 *    koffi when the system has it (it is only a yardstick: Tether must start
 *    without any system package).
 * 2. Event loop under load: `phones` simulated phones, each pushing 100 frames/s
 *    in 10-frame messages (frame sizes 20, 40, 60 in turn), through
 *    audio/lc3-decoding.ts in this process, once decoded on the main thread and
 *    once in its worker, plus an idle row with no decoding as the floor. The
 *    figures are what every other session on the node would feel: the event-loop
 *    delay (perf_hooks.monitorEventLoopDelay, 1 ms resolution) and the main
 *    thread's utilisation; with them, the time from push to PCM and whether the
 *    decoder kept up.
 */
import { existsSync, readFileSync } from 'node:fs'
import { cpus } from 'node:os'
import { monitorEventLoopDelay, performance } from 'node:perf_hooks'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { parseArgs } from 'node:util'
import { LC3_FRAME_SIZES, LC3_SAMPLES_PER_FRAME, Lc3Decoder, type Lc3FrameSize } from '../audio/lc3-decoder.js'
import { createLc3Decoding, type Lc3DecodingThread, type StreamDecoder } from '../audio/lc3-decoding.js'
import { formatLc3Section } from './report.js'
import { summarize, type LatencySummary } from './stats.js'

export interface Lc3BenchOptions {
  /** Simulated streaming phones in the load phase. */
  phones: number
  /** Measured seconds per load row (after `warmupSeconds`). */
  seconds: number
  warmupSeconds: number
  /** Frames per pushed message. */
  framesPerMessage: number
  /** Measured milliseconds of decoding per codec and frame size. */
  codecMs: number
  /** Load rows (idle, main thread, worker) repeated in turn, so other work on the machine hits each alike. */
  rounds: number
}

export const LC3_BENCH_DEFAULTS: Lc3BenchOptions = { phones: 200, seconds: 5, warmupSeconds: 2, framesPerMessage: 10, codecMs: 1500, rounds: 1 }

export interface CodecCost {
  frameBytes: Lc3FrameSize
  usPerFrame: number
  /** ms of CPU per second of audio of one streaming phone (100 frames). */
  cpuMsPerAudioSecond: number
  /** Streaming phones one core would decode, nothing else running. */
  phonesPerCore: number
}

export interface CodecFigures {
  codec: 'lc3codec' | 'liblc3'
  /** Empty with a note when the codec could not be measured. */
  costs: CodecCost[]
  note: string | null
  /** liblc3 only: SNR (dB) of lc3codec's decode against liblc3's on the same frames, per frame size. */
  agreementDb?: Partial<Record<Lc3FrameSize, number>>
}

export type LoadMode = 'idle' | Lc3DecodingThread

export interface LoadFigures {
  mode: LoadMode
  round: number
  phones: number
  seconds: number
  /** Event-loop delay seen by everything else on the main thread (ms). */
  loopDelay: { p50: number, p99: number, max: number }
  /** Fraction of the main thread's time spent running (perf_hooks event-loop utilisation). */
  mainThreadUtilisation: number
  /** CPU of the whole process, worker included, as % of one core. */
  processCpuPercent: number
  /** From when a message was due (the phone sent it) to its PCM in the callback (ms); empty when idle. */
  pcmLatency: LatencySummary
  framesPushed: number
  framesDecoded: number
  messagesDropped: number
}

export interface Lc3BenchResult {
  options: Lc3BenchOptions
  cores: number
  codecs: CodecFigures[]
  load: LoadFigures[]
}

/** The vectors live in the source tree; this file runs from dist/bench/ (built) or bench/ (sources). */
function vectorDir (): string {
  for (const relative of ['../../test/vectors/lc3/', '../test/vectors/lc3/']) {
    const dir = fileURLToPath(new URL(relative, import.meta.url))
    if (existsSync(`${dir}frames-40.lc3`)) return dir
  }
  throw new Error('test/vectors/lc3/ not found: run from a checkout of the repository')
}

function loadFrames (): Record<Lc3FrameSize, Buffer> {
  const dir = vectorDir()
  return { 20: readFileSync(`${dir}frames-20.lc3`), 40: readFileSync(`${dir}frames-40.lc3`), 60: readFileSync(`${dir}frames-60.lc3`) }
}

/** Decodes one message (N frames) of one stream; returns its PCM samples. */
type MessageDecoder = (message: Buffer) => Int16Array

/** Decodes `frames` in messages, looping, first unmeasured for warm-up, then for `ms`: CPU per frame. */
function measureCost (frameBytes: Lc3FrameSize, frames: Buffer, decode: MessageDecoder, ms: number, framesPerMessage: number): CodecCost {
  const messageBytes = frameBytes * framesPerMessage
  const messages: Buffer[] = []
  for (let at = 0; at + messageBytes <= frames.length; at += messageBytes) messages.push(frames.subarray(at, at + messageBytes))
  for (let round = 0; round < 5; round += 1) for (const message of messages) decode(message)
  let decoded = 0
  const cpu = process.cpuUsage()
  const started = performance.now()
  while (performance.now() - started < ms) {
    for (const message of messages) decode(message)
    decoded += messages.length * framesPerMessage
  }
  const used = process.cpuUsage(cpu)
  const cpuMs = (used.user + used.system) / 1000
  const cpuMsPerAudioSecond = cpuMs / (decoded / 100)
  return { frameBytes, usPerFrame: cpuMs * 1000 / decoded, cpuMsPerAudioSecond, phonesPerCore: Math.floor(1000 / cpuMsPerAudioSecond) }
}

function lc3codecDecoder (frameBytes: Lc3FrameSize): MessageDecoder {
  const decoder = new Lc3Decoder(frameBytes)
  return message => {
    const pcm = decoder.decode(message)
    return new Int16Array(pcm.buffer, pcm.byteOffset, pcm.length / 2)
  }
}

/** A fresh liblc3 decoder for one stream. */
type MessageDecoderFactory = (frameBytes: Lc3FrameSize) => MessageDecoder

const LIBLC3_NAMES = ['liblc3.so.1', 'liblc3.so.0', 'liblc3.so', 'liblc3.dylib']

/** liblc3 through koffi (a devDependency), or why it cannot be had. */
async function loadLiblc3 (): Promise<MessageDecoderFactory | string> {
  let koffi: Pick<typeof import('koffi'), 'load'>
  try {
    koffi = await import('koffi')
  } catch {
    return 'koffi not installed (a devDependency)'
  }
  for (const name of LIBLC3_NAMES) {
    let lib: ReturnType<typeof koffi.load>
    try {
      lib = koffi.load(name)
    } catch {
      continue
    }
    const decoderSize = lib.func('unsigned int lc3_decoder_size(int dt_us, int sr_hz)') as (dtUs: number, srHz: number) => number
    const setup = lib.func('void *lc3_setup_decoder(int dt_us, int sr_hz, int sr_pcm_hz, void *mem)') as
      (dtUs: number, srHz: number, srPcmHz: number, mem: Buffer) => unknown
    // fmt 0 is LC3_PCM_FORMAT_S16; stride 1 for mono.
    const decode = lib.func('int lc3_decode(void *decoder, const void *in, int nbytes, int fmt, void *pcm, int stride)') as
      (decoder: unknown, input: Buffer, nbytes: number, fmt: number, pcm: Int16Array, stride: number) => number
    return frameBytes => {
      // The decoder's state lives in this buffer, kept alive by the closure.
      const mem = Buffer.alloc(decoderSize(10_000, 16_000))
      const decoder = setup(10_000, 16_000, 16_000, mem)
      if (decoder === null) throw new Error('lc3_setup_decoder failed')
      return message => {
        const count = Math.floor(message.length / frameBytes)
        const out = new Int16Array(count * LC3_SAMPLES_PER_FRAME)
        for (let i = 0; i < count; i += 1) {
          const frame = message.subarray(i * frameBytes, (i + 1) * frameBytes)
          const pcm = out.subarray(i * LC3_SAMPLES_PER_FRAME, (i + 1) * LC3_SAMPLES_PER_FRAME)
          if (decode(decoder, frame, frameBytes, 0, pcm, 1) < 0) pcm.fill(0)
        }
        void mem
        return out
      }
    }
  }
  return 'liblc3 not installed'
}

function snrDb (reference: Int16Array, other: Int16Array): number {
  let signal = 0
  let noise = 0
  for (let i = 0; i < reference.length; i += 1) {
    const a = reference[i] as number
    const d = a - (other[i] ?? 0)
    signal += a * a
    noise += d * d
  }
  return noise === 0 ? Number.POSITIVE_INFINITY : 10 * Math.log10(signal / noise)
}

async function codecFigures (frames: Record<Lc3FrameSize, Buffer>, options: Lc3BenchOptions): Promise<CodecFigures[]> {
  const ours: CodecFigures = {
    codec: 'lc3codec',
    costs: LC3_FRAME_SIZES.map(size => measureCost(size, frames[size], lc3codecDecoder(size), options.codecMs, options.framesPerMessage)),
    note: null
  }
  const liblc3 = await loadLiblc3()
  if (typeof liblc3 === 'string') return [ours, { codec: 'liblc3', costs: [], note: liblc3 }]
  const agreementDb: Partial<Record<Lc3FrameSize, number>> = {}
  for (const size of LC3_FRAME_SIZES) agreementDb[size] = snrDb(liblc3(size)(frames[size]), lc3codecDecoder(size)(frames[size]))
  return [ours, {
    codec: 'liblc3',
    costs: LC3_FRAME_SIZES.map(size => measureCost(size, frames[size], liblc3(size), options.codecMs, options.framesPerMessage)),
    note: null,
    agreementDb
  }]
}

const delay = async (ms: number): Promise<void> => { await new Promise(resolve => setTimeout(resolve, ms)) }

/**
 * `phones` phones, phase-spread over the period (10 ms x framesPerMessage), each
 * due to send one message per period through one decoding (or, idle, nothing
 * but the clock). A phone does not wait for the server: when the loop runs
 * late, the messages that fell due meanwhile arrive together, as a socket's
 * buffered messages would, and latency counts from when each one was due.
 * Measures after a warm-up.
 */
async function loadRow (mode: LoadMode, round: number, frames: Record<Lc3FrameSize, Buffer>, options: Lc3BenchOptions): Promise<LoadFigures> {
  const decoding = mode === 'idle' ? null : createLc3Decoding({ thread: mode })
  const periodMs = 10 * options.framesPerMessage
  const latencies: number[] = []
  let measuring = false
  let framesPushed = 0
  const origin = performance.now()
  const phones = Array.from({ length: options.phones }, (_, index) => {
    const size = LC3_FRAME_SIZES[index % LC3_FRAME_SIZES.length] as Lc3FrameSize
    const source = frames[size]
    const messageBytes = size * options.framesPerMessage
    const count = Math.floor(source.length / messageBytes)
    const dueTimes: number[] = []
    const stream = decoding?.open(size, () => {
      const due = dueTimes.shift()
      if (measuring && due !== undefined) latencies.push(performance.now() - due)
    })
    let next = index % count
    let due = origin + (index * periodMs) / options.phones
    const phone: { stream: StreamDecoder | undefined, timer: NodeJS.Timeout | null } = { stream, timer: null }
    const sendDue = (): void => {
      while (due <= performance.now()) {
        // A copy, as a socket would hand over.
        const message = Buffer.from(source.subarray(next * messageBytes, (next + 1) * messageBytes))
        next = (next + 1) % count
        if (measuring) framesPushed += options.framesPerMessage
        dueTimes.push(due)
        due += periodMs
        stream?.push(message)
      }
      phone.timer = setTimeout(sendDue, due - performance.now())
    }
    phone.timer = setTimeout(sendDue, due - origin)
    return phone
  })
  await delay(options.warmupSeconds * 1000)
  const histogram = monitorEventLoopDelay({ resolution: 1 })
  const before = decoding?.stats()
  const elu = performance.eventLoopUtilization()
  const cpu = process.cpuUsage()
  const started = performance.now()
  measuring = true
  histogram.enable()
  await delay(options.seconds * 1000)
  histogram.disable()
  measuring = false
  const elapsed = performance.now() - started
  const used = process.cpuUsage(cpu)
  const utilisation = performance.eventLoopUtilization(elu).utilization
  const after = decoding?.stats()
  for (const phone of phones) {
    if (phone.timer !== null) clearTimeout(phone.timer)
    phone.stream?.dispose()
  }
  await decoding?.close()
  const ms = (ns: number): number => ns / 1e6
  return {
    mode,
    round,
    phones: options.phones,
    seconds: elapsed / 1000,
    loopDelay: { p50: ms(histogram.percentile(50)), p99: ms(histogram.percentile(99)), max: ms(histogram.max) },
    mainThreadUtilisation: utilisation,
    processCpuPercent: (used.user + used.system) / 1000 / elapsed * 100,
    pcmLatency: summarize(latencies),
    framesPushed,
    framesDecoded: (after?.framesDecoded ?? 0) - (before?.framesDecoded ?? 0),
    messagesDropped: (after?.messagesDropped ?? 0) - (before?.messagesDropped ?? 0)
  }
}

export async function lc3DecodeBench (overrides: Partial<Lc3BenchOptions> = {}, progress: (line: string) => void = () => {}): Promise<Lc3BenchResult> {
  const options = { ...LC3_BENCH_DEFAULTS, ...overrides }
  const frames = loadFrames()
  progress('LC3: codec cost')
  const codecs = await codecFigures(frames, options)
  const load: LoadFigures[] = []
  for (let round = 1; round <= options.rounds; round += 1) {
    for (const mode of ['idle', 'main', 'worker'] as const) {
      progress(`LC3: ${options.phones} phones, ${mode === 'idle' ? 'no decoding' : `decoding on the ${mode === 'main' ? 'main thread' : 'worker'}`}, round ${round}`)
      load.push(await loadRow(mode, round, frames, options))
    }
  }
  return { options, cores: cpus().length, codecs, load }
}

function int (value: string | undefined, name: string, fallback: number, min: number): number {
  if (value === undefined) return fallback
  const parsed = Number(value)
  if (!Number.isInteger(parsed) || parsed < min) throw new RangeError(`--${name} must be an integer >= ${min}`)
  return parsed
}

async function main (): Promise<void> {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    strict: true,
    options: {
      phones: { type: 'string' },
      seconds: { type: 'string' },
      warmup: { type: 'string' },
      rounds: { type: 'string' },
      'codec-ms': { type: 'string' },
      'frames-per-message': { type: 'string' }
    }
  })
  const result = await lc3DecodeBench({
    phones: int(values.phones, 'phones', LC3_BENCH_DEFAULTS.phones, 1),
    seconds: int(values.seconds, 'seconds', LC3_BENCH_DEFAULTS.seconds, 1),
    warmupSeconds: int(values.warmup, 'warmup', LC3_BENCH_DEFAULTS.warmupSeconds, 0),
    rounds: int(values.rounds, 'rounds', LC3_BENCH_DEFAULTS.rounds, 1),
    codecMs: int(values['codec-ms'], 'codec-ms', LC3_BENCH_DEFAULTS.codecMs, 100),
    framesPerMessage: int(values['frames-per-message'], 'frames-per-message', LC3_BENCH_DEFAULTS.framesPerMessage, 1)
  }, line => process.stderr.write(`[lc3] ${line}\n`))
  process.stdout.write(formatLc3Section(result))
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) await main()
