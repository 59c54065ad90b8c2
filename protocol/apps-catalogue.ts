/**
 * The apps catalogue (docs/PROTOCOL.md 2): which third-party apps exist, where their
 * webhook is, and the sha256 of their API key. The APPS_FILE format, parsed and
 * validated once at boot; a bad file stops the boot with an error naming the bad entry.
 */
import { readFileSync } from 'node:fs'
import { Type, type Static } from 'typebox'
import { Value } from 'typebox/value'
import { ConfigError } from '../config.js'

const HttpUrl = Type.String({ pattern: '^https?://[^\\s]+$' })

/** `standard` apps run one at a time (starting one stops the other); `background` ones alongside. */
export const AppTypeSchema = Type.Union([Type.Literal('standard'), Type.Literal('background'), Type.Literal('system_dashboard')])

export const PermissionSchema = Type.Object({
  type: Type.String({ minLength: 1, maxLength: 64 }),
  description: Type.Optional(Type.String({ maxLength: 1024 })),
  required: Type.Optional(Type.Boolean())
})

export const HardwareRequirementSchema = Type.Object({
  type: Type.String({ minLength: 1, maxLength: 64 }),
  level: Type.Union([Type.Literal('REQUIRED'), Type.Literal('OPTIONAL')]),
  description: Type.Optional(Type.String({ maxLength: 1024 }))
})

/** One entry of APPS_FILE. Only the first four fields are required; the rest default (see normalise below). */
export const AppEntrySchema = Type.Object({
  packageName: Type.String({ minLength: 1, maxLength: 256, pattern: '^[A-Za-z0-9._-]+$' }),
  name: Type.String({ minLength: 1, maxLength: 256 }),
  webhookUrl: HttpUrl,
  apiKeySha256: Type.String({ pattern: '^[0-9a-fA-F]{64}$' }),
  type: Type.Optional(AppTypeSchema),
  logoUrl: Type.Optional(Type.String({ maxLength: 2048 })),
  webviewUrl: Type.Optional(Type.String({ maxLength: 2048 })),
  /** The app's public base URL (photo uploads go to `<publicUrl>/photo-upload`); default: the webhook's origin. */
  publicUrl: Type.Optional(HttpUrl),
  permissions: Type.Optional(Type.Array(PermissionSchema, { maxItems: 64 })),
  hardwareRequirements: Type.Optional(Type.Array(HardwareRequirementSchema, { maxItems: 64 }))
})
export type AppEntryInFile = Static<typeof AppEntrySchema>

/** A catalogue entry with every default applied. */
export type AppEntry = Required<AppEntryInFile>

function normalise (entry: AppEntryInFile): AppEntry {
  return {
    ...entry,
    apiKeySha256: entry.apiKeySha256.toLowerCase(),
    type: entry.type ?? 'standard',
    logoUrl: entry.logoUrl ?? '',
    webviewUrl: entry.webviewUrl ?? '',
    publicUrl: (entry.publicUrl ?? new URL(entry.webhookUrl).origin).replace(/\/+$/, ''),
    permissions: entry.permissions ?? [],
    hardwareRequirements: entry.hardwareRequirements ?? []
  }
}

export type AppsCatalogue = ReadonlyMap<string, AppEntry>

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
    catalogue.set(entry.packageName, normalise(entry))
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
