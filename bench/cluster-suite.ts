/**
 * The cluster row: connect figures over two Tether nodes sharing one Redis,
 * against the single node of the main suite. Only with --cluster, and only when
 * the build really shares sessions (node B counts a session held by node A);
 * otherwise the row says why it is n/a.
 */
import { spawn } from 'node:child_process'
import { performance } from 'node:perf_hooks'
import type { ConnectReport } from './fleet.js'
import { freePort, startServerProcess, type ServerProcess } from './server-process.js'
import { summarize } from './stats.js'
import { ADMIN_SUBJECT, newFleet, sleep, targetSpec, type BenchContext } from './suites.js'

export type ClusterResult = { note: string } | { note: null, connect: ConnectReport, nodes: number }

/** Start a throwaway redis-server on a free port; resolves once it accepts connections. */
async function startRedis (): Promise<{ url: string, stop: () => void }> {
  const port = await freePort()
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
    stdio: ['ignore', 'pipe', 'pipe']
  })
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('redis-server did not start')), 10_000)
    child.once('error', error => { clearTimeout(timer); reject(error) })
    child.stdout?.on('data', (chunk: Buffer) => {
      if (chunk.toString().includes('Ready to accept connections')) { clearTimeout(timer); resolve() }
    })
  })
  return { url: `redis://127.0.0.1:${port}`, stop: () => { child.kill('SIGTERM') } }
}

/** Does node B count a session that lives on node A? Only a cluster-aware build does. */
async function sharesSessions (ctx: BenchContext, a: ServerProcess, b: ServerProcess): Promise<boolean> {
  const probe = newFleet(ctx, a, 'cluster-probe', 1)
  try {
    await probe.connectRange(0, 1)
    const headers = { authorization: `Bearer ${ctx.sign(ctx.adminEmail, ADMIN_SUBJECT)}` }
    const deadline = performance.now() + 8000
    while (performance.now() < deadline) {
      const response = await fetch(`${b.httpUrl}/sessions?limit=1`, { headers })
      const body = await response.json() as { counts?: { total?: number } }
      if ((body.counts?.total ?? 0) >= 1) return true
      await sleep(250)
    }
    return false
  } finally {
    probe.terminateAll()
  }
}

export async function clusterSuite (ctx: BenchContext): Promise<ClusterResult> {
  if (!ctx.options.cluster) return { note: 'not measured (pass --cluster: starts redis-server and two nodes)' }
  let redis: { url: string, stop: () => void } | null = null
  const nodes: ServerProcess[] = []
  try {
    ctx.progress('cluster: two Tether nodes sharing Redis')
    const url = ctx.options.redisUrl ?? (redis = await startRedis()).url
    for (const id of ['a', 'b']) {
      nodes.push(await startServerProcess(targetSpec(ctx, 'tether', await freePort(), { REDIS_URL: url, NODE_ID: `bench-${id}`, LEASE_TTL_MS: '3000' })))
    }
    const [a, b] = nodes as [ServerProcess, ServerProcess]
    if (!await sharesSessions(ctx, a, b)) return { note: 'n/a (the two nodes did not share sessions through Redis)' }
    const half = Math.floor(ctx.options.sessions / 2)
    const per = Math.max(1, Math.floor(ctx.options.concurrency / 2))
    const fleets = [newFleet(ctx, a, 'cluster', per), newFleet(ctx, b, 'cluster', per)] as const
    const started = performance.now()
    const reports = await Promise.all([fleets[0].connectRange(0, half), fleets[1].connectRange(half, ctx.options.sessions)])
    const elapsedMs = performance.now() - started
    const acked = reports[0].acked + reports[1].acked
    const connect: ConnectReport = {
      attempted: reports[0].attempted + reports[1].attempted,
      acked,
      failed: reports[0].failed + reports[1].failed,
      elapsedMs,
      ratePerSecond: acked / (elapsedMs / 1000),
      timeToAck: summarize([...fleets[0].ackMs, ...fleets[1].ackMs])
    }
    for (const fleet of fleets) fleet.terminateAll()
    return { note: null, connect, nodes: 2 }
  } catch (error) {
    return { note: `n/a (cluster run failed: ${(error as Error).message.split('\n')[0] ?? ''})` }
  } finally {
    for (const node of nodes) node.kill()
    redis?.stop()
  }
}
