/**
 * Turn one inbound text frame into a validated glasses message, or a protocol
 * error (docs/PROTOCOL.md 1.4). Validators are compiled once at module load.
 */
import { Compile, type Validator } from 'typebox/compile'
import type { TSchema } from 'typebox'
import { AppMessageSchemas, type AppMessage } from './app-messages.js'
import { GlassesMessageSchemas, type GlassesMessage, type UnlistedGlassesMessage } from './glasses-messages.js'
import type { MessageErrorCode } from './error-codes.js'

export type ParseResult<M> =
  | { ok: true, message: M }
  | { ok: false, code: MessageErrorCode, message: string }

/** Keys that could reach an object's prototype if a handler ever merged a message into an object. */
const FORBIDDEN_KEYS = ['__proto__', 'constructor', 'prototype']

/**
 * True when a forbidden key appears as a key anywhere in the value. The raw-text
 * pre-check in `parseJsonObject` keeps this walk off the hot path.
 */
function hasForbiddenKey (value: unknown): boolean {
  if (value === null || typeof value !== 'object') return false
  if (Array.isArray(value)) return value.some(hasForbiddenKey)
  for (const key of Object.keys(value)) {
    if (FORBIDDEN_KEYS.includes(key)) return true
    if (hasForbiddenKey((value as Record<string, unknown>)[key])) return true
  }
  return false
}

/** Deepest nesting accepted unless the caller says otherwise (MAX_JSON_DEPTH). */
export const DEFAULT_MAX_JSON_DEPTH = 32

/** True when the text holds at least `count` opening brackets: cheap, native indexOf. */
function hasOpenings (text: string, count: number): boolean {
  let found = 0
  for (const bracket of ['{', '[']) {
    let at = text.indexOf(bracket)
    while (at >= 0) {
      if (++found >= count) return true
      at = text.indexOf(bracket, at + 1)
    }
  }
  return false
}

/**
 * True when objects and arrays nest deeper than `maxDepth`. Checked on the raw
 * text, before JSON.parse builds anything; texts with too few brackets to be
 * that deep (nearly all) skip the scan.
 */
export function nestsDeeperThan (text: string, maxDepth: number): boolean {
  if (!hasOpenings(text, maxDepth + 1)) return false
  let depth = 0
  let inString = false
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (inString) {
      if (c === 0x5c) i++ // backslash: skip the escaped character
      else if (c === 0x22) inString = false
    } else if (c === 0x22) {
      inString = true
    } else if (c === 0x7b || c === 0x5b) {
      if (++depth > maxDepth) return true
    } else if (c === 0x7d || c === 0x5d) {
      depth--
    }
  }
  return false
}

/** A parsed JSON object that carries a string `type`. */
export interface TypedObject { type: string, [key: string]: unknown }

/** Parse text as a JSON object with a string `type`; shared by glasses and (later) app sockets. */
export function parseJsonObject (text: string, maxDepth = DEFAULT_MAX_JSON_DEPTH): ParseResult<TypedObject> {
  if (nestsDeeperThan(text, maxDepth)) {
    return { ok: false, code: 'INVALID_MESSAGE', message: `message nests deeper than ${maxDepth} levels` }
  }
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    return { ok: false, code: 'MALFORMED_MESSAGE', message: 'frame is not valid JSON' }
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    return { ok: false, code: 'MALFORMED_MESSAGE', message: 'message must be a JSON object' }
  }
  const type = (value as { type?: unknown }).type
  if (typeof type !== 'string') {
    return { ok: false, code: 'MALFORMED_MESSAGE', message: 'message needs a string "type"' }
  }
  // JSON.parse keeps "__proto__" as an own key, so the danger is only in later merges;
  // we refuse such messages outright. The substring test is cheap and almost always false.
  if ((text.includes('__proto__') || text.includes('constructor') || text.includes('prototype')) &&
      hasForbiddenKey(value)) {
    return { ok: false, code: 'INVALID_MESSAGE', message: 'message contains a forbidden key' }
  }
  return { ok: true, message: value as TypedObject }
}

/** Compile a record of schemas into validators keyed the same way. */
export function compileAll<K extends string> (schemas: Record<K, TSchema>): Map<string, Validator> {
  const validators = new Map<string, Validator>()
  for (const [type, schema] of Object.entries(schemas) as Array<[K, TSchema]>) {
    validators.set(type, Compile(schema))
  }
  return validators
}

const glassesValidators = compileAll(GlassesMessageSchemas)
const appValidators = compileAll(AppMessageSchemas)

/** Validate an already parsed object against its schema; names the first failing field. */
export function validateTyped<M> (validators: Map<string, Validator>, value: TypedObject): ParseResult<M> {
  const validator = validators.get(value.type)
  if (validator === undefined) {
    return { ok: false, code: 'UNKNOWN_TYPE', message: `unknown message type "${value.type.slice(0, 64)}"` }
  }
  if (!validator.Check(value)) {
    const first = validator.Errors(value)[0]
    const where = first?.instancePath === '' || first === undefined ? 'message' : first.instancePath
    return { ok: false, code: 'INVALID_MESSAGE', message: `${where}: ${first?.message ?? 'invalid'}` }
  }
  return { ok: true, message: value as M }
}

/** Longer types are no message any client sends: refused rather than relayed. */
const MAX_TYPE_LENGTH = 64

/** A glasses frame: a validated message of a listed type, or a well-formed one of a type Tether has no schema for. */
export type GlassesParseResult =
  | { ok: true, listed: true, message: GlassesMessage }
  | { ok: true, listed: false, message: UnlistedGlassesMessage }
  | { ok: false, code: MessageErrorCode, message: string }

/**
 * Parse and validate one glasses text frame. A well-formed object of an unlisted
 * type is not an error: real phones send many such types, and they are relayed.
 */
export function parseGlassesFrame (text: string, maxDepth = DEFAULT_MAX_JSON_DEPTH): GlassesParseResult {
  const parsed = parseJsonObject(text, maxDepth)
  if (!parsed.ok) return parsed
  const type = parsed.message.type
  if (!glassesValidators.has(type)) {
    if (type.length === 0 || type.length > MAX_TYPE_LENGTH) {
      return { ok: false, code: 'INVALID_MESSAGE', message: `"type" must be 1 to ${MAX_TYPE_LENGTH} characters` }
    }
    return { ok: true, listed: false, message: parsed.message }
  }
  const validated = validateTyped<GlassesMessage>(glassesValidators, parsed.message)
  return validated.ok ? { ok: true, listed: true, message: validated.message } : validated
}

/** Parse and validate one app text frame. */
export function parseAppFrame (text: string, maxDepth = DEFAULT_MAX_JSON_DEPTH): ParseResult<AppMessage> {
  const parsed = parseJsonObject(text, maxDepth)
  if (!parsed.ok) return parsed
  return validateTyped<AppMessage>(appValidators, parsed.message)
}
