/**
 * No Docker engine runs here, so the cluster layout is checked as data: the
 * services, their environment (valid Tether configuration, distinct nodes), ports,
 * and a balancer whose timeouts sit above the heartbeat.
 */
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { parse } from 'yaml'
import { loadConfig } from '../config.js'

const root = (path: string): string => fileURLToPath(new URL(`../${path}`, import.meta.url))

interface Service { environment?: Record<string, string>, ports?: string[], volumes?: string[], depends_on?: unknown, image?: string, build?: string }

/** Docker Compose `${VAR:?message}` / `${VAR:-default}` with a value for the required ones. */
function substitute (value: string): string {
  return value.replace(/\$\{(\w+)(?::([?-])([^}]*))?\}/g, (_m, name: string, kind?: string, rest?: string) =>
    kind === '-' ? (rest ?? '') : name === 'AUGMENTOS_AUTH_JWT_SECRET' ? 'x'.repeat(32) : '')
}

t.test('docker-compose.yml: redis, two coherent Tether nodes and a balancer', async t => {
  const compose = parse(readFileSync(root('docker-compose.yml'), 'utf8'), { merge: true }) as { services: Record<string, Service> }
  const services = compose.services
  t.ok(services.redis?.image?.startsWith('redis'), 'a redis service')
  const nodes = ['tether-a', 'tether-b'].map(name => ({ name, service: services[name] }))
  const configs = nodes.map(({ name, service }) => {
    t.ok(service?.build !== undefined, `${name} is built from this repository`)
    const env = Object.fromEntries(Object.entries(service?.environment ?? {}).map(([k, v]) => [k, substitute(String(v))]))
    t.equal(env.HOST, '0.0.0.0', `${name} listens on all interfaces`)
    t.match(env.REDIS_URL, /^redis:\/\/redis:6379$/, `${name} uses the redis service`)
    t.match(JSON.stringify(service?.depends_on), /redis/, `${name} waits for redis`)
    return loadConfig(env)
  })
  t.not(configs[0]?.nodeId, configs[1]?.nodeId, 'distinct NODE_IDs')
  t.not(configs[0]?.publicUrl, configs[1]?.publicUrl, 'distinct PUBLIC_URLs')
  for (const [i, config] of configs.entries()) {
    t.equal(config.publicUrl, `http://${nodes[i]?.name}:${config.port}`, 'each PUBLIC_URL names its own node and port')
    t.equal(config.devMode, false, 'a secret is required')
  }
  const lb = services.lb
  t.ok(lb?.ports?.some(p => p.endsWith(`:${configs[0]?.port}`)), 'the balancer publishes the service port')
  const mount = lb?.volumes?.find(v => v.includes('haproxy.cfg'))?.split(':')[0] ?? ''
  const haproxy = readFileSync(root(mount.replace(/^\.\//, '')), 'utf8')
  for (const { name } of nodes) t.match(haproxy, new RegExp(`server ${name} ${name}:${configs[0]?.port ?? 0}`), `${name} is a backend`)
  const seconds = (key: string): number => Number(new RegExp(`timeout ${key} (\\d+)s`).exec(haproxy)?.[1] ?? 0)
  const silence = (configs[0]?.silenceTimeoutMs ?? 0) / 1000
  for (const key of ['client', 'server', 'tunnel']) t.ok(seconds(key) > silence, `timeout ${key} (${seconds(key)} s) above the silence timeout (${silence} s)`)
  t.match(haproxy, /httpchk GET \/ready/, 'the balancer follows /ready')
})
