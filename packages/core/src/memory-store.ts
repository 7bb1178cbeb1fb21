/**
 * The in-memory history: one ring buffer per stream, bounded by count, bytes and age.
 * Ids are `<epoch>-<seq>`: the epoch is random for each history's lifetime, so an id from before a
 * restart or from another stream is recognised as foreign instead of matched to a wrong event, and
 * the sequence number locates an event in the ring in O(1).
 */
import { randomBytes } from 'node:crypto'
import { encodeEvent } from './frame.js'
import { positiveInteger, positiveLimit } from './options.js'
import type { GapReason, NewEvent, Position, ReadResult, StoredEvent, SyncHistoryStore } from './store.js'

/** Bounds of one stream's history. */
export interface HistoryOptions {
  /**
   * Most events kept per stream; the oldest is evicted past it.
   * @defaultValue 1000
   */
  maxEvents?: number
  /**
   * Most bytes of encoded frames kept per stream; the oldest events are evicted past it.
   * @defaultValue 16 MiB
   */
  maxBytes?: number
  /**
   * Longest time an event is kept, in milliseconds; `Infinity` keeps events until count or bytes evict them.
   * @defaultValue Infinity
   */
  maxAge?: number
}

/** Options of {@link createMemoryStore}. */
export interface MemoryStoreOptions extends HistoryOptions {
  /**
   * Most streams with a history. Only publishing creates one (subscribing does not). Past it, the
   * history of the least recently published stream that has no subscriber in this process is
   * dropped (its clients then get an `epoch` gap on resume).
   * @defaultValue 10000
   */
  maxStreams?: number
  /** Clock used for `maxAge`, in milliseconds. @defaultValue `Date.now` */
  now?: () => number
}

/** Default of {@link HistoryOptions.maxEvents}. */
export const DEFAULT_MAX_EVENTS = 1000
/** Default of {@link HistoryOptions.maxBytes}. */
export const DEFAULT_MAX_BYTES = 16 * 1024 * 1024
/** Default of {@link MemoryStoreOptions.maxStreams}. */
export const DEFAULT_MAX_STREAMS = 10_000

const INITIAL_CAPACITY = 16
// Canonical numbers only: `e-007` is not an id this history issued, even if it names `e-7`.
const ID_SHAPE = /^([0-9a-z]{1,16})-(0|[1-9]\d{0,14})$/

class MemoryEvent implements StoredEvent {
  readonly minor = 0
  constructor(
    readonly id: string,
    readonly major: number,
    readonly event: string | undefined,
    readonly data: string,
    readonly value: unknown,
    readonly frame: Buffer,
    readonly at: number,
  ) {}
}

function newEpoch(): string {
  return randomBytes(5).readUIntBE(0, 5).toString(36).padStart(8, '0')
}

/**
 * One stream's history: a ring buffer that grows by doubling up to `maxEvents` slots.
 * Append and eviction are O(1) amortized; reading k events after an id is O(k).
 */
export class MemoryHistory {
  /** The epoch of this history's ids; fresh for every history. */
  readonly epoch: string
  private ring: (MemoryEvent | undefined)[] = new Array(INITIAL_CAPACITY)
  /** Ring index of the oldest retained event. */
  private start = 0
  private count = 0
  /** Sequence number of the next event; the oldest retained one is `nextSeq - count`. */
  private nextSeq = 1
  private bytes = 0
  private readonly maxEvents: number
  private readonly maxBytes: number
  private readonly maxAge: number
  private readonly now: () => number

  /** @param epoch for the store only: the epoch it already gave clients of the empty stream */
  constructor(options: MemoryStoreOptions = {}, epoch: string = newEpoch()) {
    this.epoch = epoch
    this.maxEvents = positiveInteger('maxEvents', options.maxEvents ?? DEFAULT_MAX_EVENTS)
    this.maxBytes = positiveLimit('maxBytes', options.maxBytes ?? DEFAULT_MAX_BYTES)
    this.maxAge = positiveLimit('maxAge', options.maxAge ?? Number.POSITIVE_INFINITY)
    this.now = options.now ?? Date.now
  }

  /** Number of events retained. */
  get size(): number {
    this.expire()
    return this.count
  }

  /** Bytes of the retained frames. */
  get retainedBytes(): number {
    return this.bytes
  }

  /** Appends an event with the next id and evicts what falls outside the bounds. */
  append(input: NewEvent): StoredEvent {
    const seq = this.nextSeq++
    const id = `${this.epoch}-${seq}`
    const frame = Buffer.from(encodeEvent({ id, event: input.event, data: input.data }))
    const entry = new MemoryEvent(id, seq, input.event, input.data, input.value, frame, this.now())
    if (this.count === this.ring.length) this.grow()
    this.ring[(this.start + this.count) % this.ring.length] = entry
    this.count++
    this.bytes += frame.length
    while (this.count > this.maxEvents || this.bytes > this.maxBytes) this.evictOldest()
    this.expire()
    return entry
  }

  /** See {@link SyncHistoryStore.read}. */
  read(after: string | null | undefined, limit: number): ReadResult {
    this.expire()
    if (after === undefined) return { events: [], position: this.position(this.nextSeq - 1), done: true }
    if (after === null) return this.page(this.nextSeq - this.count - 1, 0)
    const match = ID_SHAPE.exec(after)
    if (match === null) return this.gap('unknown')
    if (match[1] !== this.epoch) return this.gap('epoch')
    const seq = Number(match[2])
    if (seq >= this.nextSeq) return this.gap('unknown')
    // The position just before the oldest retained event is still exact: nothing after it is missing.
    if (seq < this.nextSeq - this.count - 1) return this.gap('evicted')
    return this.page(seq, limit)
  }

  private gap(reason: GapReason): ReadResult {
    return { ...this.page(this.nextSeq - this.count - 1, 0), gap: reason }
  }

  private page(afterSeq: number, limit: number): ReadResult {
    const firstSeq = this.nextSeq - this.count
    const from = afterSeq + 1
    const n = Math.max(0, Math.min(limit, this.nextSeq - from))
    const events: MemoryEvent[] = new Array(n)
    const offset = this.start + (from - firstSeq)
    for (let i = 0; i < n; i++) events[i] = this.ring[(offset + i) % this.ring.length]!
    const position = n > 0 ? events[n - 1]! : this.position(afterSeq)
    return { events, position, done: afterSeq + n >= this.nextSeq - 1 }
  }

  private position(seq: number): Position {
    return { id: `${this.epoch}-${seq}`, major: seq, minor: 0 }
  }

  private evictOldest(): void {
    const oldest = this.ring[this.start]!
    this.ring[this.start] = undefined
    this.start = (this.start + 1) % this.ring.length
    this.count--
    this.bytes -= oldest.frame.length
  }

  private expire(): void {
    if (this.maxAge === Number.POSITIVE_INFINITY) return
    const oldestAllowed = this.now() - this.maxAge
    while (this.count > 0 && this.ring[this.start]!.at < oldestAllowed) this.evictOldest()
  }

  private grow(): void {
    const capacity = Math.min(this.maxEvents + 1, this.ring.length * 2)
    const next: (MemoryEvent | undefined)[] = new Array(capacity)
    for (let i = 0; i < this.count; i++) next[i] = this.ring[(this.start + i) % this.ring.length]
    this.ring = next
    this.start = 0
  }
}

/**
 * The default history store: a {@link MemoryHistory} per stream, in this process only.
 * Histories are created by the first publish and the least recently published unwatched ones are
 * dropped past `maxStreams`, so neither the number of streams nor their contents grow without bound.
 * Subscribing creates no history: clients of made-up stream names cannot push out real ones.
 */
export class MemoryStore implements SyncHistoryStore {
  readonly synchronous = true
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

  constructor(private readonly options: MemoryStoreOptions = {}) {
    this.maxStreams = positiveInteger('maxStreams', options.maxStreams ?? DEFAULT_MAX_STREAMS)
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
    // A stream without a history reads as an empty one (of a fresh epoch if never subscribed to).
    return (this.histories.get(stream) ?? this.empty(stream)).read(after, limit)
  }

  watch(stream: string): void {
    this.watched.add(stream)
    if (this.histories.has(stream)) return
    const epoch = this.unpublished.get(stream) ?? new MemoryHistory(this.options).epoch
    this.unpublished.delete(stream)
    this.unpublished.set(stream, epoch)
    if (this.unpublished.size > this.maxStreams + this.watched.size) {
      for (const name of this.unpublished.keys()) {
        if (this.unpublished.size <= this.maxStreams + this.watched.size) break
        if (!this.watched.has(name)) this.unpublished.delete(name)
      }
    }
  }

  unwatch(stream: string): void {
    this.watched.delete(stream)
  }

  size(stream: string): number {
    return this.histories.get(stream)?.size ?? 0
  }

  /** Number of streams that currently have a history. */
  get streams(): number {
    return this.histories.size
  }

  /** The history of `stream`, if it was published to or subscribed to (then empty). */
  history(stream: string): MemoryHistory | undefined {
    return this.histories.get(stream) ?? (this.unpublished.has(stream) ? this.empty(stream) : undefined)
  }

  private empty(stream: string): MemoryHistory {
    return new MemoryHistory(this.options, this.unpublished.get(stream))
  }

  /** Makes the history of a stream's first publish count, dropping the least recent past `maxStreams`. */
  private publishFirst(stream: string): MemoryHistory {
    const history = new MemoryHistory(this.options, this.unpublished.get(stream))
    this.unpublished.delete(stream)
    this.histories.set(stream, history)
    if (this.histories.size > this.maxStreams) {
      for (const name of this.histories.keys()) {
        if (this.histories.size <= this.maxStreams) break
        if (name !== stream && !this.watched.has(name)) this.histories.delete(name)
      }
    }
    return history
  }
}

/** Creates the default in-memory history store. */
export function createMemoryStore(options?: MemoryStoreOptions): MemoryStore {
  return new MemoryStore(options)
}
