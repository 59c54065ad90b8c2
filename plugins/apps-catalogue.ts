/**
 * The apps catalogue (PROTOCOL 2): which third-party apps exist, where their
 * webhook is, and the sha256 of their API key. Read from APPS_FILE and validated
 * once at boot; a bad file stops the boot with an error naming the bad entry.
 */
import { readFileSync } from 'node:fs'
import fp from 'fastify-plugin'
import { Type, type Static } from 'typebox'
import { Value } from 'typebox/value'
import { ConfigError, type Config } from '../config.js'

export const AppEntrySchema = Type.Object({
  packageName: Type.String({ minLength: 1, maxLength: 256, pattern: '^[A-Za-z0-9._-]+$' }),
  name: Type.String({ minLength: 1, maxLength: 256 }),
  webhookUrl: Type.String({ pattern: '^https?://[^\\s]+$' }),
  apiKeySha256: Type.String({ pattern: '^[0-9a-fA-F]{64}$' })
})
export type AppEntry = Static<typeof AppEntrySchema>

export type AppsCatalogue = ReadonlyMap<string, AppEntry>

declare module 'fastify' {
  interface FastifyInstance { appsCatalogue: AppsCatalogue }
}

/** Parse and validate a catalogue; `source` names the file in errors. */
export function parseCatalogue (text: string, source: string): AppsCatalogue {
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch (error) {
    throw new ConfigError(`${source}: not valid JSON (${(error as Error).message})`)
  }
  if (!Array.isArray(value)) throw new ConfigError(`${source}: must be a JSON array of apps`)
  const catalogue = new Map<string, AppEntry>()
  value.forEach((entry: unknown, index) => {
    const label = typeof (entry as { packageName?: unknown })?.packageName === 'string'
      ? `entry ${index} (${(entry as { packageName: string }).packageName})`
      : `entry ${index}`
    if (!Value.Check(AppEntrySchema, entry)) {
      const problems = Value.Errors(AppEntrySchema, entry).map(e => `${e.instancePath.slice(1) || 'entry'} ${e.message}`)
      throw new ConfigError(`${source}: ${label}: ${problems.join('; ')}`)
    }
    if (catalogue.has(entry.packageName)) throw new ConfigError(`${source}: ${label}: duplicate packageName`)
    catalogue.set(entry.packageName, { ...entry, apiKeySha256: entry.apiKeySha256.toLowerCase() })
  })
  return catalogue
}

export function loadCatalogue (file: string | null): AppsCatalogue {
  if (file === null) return new Map()
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (error) {
    throw new ConfigError(`APPS_FILE ${file}: ${(error as Error).message}`)
  }
  return parseCatalogue(text, `APPS_FILE ${file}`)
}

export default fp<{ config: Config, catalogue?: AppsCatalogue }>(async function appsCataloguePlugin (fastify, options) {
  fastify.decorate('appsCatalogue', options.catalogue ?? loadCatalogue(options.config.appsFile))
}, { name: 'tether-apps-catalogue' })
