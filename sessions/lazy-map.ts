/**
 * A Map whose hash table is made on the first write. An empty JS Map costs
 * about 150 bytes, and a session carries several that most sessions (no app,
 * no layout) never fill: at 10,000 idle sessions that is megabytes of empty
 * tables. Reads of a never-written LazyMap allocate nothing.
 */
export class LazyMap<K, V> implements Iterable<[K, V]> {
  private table: Map<K, V> | null = null

  get size (): number { return this.table?.size ?? 0 }

  get (key: K): V | undefined { return this.table?.get(key) }

  has (key: K): boolean { return this.table?.has(key) ?? false }

  set (key: K, value: V): this {
    (this.table ??= new Map()).set(key, value)
    return this
  }

  delete (key: K): boolean { return this.table?.delete(key) ?? false }

  /** Empties the map and lets its table go. */
  clear (): void { this.table = null }

  keys (): IterableIterator<K> { return (this.table ?? EMPTY).keys() as IterableIterator<K> }

  values (): IterableIterator<V> { return (this.table ?? EMPTY).values() as IterableIterator<V> }

  entries (): IterableIterator<[K, V]> { return (this.table ?? EMPTY).entries() as IterableIterator<[K, V]> }

  [Symbol.iterator] (): IterableIterator<[K, V]> { return this.entries() }
}

/** Shared by every unwritten LazyMap; never written to. */
const EMPTY: ReadonlyMap<unknown, unknown> = new Map()
