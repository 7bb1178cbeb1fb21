/**
 * The client's side of "no gap, no duplicate": where the stream is (saved across a reload when
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
    // Stryker disable next-line BlockStatement: an empty catch returns undefined too
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

function ignore(): void {}

/**
 * The position saved under a `storageKey`, and next to it (under `<storageKey>:url`) the URL that
 * resumes a stream opened with another method than GET. Read before the first request, written as
 * they change, forgotten when the stream ends for good or the server no longer knows it. Best effort
 * throughout: a store that fails or holds something that is no id reads as empty, and a write that
 * fails leaves the position in memory for this page.
 */
export class SavedPosition {
  readonly #store: PositionStore | undefined
  readonly #key: string | undefined
  readonly #urlKey: string | undefined

  /** Saves nothing when `store` or `key` is `undefined` (no `storageKey`). */
  constructor(store: PositionStore | undefined, key: string | undefined) {
    this.#store = store
    this.#key = key
    this.#urlKey = key === undefined ? undefined : `${key}:url`
  }

  /** The saved position, or `''`. */
  position(): Promise<string> {
    return this.#read(this.#key)
  }

  /** The saved URL that resumes the stream, or `''`. */
  url(): Promise<string> {
    return this.#read(this.#urlKey)
  }

  savePosition(id: string): void {
    this.#write(this.#key, id)
  }

  saveUrl(url: string): void {
    this.#write(this.#urlKey, url)
  }

  /** Forgets the position and the URL, so the next page load starts afresh. */
  forget(): void {
    this.#write(this.#key, '')
    this.#write(this.#urlKey, '')
  }

  async #read(key: string | undefined): Promise<string> {
    const store = this.#store
    if (store === undefined || key === undefined) return ''
    try {
      const value = await store.get(key)
      // What goes into a Last-Event-ID header: a value with CR, LF or NUL can't, so it is no position.
      return typeof value === 'string' && !/[\r\n\0]/.test(value) ? value : ''
    } catch {
      // Without the saved value the stream starts as if there were none.
      return ''
    }
  }

  /** Saves a value, or forgets it when it is `''`. */
  #write(key: string | undefined, value: string): void {
    const store = this.#store
    if (store === undefined || key === undefined) return
    try {
      const written =
        value !== '' ? store.set(key, value) : store.delete ? store.delete(key) : store.set(key, '')
      if (written instanceof Promise) written.catch(ignore)
    } catch {
      // Storage full or disabled: the position in memory still holds for this page.
    }
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
