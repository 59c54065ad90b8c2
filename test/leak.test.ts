/**
 * Nothing leaks (issue 5): 5 rounds of 2,000 sessions, in a process of their own
 * with --expose-gc. After the last round the registry is empty, no timer or
 * socket remains beyond those at rest, and the heap is within 10% of round one.
 */
import { execFileSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import t from 'tap'

const script = fileURLToPath(new URL('./leak/leak-rounds.ts', import.meta.url))

t.test('five rounds of 2,000 sessions leave nothing behind', async t => {
  const output = execFileSync(process.execPath, ['--expose-gc', ...process.execArgv, script], {
    env: { ...process.env, LEAK_SESSIONS: '2000', LEAK_ROUNDS: '5' },
    timeout: 300_000,
    maxBuffer: 16 * 1024 * 1024
  }).toString()
  const line = output.trim().split('\n').at(-1) ?? '{}'
  const result = JSON.parse(line) as { heap: number[], resumed: number, sessionsLeft: number, before: Record<string, number>, after: Record<string, number> }
  t.equal(result.heap.length, 5, 'five rounds ran')
  t.equal(result.resumed, 10_000, 'every reconnect resumed its session')
  t.equal(result.sessionsLeft, 0, 'the registry is empty')
  t.equal(result.after.TCPSocketWrap ?? 0, result.before.TCPSocketWrap ?? 0, 'no socket left')
  t.equal(result.after.Timeout ?? 0, result.before.Timeout ?? 0, 'no timer left')
  const first = result.heap[0] ?? 0
  const last = result.heap.at(-1) ?? 0
  t.ok(last <= first * 1.1, `heap after the last round within 10% of round one (${(first / 1048576).toFixed(1)} MiB -> ${(last / 1048576).toFixed(1)} MiB)`)
})
