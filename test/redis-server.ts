/**
 * A real redis-server of the test's own, on a free loopback port: started,
 * stopped, restarted on the same port, and ended in teardown.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { createServer } from 'node:net'
import { Redis } from 'ioredis'
import type { Teardown } from './helper.js'

async function freePort (): Promise<number> {
  const server = createServer()
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const port = (server.address() as { port: number }).port
  server.close()
  await once(server, 'close')
  return port
}

export class RedisServer {
  private child: ChildProcess | null = null
  private constructor (readonly port: number) {}

  static async start (t: Teardown): Promise<RedisServer> {
    const server = new RedisServer(await freePort())
    t.teardown(async () => { await server.stop() })
    await server.start()
    return server
  }

  get url (): string { return `redis://127.0.0.1:${this.port}` }

  /** One server, not a Redis Cluster. */
  readonly cluster = false

  /** Tells this server's nodes apart from those of other tests. */
  get tag (): string { return String(this.port) }

  async start (): Promise<void> {
    const child = spawn('redis-server', ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' })
    this.child = child
    const deadline = Date.now() + 10_000
    for (;;) {
      const client = new Redis(this.url, { lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0 })
      client.on('error', () => {})
      try {
        await client.connect()
        await client.ping()
        return
      } catch {
        if (Date.now() > deadline) throw new Error('redis-server did not start')
        await new Promise(resolve => setTimeout(resolve, 50))
      } finally {
        client.disconnect()
      }
    }
  }

  async stop (): Promise<void> {
    const child = this.child
    this.child = null
    if (child === null || child.exitCode !== null) return
    child.kill('SIGKILL')
    await once(child, 'exit')
  }

  /** A client of the test's own, closed in teardown. */
  client (t: Teardown): Redis {
    const client = new Redis(this.url)
    client.on('error', () => {})
    t.teardown(() => client.disconnect())
    return client
  }
}
