/**
 * Run a task over many items with a bound on how many are in flight: a node's
 * burst of writes (a counters sweep, writing every user again after a lapse,
 * settling a dead node) must not queue a hundred thousand commands at once,
 * which would time them out and hold their payloads in memory together.
 */
export async function inBatches<T> (items: Iterable<T>, limit: number, task: (item: T) => Promise<void>): Promise<void> {
  const iterator = items[Symbol.iterator]()
  const worker = async (): Promise<void> => {
    for (let next = iterator.next(); next.done !== true; next = iterator.next()) await task(next.value)
  }
  await Promise.all(Array.from({ length: limit }, worker))
}
