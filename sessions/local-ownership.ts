/**
 * Ownership on one node alone: every claim is granted at once (synchronously, so
 * the connect path never waits), nothing is written anywhere, and the admin
 * views are this node's sessions.
 */
import type { SessionCounts } from '../protocol/admin.js'
import type { DisposeReason } from './lifecycle.js'
import type {
  NodeInfo, Ownership, OwnershipHost, RequestHandler, SessionPage, SessionPageQuery
} from './ownership.js'
import { MemoryUserStore, type UserStore } from './user-store.js'
import { sessionPosition } from './session-position.js'
import type { SessionSnapshot } from './session-snapshot.js'
import { countByState, sessionDetail, summarize, type SessionDetail } from './summary.js'
import type { UserSession } from './user-session.js'

const NO_HOST: OwnershipHost = {
  local: () => undefined,
  all: () => [],
  locked: async (_userId, task) => await task(),
  end: async () => false
}

export class LocalOwnership implements Ownership {
  readonly healthy = true
  private host: OwnershipHost = NO_HOST
  private readonly listeners = new Set<() => void>()

  constructor (readonly nodeId: string, readonly userStore: UserStore = new MemoryUserStore()) {}

  async start (host: OwnershipHost): Promise<void> { this.host = host }

  async stop (): Promise<void> {}

  async prepare (): Promise<void> {}

  claim (): SessionSnapshot | null { return null }

  changed (): void { this.notify() }

  released (_session: UserSession, _reason: DisposeReason): void { this.notify() }

  /** Sessions sorted by position on every call: cheap at one node's numbers (a sort of 10,000 takes a few ms). */
  async page (query: SessionPageQuery): Promise<SessionPage> {
    const now = Date.now()
    const matching: Array<{ position: string, session: UserSession }> = []
    for (const session of this.host.all()) {
      if (query.state === undefined ? !session.isLive : session.state !== query.state) continue
      const position = sessionPosition(session.startedAt, session.sessionInstanceId, session.userId)
      if (query.after === null || position > query.after) matching.push({ position, session })
    }
    matching.sort((a, b) => a.position < b.position ? -1 : a.position > b.position ? 1 : 0)
    const page = matching.slice(0, query.limit)
    return {
      sessions: page.map(entry => summarize(entry.session, now)),
      next: matching.length > query.limit ? page[page.length - 1]?.position ?? null : null,
      counts: this.counts()
    }
  }

  async detail (userId: string): Promise<SessionDetail | null> {
    const session = this.host.local(userId)
    return session === undefined ? null : sessionDetail(session)
  }

  async end (userId: string): Promise<boolean> { return await this.host.end(userId, 'manual') }

  async nodes (): Promise<NodeInfo[]> {
    const { active, grace } = this.counts()
    return [{ nodeId: this.nodeId, publicUrl: '', active, grace, at: new Date().toISOString() }]
  }

  /** No other node forwards anything here. */
  serve (_method: string, _handler: RequestHandler): void {}

  async forward<T> (): Promise<T | null> { return null }

  onChange (listener: () => void): () => void {
    this.listeners.add(listener)
    return () => { this.listeners.delete(listener) }
  }

  private counts (): SessionCounts { return countByState(this.host.all()) }

  private notify (): void {
    for (const listener of this.listeners) listener()
  }
}
