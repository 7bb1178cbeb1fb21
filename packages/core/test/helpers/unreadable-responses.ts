import { MemoryStore } from '../../src/memory-store.js'

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
