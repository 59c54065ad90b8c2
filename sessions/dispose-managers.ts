/**
 * Dispose every manager independently and within a time limit each: one that
 * throws or never settles is reported, never allowed to stop the others.
 */
import type { DisposeFailure, DisposeReason } from './lifecycle.js'
import type { Manager } from './manager.js'

export async function disposeManagers (managers: readonly Manager[], timeoutMs: number, reason?: DisposeReason): Promise<DisposeFailure[]> {
  const outcomes = await Promise.all(managers.map(async manager => await disposeOne(manager, timeoutMs, reason)))
  return outcomes.filter((f): f is DisposeFailure => f !== null)
}

async function disposeOne (manager: Manager, timeoutMs: number, reason?: DisposeReason): Promise<DisposeFailure | null> {
  let pending: Promise<void> | void
  try {
    pending = manager.dispose(reason)
  } catch (error) {
    return { manager: manager.name, kind: 'error', error }
  }
  // Most managers dispose synchronously: no timer, no race for them.
  if (!(pending instanceof Promise)) return null
  let timer: NodeJS.Timeout | undefined
  const timedOut = new Promise<DisposeFailure>(resolve => {
    timer = setTimeout(() => resolve({ manager: manager.name, kind: 'timeout' }), timeoutMs)
  })
  const disposed = pending.then(() => null, (error: unknown): DisposeFailure => ({ manager: manager.name, kind: 'error', error }))
  try {
    return await Promise.race([disposed, timedOut])
  } finally {
    clearTimeout(timer)
  }
}
