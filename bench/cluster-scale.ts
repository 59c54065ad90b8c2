/**
 * `npm run bench:cluster-scale`: what idle sessions cost a cluster. For each
 * design (the current build, and an older commit built from git) and each
 * number of idle sessions: Redis commands per second and Redis CPU while the
 * sessions only answer pings, and the latency of the admin list on the node
 * that holds none of them. Two nodes and a private Redis per measurement, all
 * child processes; the glasses run here. Prints tables (or --json) and writes
 * nothing.
 */
import { execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { baselineDesign, currentDesign, unknownEnvNames, type Design } from './cluster-scale/designs.js'
import { measureScale, NODE_ENV_NAMES, type ScaleContext, type ScaleResult } from './cluster-scale/measure.js'
import { parseOptions, USAGE, UsageError, type ScaleOptions } from './cluster-scale/options.js'
import { commandGrowth, formatCommands, formatRatios, formatResults, formatTargets, ratios } from './cluster-scale/report.js'
import { hostInfo } from './machine.js'
import { createTokenSigner } from './tokens.js'

function progressWriter (): (line: string, ticker?: boolean) => void {
  const tty = process.stderr.isTTY
  return (line, ticker = false) => {
    if (tty) process.stderr.write(`\r[cluster-scale] ${line}\x1b[K`)
    // In a log, one line per step is enough.
    else if (!ticker) process.stderr.write(`[cluster-scale] ${line}\n`)
  }
}

/** The fleet holds one socket per session in this process: say so up front when the soft limit is too low. */
function fileLimitNote (sessions: number): string | null {
  try {
    const text = execFileSync('bash', ['-c', 'ulimit -Sn'], { encoding: 'utf8' }).trim()
    const limit = text === 'unlimited' ? Number.POSITIVE_INFINITY : Number(text)
    return limit < sessions + 1024 ? `open files limit is ${limit}, ${sessions} glasses need about ${sessions + 1024}: expect failed connects` : null
  } catch {
    return null
  }
}

async function designsFor (options: ScaleOptions, notes: string[], progress: (line: string) => void): Promise<Design[]> {
  const designs: Design[] = [currentDesign()]
  if (options.baselineRef !== null) {
    const baseline = baselineDesign(options.baselineRef, progress)
    if ('note' in baseline) notes.push(baseline.note)
    else designs.push(baseline)
  }
  for (const design of designs) {
    const unknown = await unknownEnvNames(design, NODE_ENV_NAMES)
    if (unknown.length > 0) notes.push(`${design.name} (${design.commit}) does not read ${unknown.join(', ')}: those run with its defaults`)
  }
  return designs
}

async function main (): Promise<void> {
  let options: ScaleOptions
  try {
    options = parseOptions(process.argv.slice(2))
  } catch (error) {
    if (error instanceof UsageError && error.help) {
      process.stdout.write(`${USAGE}\n`)
      return
    }
    process.stderr.write(`${(error as Error).message}\n${USAGE}\n`)
    process.exitCode = 2
    return
  }
  const progress = progressWriter()
  const notes: string[] = []
  const limitNote = fileLimitNote(Math.max(...options.sessions))
  if (limitNote !== null) notes.push(limitNote)
  const designs = await designsFor(options, notes, progress)
  const secret = randomBytes(32).toString('hex')
  const ctx: ScaleContext = { options, secret, sign: createTokenSigner(secret), adminEmail: 'bench-admin@tether.sim', progress }
  const results: ScaleResult[] = []
  for (const design of designs) {
    for (const sessions of options.sessions) {
      try {
        const result = await measureScale(ctx, design, sessions)
        results.push(result)
        if (result.acked < sessions) notes.push(`${design.name} ${sessions}: only ${result.acked} acked (${JSON.stringify(result.failures)})`)
        if (result.serverCloses > 0) notes.push(`${design.name} ${sessions}: the server closed ${result.serverCloses} idle glasses during the window`)
        if (result.seenByB !== null && result.seenByB !== result.openAfterWindow) notes.push(`${design.name} ${sessions}: node B counted ${result.seenByB} sessions, ${result.openAfterWindow} were open`)
        if (result.page.status !== 200) notes.push(`${design.name} ${sessions}: GET /sessions answered ${result.page.status}`)
      } catch (error) {
        notes.push(`${design.name} ${sessions}: not measured: ${(error as Error).message.split('\n')[0] ?? ''}`)
      }
    }
  }
  if (process.stderr.isTTY) process.stderr.write('\n')
  const ratioList = ratios(results)
  const growth = commandGrowth(results)
  // Without machine.ts's commit: each design names its own (git status would write to a shared index).
  const host = hostInfo()
  if (options.json) {
    process.stdout.write(`${JSON.stringify({ machine: host, options, designs, notes, results, ratios: ratioList, commands: growth }, null, 2)}\n`)
    return
  }
  const out = [
    `Idle sessions on node A, LEASE_TTL_MS=${options.leaseMs}, settle ${2 * options.leaseMs} ms, Redis watched ${options.windowMs} ms, ` +
      `then ${options.pageRequests} sequential GET /sessions?limit=50 to node B`,
    `${host.cpuModel}, ${host.cores} cores, ${host.memoryGiB} GiB, node ${host.node}, ${host.os}`,
    '',
    formatResults(results),
    '',
    'Ratios, largest over smallest session count:',
    '',
    formatRatios(ratioList),
    '',
    'Targets (current design):',
    formatTargets(results, ratioList),
    '',
    'Redis commands by name over the window (scripts\' inner calls counted too):',
    '',
    formatCommands(growth, options.sessions)
  ]
  if (notes.length > 0) out.push('', 'Notes:', ...notes.map(note => `- ${note}`))
  process.stdout.write(`${out.join('\n')}\n`)
}

await main()
