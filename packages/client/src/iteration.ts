/**
 * `for await` over a source: each iterator gets its own channel. The source hands over the next
 * event only once every loop asks for one again, so a slow loop slows the reading of the response
 * instead of queueing events in memory.
 */

/** A promise with its resolver at hand. */
interface Waiter<T> {
  resolve(result: IteratorResult<T>): void
  reject(error: unknown): void
}

/** One iterator's queue of items, at most one long while the source honours {@link ItemChannel.busy}. */
export class ItemChannel<T> implements AsyncIterableIterator<T> {
  readonly #items: T[] = []
  #waiter: Waiter<T> | undefined
  #finished = false
  #error: unknown
  readonly #onReady: () => void
  readonly #onReturn: (channel: ItemChannel<T>) => void

  /**
   * @param onReady - called when the loop asks for the next item, so the source may go on
   * @param onReturn - called when the loop stops early (`break`, `return`, a throw)
   */
  constructor(onReady: () => void, onReturn: (channel: ItemChannel<T>) => void) {
    this.#onReady = onReady
    this.#onReturn = onReturn
  }

  /** Whether the loop is still busy with the last item (it has not asked for the next one yet). */
  get busy(): boolean {
    return !this.#finished && this.#waiter === undefined
  }

  push(item: T): void {
    if (this.#finished) return
    const waiter = this.#waiter
    if (waiter === undefined) {
      this.#items.push(item)
      return
    }
    this.#waiter = undefined
    waiter.resolve({ value: item, done: false })
  }

  /** Ends the iteration once the queued items are taken: normally, or by throwing `error`. */
  finish(error?: unknown): void {
    if (this.#finished) return
    this.#finished = true
    this.#error = error
    const waiter = this.#waiter
    if (waiter === undefined) return
    this.#waiter = undefined
    this.#settle(waiter)
  }

  next(): Promise<IteratorResult<T>> {
    const item = this.#items.shift()
    if (item !== undefined) return Promise.resolve({ value: item, done: false })
    return new Promise((resolve, reject) => {
      const waiter = { resolve, reject }
      if (this.#finished) this.#settle(waiter)
      else {
        this.#waiter = waiter
        this.#onReady()
      }
    })
  }

  return(): Promise<IteratorResult<T>> {
    this.#items.length = 0
    if (!this.#finished) {
      this.#finished = true
      this.#onReturn(this)
    }
    return Promise.resolve({ value: undefined, done: true })
  }

  [Symbol.asyncIterator](): this {
    return this
  }

  #settle(waiter: Waiter<T>): void {
    const error = this.#error
    if (error === undefined) {
      waiter.resolve({ value: undefined, done: true })
      return
    }
    // The error is thrown once; a loop that calls next() again just ends.
    this.#error = undefined
    waiter.reject(error)
  }
}
