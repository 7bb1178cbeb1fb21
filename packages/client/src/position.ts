/**
 * The client's side of "no gap, no duplicate": where the stream is (kept across a reload when
 * asked), and which event ids were already delivered.
 */

/**
 * Where the last event id is kept between page loads (or process runs). `sessionStorage` fits the
 * browser: it lives as long as the tab, survives a reload, and is not shared with other tabs.
 * Any method may return a promise; `get` is awaited before the first request only.
 *
 * @example
 * ```ts
 * const store: PositionStore = {
 *   get: (key) => localStorage.getItem(key),
 *   set: (key, id) => localStorage.setItem(key, id),
 *   delete: (key) => localStorage.removeItem(key),
 * }
 * ```
 */
export interface PositionStore {
  /** The id saved under `key`, or `null`/`undefined` when there is none. */
  get(key: string): string | null | undefined | Promise<string | null | undefined>
  /** Saves `id` under `key`; called each time the position moves. */
  set(key: string, id: string): void | Promise<void>
  /**
   * Forgets `key`; called when the stream ends for good or the server answers 404 (it no longer
   * knows the stream). Without it, an empty id is saved instead.
   */
  delete?(key: string): void | Promise<void>
}

interface WebStorage {
  getItem(key: string): string | null
  setItem(key: string, value: string): void
  removeItem(key: string): void
}

/** The browser's `sessionStorage` as a {@link PositionStore}, or `undefined` where there is none (Node). */
export function sessionStorageStore(): PositionStore | undefined {
  let storage: WebStorage | undefined
  try {
    // Reading the property itself throws where storage is disabled (sandboxed frames, some privacy modes).
    storage = (globalThis as { sessionStorage?: WebStorage }).sessionStorage
  } catch {
    return undefined
  }
  if (storage === undefined) return undefined
  const web = storage
  return {
    get: (key) => web.getItem(key),
    set: (key, id) => web.setItem(key, id),
    delete: (key) => web.removeItem(key),
  }
}

/**
 * The ids of the most recent events delivered, up to `limit` of them, to drop an event that a
 * reconnection (or a server that replays too much) brings again. Bounded: the oldest id is
 * forgotten first, so memory does not grow with the length of the stream.
 */
export class SeenIds {
  readonly #limit: number
  readonly #ids = new Set<string>()

  constructor(limit: number) {
    this.#limit = limit
  }

  has(id: string): boolean {
    return this.#ids.has(id)
  }

  add(id: string): void {
    if (this.#limit === 0) return
    // Re-adding moves an id to the newest end, so the window always holds the latest ids.
    this.#ids.delete(id)
    this.#ids.add(id)
    if (this.#ids.size > this.#limit) {
      for (const oldest of this.#ids) {
        this.#ids.delete(oldest)
        break
      }
    }
  }

  /** Forgets every id, when the server says ids start over (a new epoch, an unknown position). */
  clear(): void {
    this.#ids.clear()
  }
}
