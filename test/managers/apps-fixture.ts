/**
 * A real AppsService for manager unit tests: a catalogue of the test's own, the
 * memory directory, a stub public URL and inline LC3 decoding (closed in teardown).
 * No socket server.
 */
import { createLc3Decoding, type Lc3Decoding } from '../../audio/lc3-decoding.js'
import type { Config } from '../../config.js'
import { AppsService } from '../../managers/apps-service.js'
import type { AppEntry } from '../../protocol/apps-catalogue.js'
import { silentLog } from '../../sessions/log.js'
import { NodeEvents } from '../../sessions/node-events.js'
import { MemoryUserStore } from '../../sessions/user-store.js'
import { testConfig, type Teardown } from '../helper.js'

/** A catalogue entry with every field set, as parseCatalogue would leave it. */
export function appEntry (packageName: string, extra: Partial<AppEntry> = {}): AppEntry {
  return {
    packageName,
    name: packageName,
    // Port 9 on loopback (discard): nothing listens, so a webhook sent by mistake fails fast.
    webhookUrl: `http://127.0.0.1:9/${packageName}/webhook`,
    apiKeySha256: '0'.repeat(64),
    type: 'standard',
    logoUrl: '',
    webviewUrl: '',
    publicUrl: 'http://127.0.0.1:9',
    permissions: [],
    hardwareRequirements: [],
    ...extra
  }
}

export interface AppsFixture {
  service: AppsService
  directory: MemoryUserStore
  decoding: Lc3Decoding
  /** What the decoding reported to its onError: a test expects none. */
  decodingErrors: Error[]
}

export function appsService (t: Teardown, entries: readonly AppEntry[] = [], config: Partial<Config> = {}): AppsFixture {
  const decodingErrors: Error[] = []
  const decoding = createLc3Decoding({ thread: 'main', onError: error => { decodingErrors.push(error) } })
  t.teardown(async () => { await decoding.close() })
  const directory = new MemoryUserStore()
  const catalogue = new Map(entries.map(entry => [entry.packageName, entry]))
  const service = new AppsService(catalogue, directory, testConfig(config), silentLog, () => 'https://tether.test', decoding,
    new NodeEvents(silentLog))
  return { service, directory, decoding, decodingErrors }
}
