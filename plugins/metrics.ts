/**
 * Prometheus metrics (prom-client) on a registry of this app's own, so several
 * apps in one process (tests, benchmarks) never collide. Session gauges are read
 * from the session registry at scrape time, traffic from one tally; the other
 * counters follow the node's events (`fastify.events`).
 */
import fp from 'fastify-plugin'
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'
import { TrafficTally } from '../http/traffic-tally.js'

declare module 'fastify' {
  interface FastifyInstance { serviceMetrics: ServiceMetrics }
}

export type ServiceMetrics = ReturnType<typeof createMetrics>

/** Counts the node's LC3 decoding keeps, read at scrape time. */
type DecodingStats = () => { framesDecoded: number, framesFailed: number, messagesDropped: number }

/** The decoding's running totals turned into counter increments at each scrape. */
function decodingCounters (read: DecodingStats) {
  let decoded = 0
  let failed = 0
  let dropped = 0
  return {
    collect (counter: Counter<'outcome'>): void {
      const stats = read()
      const ok = stats.framesDecoded - stats.framesFailed
      if (ok > decoded) counter.inc({ outcome: 'decoded' }, ok - decoded)
      if (stats.framesFailed > failed) counter.inc({ outcome: 'failed' }, stats.framesFailed - failed)
      decoded = Math.max(decoded, ok)
      failed = Math.max(failed, stats.framesFailed)
    },
    collectDropped (counter: Counter): void {
      const now = read().messagesDropped
      if (now > dropped) counter.inc(now - dropped)
      dropped = Math.max(dropped, now)
    }
  }
}

/** What the metrics read at scrape time rather than count as it happens. */
interface ScrapeSources {
  counts: () => { active: number, grace: number }
  decoding: DecodingStats
  traffic: TrafficTally
}

function createMetrics (registry: Registry, { counts, decoding, traffic }: ScrapeSources) {
  const registers = [registry]
  const decodingTotals = decodingCounters(decoding)
  return {
    registry,
    sessions: new Gauge({
      name: 'tether_sessions',
      help: 'Sessions on this node by state',
      labelNames: ['state'] as const,
      registers,
      collect () {
        const { active, grace } = counts()
        this.set({ state: 'active' }, active)
        this.set({ state: 'grace' }, grace)
      }
    }),
    created: new Counter({ name: 'tether_sessions_created_total', help: 'Sessions created', registers }),
    resumed: new Counter({
      name: 'tether_sessions_resumed_total', help: 'Sessions resumed by a reconnect during grace', registers
    }),
    replaced: new Counter({
      name: 'tether_sessions_replaced_total', help: 'Live sockets taken over by a newer socket', registers
    }),
    disposed: new Counter({
      name: 'tether_sessions_disposed_total', help: 'Sessions disposed by reason', labelNames: ['reason'] as const, registers
    }),
    disposeFailures: new Counter({
      name: 'tether_dispose_failures_total',
      help: 'Managers that failed or timed out while disposing',
      labelNames: ['manager', 'kind'] as const,
      registers
    }),
    closeCodesSent: new Counter({
      name: 'tether_close_codes_sent_total', help: 'Close codes sent to clients', labelNames: ['code'] as const, registers
    }),
    heartbeatTerminations: new Counter({
      name: 'tether_heartbeat_terminations_total', help: 'Sockets terminated for silence', registers
    }),
    upgradeRejections: new Counter({
      name: 'tether_upgrade_rejections_total',
      help: 'WebSocket upgrades (glasses and apps) answered with an HTTP error',
      labelNames: ['status', 'code'] as const,
      registers
    }),
    messages: new Counter({
      name: 'tether_messages_total',
      help: 'Messages exchanged with glasses by direction and kind (message type; invalid; audio)',
      labelNames: ['direction', 'kind'] as const,
      registers,
      collect () { traffic.report(this, 'messages') }
    }),
    bytes: new Counter({
      name: 'tether_bytes_total',
      help: 'Bytes exchanged with glasses by direction and kind',
      labelNames: ['direction', 'kind'] as const,
      registers,
      collect () { traffic.report(this, 'bytes') }
    }),
    // The per-kind totals below are the labelled series above, read from the same tally, never counted twice.
    audioBytes: new Counter({
      name: 'tether_audio_bytes_total',
      help: 'Audio bytes received from glasses (tether_bytes_total{direction="in",kind="audio"})',
      registers,
      collect () { traffic.reportOne(this, 'in', 'audio', 'bytes') }
    }),
    audioChunks: new Counter({
      name: 'tether_audio_chunks_total',
      help: 'Audio frames received from glasses (tether_messages_total{direction="in",kind="audio"})',
      registers,
      collect () { traffic.reportOne(this, 'in', 'audio', 'messages') }
    }),
    lc3Frames: new Counter({
      name: 'tether_lc3_frames_total',
      help: 'LC3 frames decoded for apps, by outcome (decoded; failed: became silence)',
      labelNames: ['outcome'] as const,
      registers,
      collect () { decodingTotals.collect(this) }
    }),
    lc3Dropped: new Counter({
      name: 'tether_lc3_messages_dropped_total',
      help: 'LC3 messages not decoded because the decoding worker was too far behind',
      registers,
      collect () { decodingTotals.collectDropped(this) }
    }),
    transcripts: new Counter({
      name: 'tether_transcripts_total',
      help: 'Local transcriptions received (tether_messages_total{direction="in",kind="local_transcription"})',
      registers,
      collect () { traffic.reportOne(this, 'in', 'local_transcription', 'messages') }
    }),
    closeCodesReceived: new Counter({
      name: 'tether_close_codes_received_total',
      help: 'Close codes of glasses sockets the client ended (1006: dropped without a close frame)',
      labelNames: ['code'] as const,
      registers
    }),
    eventLoopLag: new Gauge({
      name: 'tether_event_loop_lag_seconds',
      help: 'Event-loop lag measured at scrape time: how late a setImmediate callback runs',
      registers,
      async collect () {
        const start = process.hrtime.bigint()
        await new Promise<void>(resolve => setImmediate(resolve))
        this.set(Number(process.hrtime.bigint() - start) / 1e9)
      }
    }),
    timeToAck: new Histogram({
      name: 'tether_time_to_ack_seconds',
      help: 'Time from a glasses socket opening to its connection_ack',
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers
    }),
    takeoversRefused: new Counter({
      name: 'tether_takeovers_refused_total',
      help: 'Upgrades refused 409 SESSION_IN_USE: another device of the user holds the session in a takeover cool-down',
      registers
    }),
    takeoverCooldowns: new Counter({
      name: 'tether_takeover_cooldowns_total',
      help: 'Takeover cool-downs started: sockets of one user kept replacing each other',
      registers
    }),
    appInitRefusals: new Counter({
      name: 'tether_app_init_refusals_total',
      help: 'App sockets refused at init by code',
      labelNames: ['code'] as const,
      registers
    }),
    appCloseCodesSent: new Counter({
      name: 'tether_app_close_codes_sent_total', help: 'Close codes sent to app sockets', labelNames: ['code'] as const, registers
    }),
    appStarts: new Counter({
      name: 'tether_app_starts_total',
      help: 'App starts requested, by package and reason (user, restore, restart)',
      labelNames: ['package', 'reason'] as const,
      registers
    }),
    appStarted: new Counter({
      name: 'tether_app_started_total', help: 'App starts that succeeded (init acknowledged)', labelNames: ['package'] as const, registers
    }),
    appStartFailures: new Counter({
      name: 'tether_app_start_failures_total',
      help: 'App starts that failed, by package and failure (timeout, webhook, refused)',
      labelNames: ['package', 'failure'] as const,
      registers
    }),
    appRestarts: new Counter({
      name: 'tether_app_restarts_total', help: 'Apps restarted by webhook after their app grace period', labelNames: ['package'] as const, registers
    }),
    appStops: new Counter({
      name: 'tether_app_stops_total', help: 'Apps stopped at the user\'s request', labelNames: ['package'] as const, registers
    }),
    relayed: new Counter({
      name: 'tether_relayed_messages_total', help: 'Glasses data relayed to apps by base stream', labelNames: ['stream'] as const, registers
    }),
    audioDropped: new Counter({
      name: 'tether_audio_chunks_dropped_total', help: 'Audio chunks not sent to an app that was behind', labelNames: ['package'] as const, registers
    }),
    directoryOperations: new Counter({
      name: 'tether_directory_operations_total',
      help: 'Cluster directory operations on Redis and requests to other nodes, by operation and outcome (ok, error, timeout)',
      labelNames: ['operation', 'outcome'] as const,
      registers
    }),
    directoryLatency: new Histogram({
      name: 'tether_directory_operation_seconds',
      help: 'Time a cluster directory operation took, by operation',
      labelNames: ['operation'] as const,
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
      registers
    }),
    graceDowntime: new Histogram({
      name: 'tether_grace_downtime_seconds',
      help: 'Time glasses were away before resuming their session',
      buckets: [0.1, 0.5, 1, 2, 5, 10, 30, 60, 120],
      registers
    }),
    sessionDuration: new Histogram({
      name: 'tether_session_duration_seconds',
      help: 'Lifetime of disposed sessions',
      buckets: [1, 10, 60, 300, 1800, 3600, 4 * 3600, 24 * 3600],
      registers
    })
  }
}

export default fp(async function metricsPlugin (fastify) {
  const registry = new Registry()
  collectDefaultMetrics({ register: registry })
  const traffic = new TrafficTally()
  const metrics = createMetrics(registry, {
    counts: () => fastify.sessions.counts(),
    decoding: () => fastify.apps.decoding.stats(),
    traffic
  })
  const { events } = fastify

  events.on('session.lifecycle', (event) => {
    switch (event.event) {
      // A session moved from another node was created there, and counts there.
      case 'session.created': if (event.reason !== 'handover') metrics.created.inc(); break
      case 'session.resumed':
        metrics.resumed.inc()
        if (event.downtimeMs !== undefined) metrics.graceDowntime.observe(event.downtimeMs / 1000)
        break
      case 'session.replaced': metrics.replaced.inc(); break
      case 'session.contested': metrics.takeoverCooldowns.inc(); break
      case 'session.attached':
        if (event.ackMs !== undefined) metrics.timeToAck.observe(event.ackMs / 1000)
        break
      case 'session.detached':
        if (event.reason === 'silence') metrics.heartbeatTerminations.inc()
        if (event.reason === 'client_closed' && event.closeCode !== undefined) {
          metrics.closeCodesReceived.inc({ code: event.closeCode })
        }
        break
      case 'session.disposed':
        metrics.disposed.inc({ reason: event.reason ?? 'unknown' })
        if (event.durationMs !== undefined) metrics.sessionDuration.observe(event.durationMs / 1000)
        break
      default:
        break
    }
  })
  events.on('session.dispose_failed', failure => metrics.disposeFailures.inc({ manager: failure.manager, kind: failure.kind }))
  events.on('glasses.traffic', (direction, kind, bytes) => { traffic.add(direction, kind, bytes) })
  events.on('upgrade.refused', (status, code) => metrics.upgradeRejections.inc({ status, code }))
  events.on('session.takeover_refused', () => metrics.takeoversRefused.inc())
  events.on('app.init_refused', code => metrics.appInitRefusals.inc({ code }))
  events.on('socket.close_sent', (side, code) => {
    if (side === 'glasses') metrics.closeCodesSent.inc({ code })
    else metrics.appCloseCodesSent.inc({ code })
  })
  events.on('app.start_requested', (packageName, reason) => {
    metrics.appStarts.inc({ package: packageName, reason })
    if (reason === 'restart') metrics.appRestarts.inc({ package: packageName })
  })
  events.on('app.started', packageName => metrics.appStarted.inc({ package: packageName }))
  events.on('app.start_failed', (packageName, failure) => metrics.appStartFailures.inc({ package: packageName, failure }))
  events.on('app.stopped', packageName => metrics.appStops.inc({ package: packageName }))
  events.on('app.relayed', stream => metrics.relayed.inc({ stream }))
  events.on('app.audio_dropped', packageName => metrics.audioDropped.inc({ package: packageName }))
  events.on('directory.operation', (operation, outcome, seconds) => {
    metrics.directoryOperations.inc({ operation, outcome })
    metrics.directoryLatency.observe({ operation }, seconds)
  })

  fastify.decorate('serviceMetrics', metrics)
}, { name: 'tether-metrics', dependencies: ['tether-events', 'tether-registry', 'tether-apps', 'tether-ownership'] })
