/**
 * The benchmark's one table (Tether, baseline, Tether/baseline, the target of
 * issue 7 and whether it is met) and the RESULTS.md section it goes into.
 */
import { existsSync, appendFileSync, writeFileSync } from 'node:fs'
import { gcNote } from './gc-trace.js'
import { describeMachine, type MachineInfo } from './machine.js'
import { fmtMs } from './stats.js'
import type { ClusterResult } from './cluster-suite.js'
import type { Lc3BenchResult } from './lc3-decode.js'
import { formatPhoneStream, type StreamFigures } from './phone-stream.js'
import type { FleetLadderResult } from './fleet-ladder.js'
import { formatFleetLadder, formatStorm } from './fleet-report.js'
import type { StormResult } from './restart-storm.js'
import { formatRoutingPrice, type RoutingPriceResult } from './routing-price.js'
import type { ResumeBurst } from './resume-burst.js'
import type { BenchOptions, CapacityResult, MainResult } from './suites.js'

export interface BenchResults {
  options: BenchOptions
  machine: MachineInfo
  startedAt: Date
  elapsedMs: number
  /** 1-minute load average at the start and the end: other work on the machine skews every figure. */
  load: { start: number, end: number }
  rounds: number
  /** One entry per round; the table shows the median of the rounds. */
  main: { tether: MainResult[], baseline: MainResult[] }
  capacity: { tether: CapacityResult | null, baseline: CapacityResult | null }
  /** Connect and resume against the raw baseline, the baseline through Fastify, and Tether; null when skipped. */
  routing: RoutingPriceResult | null
  cluster: ClusterResult
  /** LC3 decoding figures (bench/lc3-decode.ts), measured in the bench process after the servers are gone. */
  lc3: Lc3BenchResult | null
  /** Phones streaming LC3 through a server while another session pings (bench/phone-stream.ts). */
  phoneStream: StreamFigures[] | null
  /** The realistic phone fleet up its ladder (bench/fleet-ladder.ts); null when skipped. */
  fleet: FleetLadderResult | null
  /** One restart storm per upgrade limit tried (bench/restart-storm.ts). */
  storm: StormResult[]
  /** Where the main suite, the routing section and capacity ran their server and the load generator. */
  pinning: string
}

type Verdict = 'met' | 'NOT met' | ''

interface Row { label: string, tether: string, baseline: string, ratio: string, target: string, verdict: Verdict }

const kb = (bytes: number): string => `${(bytes / 1024).toFixed(1)}`
const num = (value: number, digits = 0): string => Number.isFinite(value) ? value.toFixed(digits) : '-'
const ratioOf = (t: number | undefined, b: number | undefined): number =>
  t === undefined || b === undefined || !Number.isFinite(t) || !Number.isFinite(b) || b === 0 ? Number.NaN : t / b
const fmtRatio = (r: number): string => Number.isFinite(r) ? `${r.toFixed(2)}x` : '-'
const judge = (ok: boolean | null): Verdict => ok === null ? '' : ok ? 'met' : 'NOT met'

function row (label: string, t: number | undefined, b: number | undefined, format: (v: number) => string,
  target = '', check: ((ratio: number) => boolean) | null = null): Row {
  const ratio = ratioOf(t, b)
  return {
    label,
    tether: t === undefined ? '-' : format(t),
    baseline: b === undefined ? '-' : format(b),
    ratio: fmtRatio(ratio),
    target,
    verdict: check === null || !Number.isFinite(ratio) ? '' : judge(check(ratio))
  }
}

/** The median of the finite values (the lower middle one for an even count); undefined when there are none. */
function median (values: ReadonlyArray<number | undefined>): number | undefined {
  const finite = values.filter((v): v is number => v !== undefined && Number.isFinite(v)).sort((a, b) => a - b)
  return finite.length === 0 ? undefined : finite[Math.floor((finite.length - 1) / 2)]
}

function capacityCell (c: CapacityResult | null): string {
  if (c === null) return 'skipped'
  return `${c.connect.acked}/${c.target} acked, ${c.connect.failed} failed, ${c.unexpectedCloses} closed, ` +
    `${c.openAfterHold} open after ${(c.heldMs / 1000).toFixed(0)} s`
}

function capacityOk (c: CapacityResult | null): boolean | null {
  if (c === null || c.target < 15_000) return null
  return c.connect.acked === c.target && c.connect.failed === 0 && c.unexpectedCloses === 0 && c.openAfterHold === c.target
}

export function buildRows (results: BenchResults): Row[] {
  const tRounds = results.main.tether
  const bRounds = results.main.baseline
  const m = (get: (result: MainResult) => number | undefined): [number | undefined, number | undefined] =>
    [median(tRounds.map(get)), median(bRounds.map(get))]
  const n = tRounds[0]?.memory.sessions ?? bRounds[0]?.memory.sessions ?? results.options.sessions
  const rows: Row[] = [
    row('connect rate (acks/s)', ...m(r => r.connect.ratePerSecond), v => num(v), '>= 0.9x', r => r >= 0.9),
    row('time to ack p50 (ms)', ...m(r => r.connect.timeToAck.p50), fmtMs),
    row('time to ack p99 (ms)', ...m(r => r.connect.timeToAck.p99), fmtMs),
    row('server CPU per connect (ms)', ...m(r => r.cpu.connectMsPerSession), v => num(v, 3)),
    row('server CPU per connect, main thread alone (ms)', ...m(r => r.cpu.connectMainMsPerSession), v => num(v, 3)),
    row('failed connects', ...m(r => r.connect.failed), v => num(v), '0', null),
    row(`RSS per idle session (KiB, ${n} sessions)`, ...m(r => r.memory.rssPerSession), kb, '<= 1.5x', r => r <= 1.5),
    row(`heap per idle session (KiB, ${n} sessions)`, ...m(r => r.memory.heapPerSession), kb, '<= 1.5x', r => r <= 1.5),
    row('RSS total with the fleet (MiB)', ...m(r => r.memory.after.rssBytes / 2 ** 20), v => num(v, 1)),
    row(`GET /sessions p50 (ms, limit 100, ${n} sessions)`, ...m(r => r.list100.p50), fmtMs),
    row('GET /sessions p99 (ms, limit 100)', ...m(r => r.list100.p99), fmtMs),
    row('GET /sessions, first request (ms, limit 100; not in p50/p99)', ...m(r => r.list100.firstMs), fmtMs),
    row('server CPU per GET /sessions, limit 100 (ms)', ...m(r => r.cpu.listMsPerRequest), v => num(v, 2)),
    row('GET /sessions?limit=1000 p50 (ms)', ...m(r => r.list1000.p50), fmtMs),
    row('GET /sessions?limit=1000 p99 (ms)', ...m(r => r.list1000.p99), fmtMs),
    row('resume p50 (ms)', ...m(r => r.resume.timeToAck.p50), fmtMs),
    row('resume p99 (ms)', ...m(r => r.resume.timeToAck.p99), fmtMs, '<= 1.2x', r => r <= 1.2),
    row('server CPU per resume (ms)', ...m(r => r.resume.cpuMsPerSession), v => num(v, 3)),
    row('server CPU per resume, main thread alone (ms)', ...m(r => r.resume.mainMsPerSession), v => num(v, 3)),
    row('resumed the same session', ...m(r => r.resume.resumed), v => num(v)),
    row('later resume burst, other sessions: p50 (ms)', ...m(r => r.laterResume.timeToAck.p50), fmtMs),
    row('later resume burst: p99 (ms)', ...m(r => r.laterResume.timeToAck.p99), fmtMs, '<= 1.2x', r => r <= 1.2),
    row('later resume burst: server CPU per resume (ms)', ...m(r => r.laterResume.cpuMsPerSession), v => num(v, 3)),
    row('later resume burst: main thread alone (ms)', ...m(r => r.laterResume.mainMsPerSession), v => num(v, 3)),
    row('later resume burst: resumed the same session', ...m(r => r.laterResume.resumed), v => num(v)),
    row('audio relay (MB/s)', ...m(r => r.relay?.megabytesPerSecond), v => num(v, 2), '>= 0.8x', r => r >= 0.8),
    row('audio relay (frames/s)', ...m(r => r.relay?.framesPerSecond), v => num(v)),
    row('audio relay latency p50 (ms)', ...m(r => r.relay?.latency.p50), fmtMs),
    row('audio relay latency p99 (ms)', ...m(r => r.relay?.latency.p99), fmtMs),
    row('server CPU per relayed frame (us)', ...m(r => r.cpu.relayUsPerFrame), v => num(v, 1))
  ]
  const drainSessions = tRounds[0]?.drain.sessions ?? bRounds[0]?.drain.sessions ?? n
  const drainRow = row(`drain on SIGTERM, all sockets closed (ms, ${drainSessions} sessions)`,
    ...m(r => r.drain.allClosedMs), v => num(v), '< 2000 ms at 10k')
  // Below 10k sessions the target does not apply: a scaled-down run says nothing about it.
  const drainT = median(tRounds.map(r => r.drain.allClosedMs))
  drainRow.verdict = drainT === undefined || drainSessions < 10_000
    ? ''
    : judge(tRounds.every(r => r.drain.allClosed) && drainT < 2000)
  rows.push(drainRow)
  rows.push(row('drain: process exit after SIGTERM (ms)', ...m(r => r.drain.exitMs), v => num(v)))
  const capT = results.capacity.tether
  const capB = results.capacity.baseline
  rows.push({
    label: `capacity: ${results.options.capacity} sessions, heartbeats every ${results.options.pingMs} ms`,
    tether: capacityCell(capT),
    baseline: capacityCell(capB),
    ratio: '',
    target: '15,000, zero failed',
    verdict: judge(capacityOk(capT))
  })
  if (capT !== null || capB !== null) {
    rows.push(row('capacity: server CPU while holding (% of a core)', capT?.holdCpuPercent, capB?.holdCpuPercent, v => num(v, 1)))
    rows.push(row(`capacity: RSS at ${results.options.capacity} (MiB)`, capT === null ? undefined : capT.memory.rssBytes / 2 ** 20,
      capB === null ? undefined : capB.memory.rssBytes / 2 ** 20, v => num(v, 1)))
    rows.push(row(`capacity: drain ${results.options.capacity}, all closed (ms)`, capT?.drain.allClosedMs, capB?.drain.allClosedMs, v => num(v)))
  }
  const cluster = results.cluster
  if (cluster.note !== null) {
    rows.push({ label: 'cluster (2 nodes + Redis) connect rate', tether: cluster.note, baseline: '', ratio: '', target: 'vs single node', verdict: '' })
  } else {
    const singleRate = median(tRounds.map(r => r.connect.ratePerSecond))
    const singleP50 = median(tRounds.map(r => r.connect.timeToAck.p50))
    const singleP99 = median(tRounds.map(r => r.connect.timeToAck.p99))
    rows.push({
      label: 'cluster (2 nodes + Redis): acks/s, p50/p99 ms; ratio vs single node',
      tether: `${num(cluster.connect.ratePerSecond)} acks/s, ${fmtMs(cluster.connect.timeToAck.p50)}/${fmtMs(cluster.connect.timeToAck.p99)} ms, ${cluster.connect.failed} failed`,
      baseline: singleRate === undefined ? '-' : `single node: ${num(singleRate)} acks/s, ${fmtMs(singleP50 ?? Number.NaN)}/${fmtMs(singleP99 ?? Number.NaN)} ms`,
      ratio: fmtRatio(ratioOf(cluster.connect.ratePerSecond, singleRate)),
      target: 'vs single node',
      verdict: ''
    })
  }
  return rows
}

export function formatTable (rows: readonly Row[]): string {
  const header: Row = { label: 'figure', tether: 'Tether', baseline: 'baseline (raw ws)', ratio: 'Tether/baseline', target: 'target', verdict: '' }
  const lines = [header, ...rows].map(r => `| ${r.label} | ${r.tether} | ${r.baseline} | ${r.ratio} | ${r.target} | ${r.verdict} |`)
  lines.splice(1, 0, '|---|---:|---:|---:|---|---|')
  return lines.join('\n') + '\n'
}

/** Facts that explain a figure: failures by reason, drain details, relay errors. */
export function formatNotes (results: BenchResults): string {
  const notes: string[] = []
  for (const name of ['tether', 'baseline'] as const) {
    results.main[name].forEach((m, index) => {
      const label = `${name} round ${index + 1}`
      const failures = Object.entries(m.connectFailures).map(([k, v]) => `${k}: ${v}`).join(', ')
      notes.push(`${label}: ${num(m.connect.ratePerSecond)} acks/s, ack p50/p99 ${fmtMs(m.connect.timeToAck.p50)}/${fmtMs(m.connect.timeToAck.p99)} ms, ` +
        `resume p99 ${burstNote(m.resume)}, later burst ${burstNote(m.laterResume)}, relay ${m.relay === null ? '-' : num(m.relay.megabytesPerSecond, 2)} MB/s, ` +
        `drain ${num(m.drain.allClosedMs)} ms (${m.drain.closed1001} saw 1001, ${m.drain.allClosed ? 'all closed' : 'NOT all closed'}, ` +
        `exit code ${String(m.drain.exitCode)}); memory ${(m.memory.before.rssBytes / 2 ** 20).toFixed(1)} -> ` +
        `${(m.memory.after.rssBytes / 2 ** 20).toFixed(1)} MiB RSS, ${(m.memory.before.heapUsedBytes / 2 ** 20).toFixed(1)} -> ` +
        `${(m.memory.after.heapUsedBytes / 2 ** 20).toFixed(1)} MiB heap for ${m.memory.sessions} sessions` +
        (failures === '' ? '' : `; connect failures ${failures}`) +
        (m.relayError === null ? '' : `; audio relay failed: ${m.relayError}`) +
        (m.relay !== null && m.relay.lost > 0 ? `; relay lost ${m.relay.lost} frames` : ''))
    })
    const c = results.capacity[name]
    if (c !== null) {
      const failures = Object.entries(c.failures).map(([k, v]) => `${k}: ${v}`).join(', ')
      const closes = Object.entries(c.closeCodes).map(([k, v]) => `${k}: ${v}`).join(', ')
      notes.push(`${name} capacity: connect ${num(c.connect.ratePerSecond)} acks/s` +
        (failures === '' ? '' : `; failures ${failures}`) + (closes === '' ? '' : `; closes seen ${closes}`))
    }
  }
  return notes.map(note => `- ${note}`).join('\n') + '\n'
}

function burstNote (burst: ResumeBurst): string {
  return `${fmtMs(burst.timeToAck.p99)} ms${burst.afterPingTick ? ' (begun after a ping tick)' : ''}` +
    `${burst.mismatches > 0 ? ` (${burst.mismatches} got a new session)` : ''}${gcNote(burst.gc)}`
}

const HEADER = `# Tether benchmark results

Produced by \`npm run bench\` (bench/run.ts): one run starts Tether (\`node dist/server.js\`) and the raw
baseline (\`bench/baseline.ts\`: the same auth, ack, heartbeat, grace/resume, \`/sessions\` and audio relay on
\`node:http\` + \`ws\` alone) as child processes, one at a time, and drives each with the glasses fleet of
\`bench/fleet.ts\` from the bench process. Memory is read from each server's \`/metrics\`
(\`process_resident_memory_bytes\`, \`nodejs_heap_size_used_bytes\`) after a full GC requested over the inspector,
before and after the idle fleet connects.

Reproduce: \`npm ci && npm run bench\` (about 4 minutes at the defaults on 2 cores, plus the build). Scale down with
\`npm run bench -- --sessions 2000 --capacity 0\`; \`npm run bench -- --help\` lists every flag.

Targets (issue 7), on the same machine in the same run:
- connect rate >= 0.9x baseline
- memory per idle session (RSS and heap) <= 1.5x baseline
- resume p99 <= 1.2x baseline
- 15,000 concurrent sessions in one process with heartbeats on and zero failed connections
- audio relay glasses -> one subscribed app >= 0.8x of the raw \`ws\` relay
- drain of 10k sessions on SIGTERM < 2 s
`

export function resultsSection (results: BenchResults): string {
  const o = results.options
  return [
    '',
    `## ${results.startedAt.toISOString()}`,
    '',
    `Machine: ${describeMachine(results.machine)}.`,
    `Run: ${results.rounds} round(s) per server (the table shows medians), ${o.sessions} idle sessions, capacity ${o.capacity}, ${o.concurrency} handshakes in flight, ` +
      `${o.resumeCount} drops resumed in each of two bursts (the first, then other sessions), pings every ${o.pingMs} ms (silence ${3 * o.pingMs} ms), ` +
      `relay ${o.relayMs} ms of ${o.relayFrameBytes}-byte frames with ${o.relayWindow} in flight, ` +
      `${o.listRequests} requests per /sessions figure${o.serverNodeFlags.length === 0 ? '' : `, servers run with ${o.serverNodeFlags.join(' ')}`}; took ${(results.elapsedMs / 1000).toFixed(0)} s; ` +
      `load average ${results.load.start.toFixed(2)} at the start, ${results.load.end.toFixed(2)} at the end.`,
    `Main suite, routing section and capacity: ${results.pinning}.`,
    '',
    formatTable(buildRows(results)),
    formatNotes(results),
    ...(results.routing === null ? [] : ['', formatRoutingPrice(results.routing)]),
    ...(results.lc3 === null ? [] : [formatLc3Section(results.lc3)]),
    ...(results.phoneStream === null
      ? []
      : [
          '', `### Phones streaming LC3 through the server (bench/phone-stream.ts, ${results.phoneStream[1]?.phones ?? 0} phones)`, '',
          formatPhoneStream(results.phoneStream), ''
        ]),
    ...(results.fleet === null ? [] : ['', formatFleetLadder(results.fleet)]),
    ...(results.storm.length === 0 ? [] : ['', formatStorm(results.storm)])
  ].join('\n')
}

/** Append a dated section, creating the file with its header first if needed. */
export function appendResults (file: string, results: BenchResults): void {
  if (!existsSync(file)) writeFileSync(file, HEADER)
  appendFileSync(file, resultsSection(results))
}

// ---------------------------------------------------------------------------
// LC3 decoding (bench/lc3-decode.ts): a section of its own, apart from the
// Tether/baseline table; the baseline relays bytes and decodes nothing.

const LOAD_LABELS: Record<Lc3BenchResult['load'][number]['mode'], string> = {
  idle: 'no decoding (the floor)',
  main: 'decoded on the main thread',
  worker: 'decoded in the worker'
}

/** The LC3 figures as a markdown section: codec cost per phone, then the event loop under load. */
export function formatLc3Section (r: Lc3BenchResult): string {
  const o = r.options
  const lines = [
    '### LC3 decoding (bench/lc3-decode.ts)',
    '',
    `Codec cost: one stream decoded in ${o.framesPerMessage}-frame messages for ${o.codecMs} ms after a warm-up (16 kHz, 10 ms frames).`,
    '',
    '| decoder | frame bytes | us of CPU per frame | ms of CPU per s of audio per phone | streaming phones per core |',
    '|---|---:|---:|---:|---:|'
  ]
  for (const codec of r.codecs) {
    if (codec.costs.length === 0) lines.push(`| ${codec.codec} | ${codec.note ?? '-'} | | | |`)
    for (const c of codec.costs) {
      lines.push(`| ${codec.codec} | ${c.frameBytes} | ${num(c.usPerFrame, 1)} | ${num(c.cpuMsPerAudioSecond, 2)} | ${num(c.phonesPerCore)} |`)
    }
  }
  const agreement = r.codecs.find(c => c.agreementDb !== undefined)?.agreementDb
  if (agreement !== undefined) {
    const parts = Object.entries(agreement).map(([size, db]) => `${size} bytes ${Number.isFinite(db) ? `${db.toFixed(1)} dB` : 'identical'}`)
    lines.push('', `lc3codec against liblc3 on the same frames (SNR): ${parts.join(', ')}.`)
  }
  const first = r.load[0]
  lines.push(
    '',
    `Event loop under load: ${first?.phones ?? o.phones} phones in this process, each pushing 100 frames/s in ${o.framesPerMessage}-frame messages ` +
      `(frame sizes 20/40/60 in turn), ${o.warmupSeconds} s warm-up then ${o.seconds} s measured per row; ${r.cores} cores. ` +
      'Loop delay is perf_hooks.monitorEventLoopDelay at 1 ms resolution; frames are counted in the measured window, so more ' +
      'decoded than pushed means the worker was still working off a backlog from the warm-up.',
    '',
    '| load | loop delay p50 (ms) | p99 (ms) | max (ms) | main thread busy | process CPU (% of a core) | message due to PCM p50/p99 (ms) | frames decoded/pushed | dropped messages |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|'
  )
  for (const l of r.load) {
    const idle = l.mode === 'idle'
    lines.push(`| ${LOAD_LABELS[l.mode]}${o.rounds > 1 ? ` (round ${l.round})` : ''} | ${fmtMs(l.loopDelay.p50)} | ${fmtMs(l.loopDelay.p99)} | ${fmtMs(l.loopDelay.max)} | ` +
      `${num(l.mainThreadUtilisation * 100, 1)}% | ${num(l.processCpuPercent, 1)} | ` +
      `${idle ? '-' : `${fmtMs(l.pcmLatency.p50)}/${fmtMs(l.pcmLatency.p99)}`} | ${idle ? '-' : `${l.framesDecoded}/${l.framesPushed}`} | ${idle ? '-' : l.messagesDropped} |`)
  }
  return lines.join('\n') + '\n'
}
