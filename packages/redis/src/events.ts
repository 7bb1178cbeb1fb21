/**
 * Stream entries turned into stored events, each frame encoded once, and a small cache so history
 * reads and the live tail of one process share the same event objects.
 */
import type { StoredEvent } from '@rewind/core'
import { decodeStoredData, encodeStoredFrame } from '@rewind/core/adapter'
import { orderOf } from './ids.js'
import type { Deserializer } from './options.js'
import { FIELDS, type RawEntry } from './scripts.js'

/** Most events the cache holds. */
const CACHE_EVENTS = 4096
/** Most frame bytes the cache holds; one larger event is simply not cached. */
const CACHE_BYTES = 8 * 1024 * 1024

/** How entries' data becomes values, and where a failure to do so is reported. */
export interface Decoder {
  readonly deserialize: Deserializer
  readonly report: (error: unknown) => void
}

/** An event read back from a stream entry. */
export class RedisEvent implements StoredEvent {
  readonly major: number
  readonly minor: number
  readonly frame: Buffer
  private parsed: { readonly value: unknown } | undefined

  constructor(
    /** The Redis key of the stream, for reports. */
    private readonly key: string,
    readonly id: string,
    readonly event: string | undefined,
    readonly data: string,
    /** Whether `data` is the published value itself (it was a string). */
    readonly isString: boolean,
    /** Id of the entry that was newest when this one was added, or `''` if the entry has none. */
    readonly prev: string,
    private readonly decoder: Decoder,
  ) {
    const order = orderOf(id)
    this.major = order.major
    this.minor = order.minor
    this.frame = Buffer.from(encodeStoredFrame(id, event, data))
  }

  /**
   * The value as published: the string itself, or `data` deserialized on first access; data that
   * does not deserialize gives the raw string, and is reported (see `decodeStoredData`).
   */
  get value(): unknown {
    if (this.isString) return this.data
    this.parsed ??= { value: decodeStoredData(this.data, this.decoder, () => this.where()) }
    return this.parsed.value
  }

  /** This entry, as a report names it. */
  private where(): string {
    return `entry ${this.id} in Redis key ${JSON.stringify(this.key)}`
  }
}

/**
 * Builds {@link RedisEvent}s from raw entries and keeps the most recent ones, so the many subscribers
 * that catch up after a reconnection storm, and the tail, encode and parse each event once.
 */
export class EventCache {
  private readonly events = new Map<string, RedisEvent>()
  private bytes = 0

  constructor(private readonly decoder: Decoder) {}

  /** The event of `entry` of the stream at `key`. */
  event(key: string, entry: RawEntry): RedisEvent {
    const [id, fields] = entry
    let prev = ''
    let event: string | undefined
    let isString = false
    let data = ''
    for (let i = 0; i + 1 < fields.length; i += 2) {
      const value = fields[i + 1]!
      switch (fields[i]) {
        case FIELDS.prev:
          prev = value
          break
        case FIELDS.event:
          event = value === '' ? undefined : value
          break
        case FIELDS.string:
          isString = value === '1'
          break
        case FIELDS.data:
          data = value
          break
      }
    }
    // An id is unique within a key, and the space cannot occur in an id.
    const cacheKey = `${id} ${key}`
    const cached = this.events.get(cacheKey)
    // A stream deleted and written again could reuse an id for other content; never serve stale bytes.
    if (
      cached !== undefined &&
      cached.data === data &&
      cached.event === event &&
      cached.isString === isString &&
      cached.prev === prev
    ) {
      // Refresh its place, so the cache evicts the least recently used events.
      this.events.delete(cacheKey)
      this.events.set(cacheKey, cached)
      return cached
    }
    const created = new RedisEvent(key, id, event, data, isString, prev, this.decoder)
    if (cached !== undefined) this.forget(cacheKey, cached)
    if (created.frame.length <= CACHE_BYTES) {
      this.events.set(cacheKey, created)
      this.bytes += created.frame.length
      while (this.events.size > CACHE_EVENTS || this.bytes > CACHE_BYTES) {
        const oldest = this.events.entries().next().value
        if (oldest === undefined) break
        this.forget(oldest[0], oldest[1])
      }
    }
    return created
  }

  /** Drops every cached event. */
  clear(): void {
    this.events.clear()
    this.bytes = 0
  }

  private forget(cacheKey: string, event: RedisEvent): void {
    this.events.delete(cacheKey)
    this.bytes -= event.frame.length
  }
}

/** Most pages {@link RecentPages} keeps. */
const RECENT_PAGES = 16

/**
 * The pages read lately, so that every reader of the same page gets the same array: core encodes a
 * page's frames into its writes once per array (`encodePage`), so a crowd resuming from one position
 * then shares one copy instead of concatenating the frames once per client. A page is only reused
 * when the events just read are the very same objects in the same order: what Redis returned
 * decides, and a page that changed (trimmed, lost, appended to) is simply replaced.
 */
export class RecentPages {
  private readonly pages = new Map<string, readonly RedisEvent[]>()

  /** `events` as read for `page`, or the array read before for it if it holds the same events. */
  same(page: string, events: readonly RedisEvent[]): readonly RedisEvent[] {
    if (events.length === 0) return events
    const known = this.pages.get(page)
    if (known !== undefined && sameEvents(known, events)) return known
    if (known === undefined && this.pages.size >= RECENT_PAGES) {
      // The oldest page read goes: a Map iterates in insertion order.
      this.pages.delete(this.pages.keys().next().value!)
    }
    this.pages.set(page, events)
    return events
  }

  /** Drops every kept page. */
  clear(): void {
    this.pages.clear()
  }
}

function sameEvents(a: readonly RedisEvent[], b: readonly RedisEvent[]): boolean {
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}
