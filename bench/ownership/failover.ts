/**
 * One node dies (the design's `kill`: no retiring, no letting go) with churn
 * stopped. Measured from the death: (1) how long until another node can claim
 * one of its users, trying as a reconnecting client would, through that node's
 * real claim path; (2) how long until its users are listed as the design lists
 * a dead node's users.
 */
import type { DesignRun, SettledFigure, SimNode } from './design.js'
import type { FakeSession } from './fake-sessions.js'

export interface FailoverFigures {
  deadNode: string
  user: string
  /** From the death until a claim elsewhere succeeded; null when none did within the limit. */
  claimMs: number | null
  claimAttempts: number
  settled: SettledFigure
}

/** A reconnecting client retries this soon after a 503. */
const RETRY_MS = 50

const delay = async (ms: number): Promise<void> => { await new Promise(resolve => setTimeout(resolve, ms)) }

function activeSessionOf (node: SimNode): FakeSession {
  for (let i = 0; i < 10_000; i++) {
    const session = node.host.random()
    if (session?.state === 'active') return session
  }
  throw new Error(`no active session on ${node.nodeId} to take over`)
}

export async function failover (run: DesignRun, limitMs: number): Promise<FailoverFigures> {
  const dead = run.nodes[run.nodes.length - 1] as SimNode
  const survivor = run.nodes[0] as SimNode
  const victim = activeSessionOf(dead)
  await run.beforeKill(dead, survivor)
  const killedAt = Date.now()
  dead.kill()
  let attempts = 0
  const claim = (async (): Promise<number | null> => {
    while (Date.now() - killedAt < limitMs) {
      attempts += 1
      try {
        await survivor.connect(victim.userId, victim.busy)
        return Date.now() - killedAt
      } catch {
        await delay(RETRY_MS)
      }
    }
    return null
  })()
  const [claimMs, settled] = await Promise.all([claim, run.settled(dead, survivor, killedAt, limitMs)])
  return { deadNode: dead.nodeId, user: victim.userId, claimMs, claimAttempts: attempts, settled }
}
