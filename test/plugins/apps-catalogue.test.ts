import { execFileSync } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { ConfigError } from '../../config.js'
import { loadCatalogue, parseCatalogue } from '../../protocol/apps-catalogue.js'
import { sha256 } from '../raw-app.js'

const good = { packageName: 'com.example.a', name: 'A', webhookUrl: 'http://127.0.0.1:1/webhook', apiKeySha256: sha256('k') }

t.test('a valid catalogue loads; keys are kept lower-case', async t => {
  const c = parseCatalogue(JSON.stringify([{ ...good, apiKeySha256: good.apiKeySha256.toUpperCase() }]), 'test')
  t.equal(c.get('com.example.a')?.apiKeySha256, good.apiKeySha256)
  t.equal(loadCatalogue(null).size, 0, 'no APPS_FILE: no apps')
})

t.test('a bad catalogue stops the boot with an error naming the entry', async t => {
  t.throws(() => parseCatalogue('{', 'f'), { name: 'ConfigError', message: /f: not valid JSON/ })
  t.throws(() => parseCatalogue('{}', 'f'), /must be a JSON array/)
  t.throws(() => parseCatalogue(JSON.stringify([good, { ...good, packageName: 'com.bad', apiKeySha256: 'xyz' }]), 'f'),
    /entry 1 \(com\.bad\): apiKeySha256/)
  t.throws(() => parseCatalogue(JSON.stringify([good, { ...good, webhookUrl: 'ftp://x' }]), 'f'), /entry 1 \(com\.example\.a\): webhookUrl/)
  t.throws(() => parseCatalogue(JSON.stringify([good, good]), 'f'), /duplicate packageName/)
  t.throws(() => parseCatalogue(JSON.stringify([{ name: 'x' }]), 'f'), /entry 0: /)
  t.throws(() => loadCatalogue('/nonexistent/apps.json'), ConfigError)
})

// The server boots under the tests' TypeScript loader: on a loaded 2-core machine that alone takes seconds.
t.test('the server refuses to boot on a bad APPS_FILE, naming it', async t => {
  const dir = t.testdir()
  const file = join(dir, 'apps.json')
  writeFileSync(file, JSON.stringify([{ ...good, name: '' }]))
  const server = fileURLToPath(new URL('../../server.ts', import.meta.url))
  let stderr = ''
  let status = 0
  try {
    execFileSync(process.execPath, [...process.execArgv, server], { env: { ...process.env, APPS_FILE: file, PORT: '0' }, stdio: 'pipe', timeout: 60_000 })
  } catch (error) {
    const e = error as { status: number, stderr: Buffer }
    status = e.status
    stderr = e.stderr.toString()
  }
  t.equal(status, 2)
  t.match(stderr, /entry 0 \(com\.example\.a\): name/)
})

t.test('the app-key helper prints the sha256 of a key', async t => {
  const script = fileURLToPath(new URL('../../bin/app-key.ts', import.meta.url))
  const out = execFileSync(process.execPath, [...process.execArgv, script, 'k']).toString()
  t.match(out, new RegExp(`apiKeySha256: ${sha256('k')}`))
  const generated = execFileSync(process.execPath, [...process.execArgv, script]).toString()
  const key = /apiKey: +(\S+)/.exec(generated)?.[1] ?? ''
  t.match(generated, new RegExp(`apiKeySha256: ${sha256(key)}`))
})
