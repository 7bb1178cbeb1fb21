import { MemoryStore } from '../../src/memory-store.js'
import type { ResponseState } from '../../src/store.js'

/**
 * A memory store whose response records cannot be read: `responses.get` rejects with `failure`, as a
 * shared store's read can (the memory store itself answers at once).
 */
export function unreadableResponses(): { store: MemoryStore; failure: Error } {
  const store = new MemoryStore()
  const failure = new Error('store down')
  store.responses.get = (() => Promise.reject(failure)) as unknown as typeof store.responses.get
  return { store, failure }
}

/**
 * A memory store whose response records are read only when the test says: each `responses.get`
 * waits, counted in `reads`, until `answer()` (the record as it is then) or `fail(error)` settles the
 * oldest one. It lets a test act before the record arrives, as a slow shared store would let a client.
 */
export function heldResponses(): {
  store: MemoryStore
  reads: () => number
  answer(): void
  fail(error: Error): void
} {
  const store = new MemoryStore()
  const read = store.responses.get.bind(store.responses)
  const pending: {
    id: string
    resolve(state: ResponseState | undefined): void
    reject(error: Error): void
  }[] = []
  store.responses.get = ((id: string) =>
    new Promise<ResponseState | undefined>((resolve, reject) =>
      pending.push({ id, resolve, reject }),
    )) as unknown as typeof store.responses.get
  const next = () => {
    const oldest = pending.shift()
    if (oldest === undefined) throw new Error('no read of a response record is pending')
    return oldest
  }
  return {
    store,
    reads: () => pending.length,
    answer() {
      const oldest = next()
      oldest.resolve(read(oldest.id))
    },
    fail(error) {
      next().reject(error)
    },
  }
}
