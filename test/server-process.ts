/** server.ts as a real child process (under the test's TypeScript loader), killed in teardown if still running. */
import { spawn, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { eventually, type Teardown } from './helper.js'

const serverFile = fileURLToPath(new URL('../server.ts', import.meta.url))

/**
 * How long a node may take to listen: under the tests' TypeScript loader and coverage, on a loaded 2-core
 * CI machine, a cold start has taken over 20 s.
 */
const SERVER_START_MS = 60_000

export interface ServerProcess { child: ChildProcess, port: number, output: () => string }

/** Start a node with this environment (on top of the test's own, less any secret) and wait until it listens. */
export async function startServerProcess (t: Teardown, env: Record<string, string>): Promise<ServerProcess> {
  const base = { ...process.env }
  delete base.AUGMENTOS_AUTH_JWT_SECRET
  const child = spawn(process.execPath, [...process.execArgv, serverFile], {
    env: { ...base, PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  t.teardown(() => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL') })
  let output = ''
  child.stdout?.on('data', (chunk: Buffer) => { output += chunk.toString() })
  child.stderr?.on('data', (chunk: Buffer) => { output += chunk.toString() })
  const port = await eventually(() => {
    const match = /Server listening at http:\/\/127\.0\.0\.1:(\d+)/.exec(output)
    return match === null ? undefined : Number(match[1])
  }, 'server listening', SERVER_START_MS)
  return { child, port, output: () => output }
}
