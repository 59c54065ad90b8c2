/**
 * Runs tasks one at a time per key, in call order; different keys run freely.
 * This is how connect, resume, expiry and disposal of one user never interleave.
 */
export class KeyedLock {
  private readonly tails = new Map<string, Promise<void>>()

  run<T> (key: string, task: () => T | Promise<T>): Promise<T> {
    const previous = this.tails.get(key) ?? Promise.resolve()
    const result = previous.then(task)
    const tail = result.then(noop, noop)
    this.tails.set(key, tail)
    void tail.then(() => {
      if (this.tails.get(key) === tail) this.tails.delete(key)
    })
    return result
  }

  /** Keys with work queued or running: a leak check. */
  get size (): number { return this.tails.size }
}

function noop (): void {}
