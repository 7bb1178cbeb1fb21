/** A position store in memory that outlives a source, as sessionStorage outlives a page load. */
import type { PositionStore } from '../../src/index.js'

export type MemoryStore = PositionStore & { saved: Map<string, string> }

export function memoryStore(entries: [string, string][] = []): MemoryStore {
  const saved = new Map(entries)
  return {
    saved,
    get: (key) => saved.get(key),
    set: (key, id) => void saved.set(key, id),
    delete: (key) => void saved.delete(key),
  }
}
