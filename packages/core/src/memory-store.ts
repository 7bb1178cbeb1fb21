/**
 * The in-memory store: a bounded history per stream (see memory-history.ts) and the responses kept
 * beside them (see memory-responses.ts), in this process only.
 */

import {
  DEFAULT_MAX_BYTES,
  DEFAULT_MAX_EVENTS,
  type HistoryOptions,
  MemoryHistory,
} from './memory-history.js'
import { DEFAULT_MAX_RESPONSES, MemoryResponses } from './memory-responses.js'
import { AttachedHub } from './shared-store.js'
import type { NewEvent, ReadResult, StoreDelivery, StoredEvent, SyncHistoryStore } from './store.js'
import { positiveInteger } from './validation.js'

/** Options of {@link createMemoryStore}. */
export interface MemoryStoreOptions extends HistoryOptions {
  /**
   * Most streams with a history. Only publishing creates one (subscribing does not). Past it, the
   * history of the least recently published stream that has no subscriber in this process is
   * dropped (its clients then get an `epoch` gap on resume).
   * @defaultValue 10000
   */
  maxStreams?: number
  /**
   * Most responses kept at once, active or ended (an ended one is kept for its TTL). Past it the
   * oldest ended response is dropped early; if every one is active, starting another throws
   * `ERR_RESPONSE_LIMIT`. Responses have bounds of their own (see `HubOptions.responses`) and do not
   * count against `maxStreams`.
   * @defaultValue 1000
   */
  maxResponses?: number
  /** Clock used for `maxAge`, in milliseconds. @defaultValue `Date.now` */
  now?: () => number
}

/**
 * The defaults of {@link MemoryStoreOptions} (and `HubOptions.history`), for code that sizes
 * things after them. Frozen: changing them would change nothing.
 */
export const MEMORY_STORE_DEFAULTS = Object.freeze({
  /** Most events kept per stream: 1000. */
  maxEvents: DEFAULT_MAX_EVENTS,
  /** Most bytes of encoded frames kept per stream: 16 MiB. */
  maxBytes: DEFAULT_MAX_BYTES,
  /** Most streams with a history: 10,000. */
  maxStreams: 10_000,
  /** Most responses kept at once, active or ended: 1000. */
  maxResponses: DEFAULT_MAX_RESPONSES,
})

/**
 * The default history store: a {@link MemoryHistory} per stream, in this process only.
 * Histories are created by the first publish and the least recently published unwatched ones are
 * dropped past `maxStreams`, so neither the number of streams nor their contents grow without bound.
 * Subscribing creates no history: clients of made-up stream names cannot push out real ones.
 *
 * It serves one hub at a time: a hub fans out only what is published through it, so a second hub on
 * the same store would never hear of the first one's events. A second hub is refused
 * (`ERR_INVALID_ARGUMENT`) until the first one's `close()` has resolved; the next hub then takes the
 * store over with its histories and responses. To share events between hubs, share the hub, or give
 * each one `@rewind/redis`.
 */
export class MemoryStore implements SyncHistoryStore {
  readonly synchronous = true
  /** The responses kept in this store (their events, in histories of their own, and their records). */
  readonly responses: MemoryResponses
  /** Histories of published streams, least recently published first; these count against `maxStreams`. */
  private readonly histories = new Map<string, MemoryHistory>()
  /**
   * Epochs of streams that were subscribed to but not published to, least recently subscribed first:
   * a client that saw such a stream empty resumes exactly once events arrive. At most `maxStreams`
   * besides the watched ones; dropping one costs its clients an `epoch` gap, never a published history.
   */
  private readonly unpublished = new Map<string, string>()
  private readonly watched = new Set<string>()
  private readonly maxStreams: number
  /** The hub using this store, if any (see {@link MemoryStore.attach}). */
  private readonly hub = new AttachedHub(
    'this memory store is already attached to a hub, which would never pass its events to another; use one hub per store: share that hub (or close it first), or use @rewind/redis to share events between hubs and processes',
  )

  constructor(private readonly options: MemoryStoreOptions = {}) {
    this.maxStreams = positiveInteger('maxStreams', options.maxStreams ?? MEMORY_STORE_DEFAULTS.maxStreams)
    this.responses = new MemoryResponses(
      positiveInteger('maxResponses', options.maxResponses ?? DEFAULT_MAX_RESPONSES),
      // Stryker disable next-line LogicalOperator: the responses' clock only stamps events for maxAge, which response histories never have
      options.now ?? Date.now,
    )
    // Validate the history bounds now rather than at the first publish.
    new MemoryHistory(options)
  }

  append(stream: string, event: NewEvent): StoredEvent {
    let history = this.histories.get(stream)
    if (history === undefined) history = this.publishFirst(stream)
    else {
      // Re-inserting keeps the map in least-recently-published order for eviction.
      this.histories.delete(stream)
      this.histories.set(stream, history)
    }
    return history.append(event)
  }

  read(stream: string, after: string | null | undefined, limit: number): ReadResult {
    const response = this.responses.history(stream)
    if (response !== undefined) return response.read(after, limit)
    // A stream without a history reads as an empty one (of a fresh epoch if never subscribed to).
    return (this.histories.get(stream) ?? this.empty(stream)).read(after, limit)
  }

  watch(stream: string): void {
    this.watched.add(stream)
    if (this.histories.has(stream) || this.responses.history(stream) !== undefined) return
    const epoch = this.unpublished.get(stream) ?? new MemoryHistory(this.options).epoch
    this.unpublished.delete(stream)
    this.unpublished.set(stream, epoch)
    // Drops the least recent unwatched streams past the bound (the first check ends it when within).
    for (const name of this.unpublished.keys()) {
      if (this.unpublished.size <= this.maxStreams + this.watched.size) break
      if (!this.watched.has(name)) this.unpublished.delete(name)
    }
  }

  unwatch(stream: string): void {
    this.watched.delete(stream)
  }

  size(stream: string): number {
    return (this.responses.history(stream) ?? this.histories.get(stream))?.size ?? 0
  }

  /** Number of streams that currently have a history. */
  get streams(): number {
    return this.histories.size
  }

  /** The history of `stream`, if it was published to or subscribed to (then empty). */
  history(stream: string): MemoryHistory | undefined {
    const response = this.responses.history(stream)
    if (response !== undefined) return response
    return this.histories.get(stream) ?? (this.unpublished.has(stream) ? this.empty(stream) : undefined)
  }

  /**
   * Called by the hub that takes this store. Throws `ERR_INVALID_ARGUMENT` while another hub uses it:
   * that hub's events would never reach this one's subscribers, not even after they reconnect.
   */
  attach(delivery: StoreDelivery): void {
    this.hub.attach(delivery)
  }

  /** Called when the hub that attached has closed: the store is free for another hub. */
  detach(delivery: StoreDelivery): void {
    this.hub.detach(delivery)
  }

  /** Clears the responses' expiry timers (the hub that created this store is closing). */
  close(): void {
    this.responses.clear()
  }

  private empty(stream: string): MemoryHistory {
    return new MemoryHistory(this.options, this.unpublished.get(stream))
  }

  /** Makes the history of a stream's first publish count, dropping the least recent past `maxStreams`. */
  private publishFirst(stream: string): MemoryHistory {
    const history = new MemoryHistory(this.options, this.unpublished.get(stream))
    this.unpublished.delete(stream)
    this.histories.set(stream, history)
    for (const name of this.histories.keys()) {
      if (this.histories.size <= this.maxStreams) break
      if (name !== stream && !this.watched.has(name)) this.histories.delete(name)
    }
    return history
  }
}

/** Creates the default in-memory history store. */
export function createMemoryStore(options?: MemoryStoreOptions): MemoryStore {
  return new MemoryStore(options)
}
