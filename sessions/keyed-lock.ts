/**
 * Runs tasks one at a time per key, in call order; different keys run freely.
 * This is how connect, resume, expiry and disposal of one user never interleave.
 */
export class KeyedLock {
  private readonly tails = new Map<string, Promise<void>>()

  run<T> (key: string, task: () => T | Promise<T>): Promise<T> {
    const result = (this.tails.get(key) ?? IDLE).then(task)
    // The tail settles with the task either way; once it does, a key nobody queued behind is forgotten.
    // One closure rather than a third promise: every connect passes here.
    const release = (): void => {
      if (this.tails.get(key) === tail) this.tails.delete(key)
    }
    const tail = result.then(release, release)
    this.tails.set(key, tail)
    return result
  }

  /** Keys with work queued or running: a leak check. */
  get size (): number { return this.tails.size }
}

/** Where a key with nothing queued starts: one settled promise for every key. */
const IDLE: Promise<void> = Promise.resolve()
