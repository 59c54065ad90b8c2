/**
 * The close-code table is the one source: codes unique, derived names and reasons
 * agree with it, and the README's table says for each code what its entry says.
 */
import { readFileSync } from 'node:fs'
import t from 'tap'
import { CLOSE_CODES, CloseCode, CloseReason, type ReconnectAdvice } from '../../protocol/close-codes.js'

/** How the README's "a well-behaved client should" column begins for each advice. */
const README_WORDS: Record<ReconnectAdvice, string> = {
  reconnect: 'reconnect',
  reconnect_with_jitter: 'reconnect, with jitter',
  fix_then_reconnect: 'fix itself, then reconnect',
  do_not_reconnect: 'not reconnect'
}

/** Sent by nobody: a socket dropped without a close frame. */
const NO_CLOSE_FRAME = 1006

t.test('every code appears once; names and reasons derive from the table', async t => {
  const entries = Object.entries(CLOSE_CODES)
  t.equal(new Set(entries.map(([, entry]) => entry.code)).size, entries.length, 'no code twice')
  for (const [name, entry] of entries) {
    t.equal(CloseCode[name as keyof typeof CloseCode], entry.code, name)
    t.equal(CloseReason[entry.code], entry.reason, `${entry.code} reason`)
    t.ok(entry.reason.length > 0 && entry.reason.length <= 123, `${entry.code} reason fits a close frame`)
  }
})

t.test('the README lists every glasses close code with the reconnect advice of its entry', async t => {
  const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8')
  const section = readme.slice(readme.indexOf('## Close codes'), readme.indexOf('\n## ', readme.indexOf('## Close codes') + 1))
  const rows = section.split('\n').filter(line => /^\| \d{4} \|/.test(line)).map(line => line.split('|').map(cell => cell.trim()))
  const byCode = new Map(Object.values(CLOSE_CODES).map(entry => [entry.code as number, entry]))
  const listed = new Set<number>()
  for (const [, code = '', , should = ''] of rows) {
    const number = Number(code)
    listed.add(number)
    if (number === NO_CLOSE_FRAME) continue
    const entry = byCode.get(number)
    if (entry === undefined) { t.fail(`README lists ${number}, which the table does not have`); continue }
    t.ok(should.startsWith(README_WORDS[entry.reconnect]), `${number}: "${should}" says ${entry.reconnect}`)
  }
  // 1000 goes to app sockets only (the paragraph under the table).
  for (const entry of Object.values(CLOSE_CODES)) {
    if (entry.code !== CloseCode.NORMAL) t.ok(listed.has(entry.code), `README lists ${entry.code}`)
  }
})
