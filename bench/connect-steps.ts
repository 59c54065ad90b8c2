/**
 * `node dist/bench/connect-steps.js <connect.cpuprofile> <connects> [<profile> <count> ...]`:
 * where the server's CPU per connect goes, step by step (HTTP parse, Fastify, the
 * JWT check, the ws handshake, the session, ...), from a V8 CPU profile of the
 * connect phase (`npm run bench -- --cpu-prof` writes `bench/profiles/<server>-connect.cpuprofile`),
 * or per resume from the resume phase's (`<server>-resume.cpuprofile`). Given several
 * profiles (one per run), it prints the mean of each step and its range: one run's
 * steps move by several microseconds on a shared machine.
 *
 * A sample whose stack holds one of the whole-task frames (the microphone's
 * re-send after a resume, the app side built on first need, the idle sessions'
 * heartbeat) goes to that task,
 * its socket writes included. Any other sample goes to the innermost frame on its
 * stack that belongs to a step; node's own net/http frames and ws's frame code
 * count only when no step claims the stack. A sample counts at most 300 us, so
 * time the process spent descheduled on a shared machine does not land on
 * whatever function ran.
 */
import { readFileSync } from 'node:fs'
import { pathToFileURL } from 'node:url'

interface CallFrame { functionName: string, url: string }
interface ProfileNode { id: number, callFrame: CallFrame, children?: number[] }
interface CpuProfile { nodes: ProfileNode[], samples: number[], timeDeltas: number[] }

/** The longest a sample may count for (the profiler samples every 250 us or so). */
const MAX_SAMPLE_US = 300
const OTHER = 'other: microtasks, promises, stream internals, timers'
const HTTP = 'HTTP parse + TCP accept (node:http, node:net)'
const WS_FRAMES = 'ws frame code (sender, receiver)'
const HEARTBEAT = 'heartbeat of the idle sessions: pings sent, pongs heard'

/** Tasks that claim a sample when any frame of its stack is theirs. */
const TASKS: ReadonlyArray<readonly [string, RegExp]> = [
  ['microphone state re-sent 100 ms after a resume (../shared/PHONE.md section 2)', /microphone-manager|^sendMicrophone bench/],
  ['app side built on first need (eight managers)', /^buildDeferred /],
  // The idle sessions' heartbeat, whenever it falls in the phase: Tether's sweep pings a tenth of them every
  // half second; the raw server pings all at once, and the bench starts its resumes right after that tick.
  [HEARTBEAT, /heartbeat-sweep|heartbeat-manager|^heartbeat bench\/baseline-sessions|^receiverOnPong /]
]

/** Steps in the order they are tried on each frame, innermost frame first. */
const STEPS: ReadonlyArray<readonly [string, RegExp]> = [
  ['GC', /^\(garbage collector\)/],
  ['socket writes (101 + ack)', /^(Socket\._writeGeneric|Socket\._writev|writeGeneric|writevGeneric|handleWriteReq) node:/],
  ['logging', /nm:pino|nm:fastify\/lib\/logger|log-serializers|request-logger|nm:thread-stream|nm:sonic-boom/],
  ['metrics', /nm:prom-client|plugins\/metrics\.js|traffic-tally/],
  ['JWT verify (bearer, identity)', /nm:fast-jwt|nm:@fastify\/jwt|verifyGlassesToken|identityOf|bearerToken|^verify bench\/baseline|^bearer bench/],
  ['upgrade guard (limits, origin, block, admission)', /upgrade-guard\.js|window-counter\.js|^admission |blockedUntil/],
  ['ack build + send', /^sendAck |^ack bench|^view sessions|^send sessions\/user-session|^send sessions\/socket-channel|^send bench\/baseline/],
  ['managers', /managers\//],
  ['lifecycle events', /^emit sessions|lifecycle\.js|node-events\.js|^EventLog/],
  ['ownership, keyed lock, in-flight marks', /local-ownership|keyed-lock|^prepare sessions|^beginAttach|^end sessions\/session-registry|^wake /],
  ['session object', /^UserSession |^create sessions|session-stats|^BaselineSession|^attach bench\/baseline|^attach sessions\/user-session|^buildManagers|^Connection bench/],
  ['socket channel', /socket-channel|glasses-connection|release-upgrade/],
  ['registry connect + route glue', /session-registry|routes\/glasses-ws/],
  ['ws handshake (accept key, WebSocket, @fastify/websocket)', /nm:ws\/lib\/websocket-server|nm:@fastify\/websocket/],
  ['Fastify routing, hooks, Request/Reply, schema', /nm:fastify\/|nm:find-my-way|nm:avvio|nm:fastify-plugin|nm:@fastify\/|nm:fast-querystring|nm:fast-json-stringify|nm:ajv|plugins\/websocket\.js/],
  [WS_FRAMES, /nm:ws\/lib\/(sender|websocket\.js|receiver)/],
  [HTTP, /node:_http|node:net/]
]
const LOW = new Set([WS_FRAMES, HTTP])

function frameText (frame: CallFrame): string {
  const url = frame.url.replace(/^.*\/node_modules\//, 'nm:').replace(/^.*\/dist\//, '')
  return `${frame.functionName} ${url}`
}

/** Microseconds of CPU per connect by step, largest first, and their total. */
export function connectSteps (profile: CpuProfile, connects: number): { total: number, steps: Array<[string, number]> } {
  const byId = new Map(profile.nodes.map(node => [node.id, node]))
  const parent = new Map<number, number>()
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id)
  const totals = new Map<string, number>()
  let busy = 0
  profile.samples.forEach((id, index) => {
    const leaf = byId.get(id)
    if (leaf === undefined || ['(idle)', '(program)', '(root)'].includes(leaf.callFrame.functionName)) return
    const us = Math.min(profile.timeDeltas[index] ?? 0, MAX_SAMPLE_US)
    busy += us
    let step = OTHER
    let low: string | null = null
    const stack: string[] = []
    for (let node: ProfileNode | undefined = leaf; node !== undefined; node = byId.get(parent.get(node.id) ?? -1)) stack.push(frameText(node.callFrame))
    const task = TASKS.find(([, pattern]) => stack.some(text => pattern.test(text)))
    if (task !== undefined) {
      totals.set(task[0], (totals.get(task[0]) ?? 0) + us)
      return
    }
    for (const text of stack) {
      const match = STEPS.find(([, pattern]) => pattern.test(text))
      if (match === undefined) continue
      if (LOW.has(match[0])) { low ??= match[0]; continue }
      step = match[0]
      low = null
      break
    }
    if (low !== null) step = low
    totals.set(step, (totals.get(step) ?? 0) + us)
  })
  const steps = [...totals].map(([step, us]): [string, number] => [step, us / connects]).sort((a, b) => b[1] - a[1])
  return { total: busy / connects, steps }
}

const USAGE = 'usage: node dist/bench/connect-steps.js <connect.cpuprofile|resume.cpuprofile> <connects or resumes> [<profile> <count> ...]\n'

function main (): void {
  const args = process.argv.slice(2)
  const runs: Array<{ total: number, steps: Array<[string, number]> }> = []
  for (let i = 0; i < args.length; i += 2) {
    const count = Number(args[i + 1])
    if (!Number.isInteger(count) || count < 1) {
      process.stderr.write(USAGE)
      process.exit(2)
    }
    runs.push(connectSteps(JSON.parse(readFileSync(args[i] as string, 'utf8')) as CpuProfile, count))
  }
  if (runs.length === 0) {
    process.stderr.write(USAGE)
    process.exit(2)
  }
  const total = mean(runs.map(run => run.total))
  process.stdout.write(`${total.toFixed(0)} us of CPU per connect (or resume) in the profile${runs.length > 1 ? `, mean of ${runs.length} profiles` : ''}\n`)
  const names = [...new Set(runs.flatMap(run => run.steps.map(([step]) => step)))]
  const rows = names.map(step => {
    const values = runs.map(run => run.steps.find(([name]) => name === step)?.[1] ?? 0)
    return { step, mean: mean(values), low: Math.min(...values), high: Math.max(...values) }
  }).sort((a, b) => b.mean - a.mean)
  for (const { step, mean, low, high } of rows) {
    const range = runs.length > 1 ? `  (${low.toFixed(1)} to ${high.toFixed(1)})` : ''
    process.stdout.write(`${mean.toFixed(1).padStart(7)} us  ${step}${range}\n`)
  }
}

function mean (values: readonly number[]): number {
  return values.reduce((sum, value) => sum + value, 0) / values.length
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) main()
