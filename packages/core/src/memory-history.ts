/** The events of a read that has none; never written to. */
const NO_EVENTS: readonly MemoryEvent[] = Object.freeze([])

/**
 * One stream's history in memory: a ring buffer bounded by count, bytes and age.
 * Ids are `<epoch>-<seq>`: the epoch is random for each history's lifetime, so an id from before a
 * restart or from another stream is recognised as foreign instead of matched to a wrong event, and
 * the sequence number locates an event in the ring in O(1).
 */
import { randomBytes } from 'node:crypto'
import { encodeEvent } from './frame.js'
import type { GapReason, NewEvent, Position, ReadResult, StoredEvent } from './store.js'
import { positiveInteger, positiveLimit } from './validation.js'

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

/** Default of {@link HistoryOptions.maxEvents}. */
export const DEFAULT_MAX_EVENTS = 1000
/** Default of {@link HistoryOptions.maxBytes}. */
export const DEFAULT_MAX_BYTES = 16_777_216

const INITIAL_CAPACITY = 16
/** Pages kept for readers between two changes of a history (a few positions resumed at once). */
const MAX_CACHED_PAGES = 16
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
  // Stryker disable next-line StringLiteral: nothing reads the epoch's width, only its characters and its uniqueness
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
  /** Pages read since the history last changed, by position and limit (see `page`). */
  private readonly pages = new Map<string, ReadResult>()
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
  constructor(
    options: HistoryOptions & { now?: (() => number) | undefined } = {},
    epoch: string = newEpoch(),
  ) {
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
    // Stryker disable next-line ConditionalExpression,EqualityOperator: clearing an empty map does nothing
    if (this.pages.size > 0) this.pages.clear()
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
    if (after === undefined) return { events: NO_EVENTS, position: this.head(), done: true }
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
    // The same page object for every reader until the history changes, so that its frames are
    // encoded once for a crowd resuming from one position (see replay-pages.ts).
    const key = `${afterSeq}:${limit}`
    const cached = this.pages.get(key)
    if (cached !== undefined) return cached
    const result = this.readPage(afterSeq, limit)
    // Stryker disable next-line ConditionalExpression,EqualityOperator: caching an empty page too changes no read, only what the 16-page cache holds
    if (result.events.length > 0) {
      if (this.pages.size >= MAX_CACHED_PAGES) this.pages.clear()
      this.pages.set(key, result)
    }
    return result
  }

  private readPage(afterSeq: number, limit: number): ReadResult {
    const firstSeq = this.nextSeq - this.count
    const from = afterSeq + 1
    const n = Math.max(0, Math.min(limit, this.nextSeq - from))
    // Stryker disable next-line ArrayDeclaration: preallocation only; every slot is filled below
    const events: MemoryEvent[] = new Array(n)
    const offset = this.start + (from - firstSeq)
    for (let i = 0; i < n; i++) events[i] = this.ring[(offset + i) % this.ring.length]!
    const position = n > 0 ? events[n - 1]! : this.position(afterSeq)
    return { events, position, done: afterSeq + n >= this.nextSeq - 1 }
  }

  /**
   * The position of the newest event: the event itself while it is retained (a fresh client's
   * cursor then holds no copy of its id), else made from its sequence number.
   */
  private head(): Position {
    if (this.count === 0) return this.position(this.nextSeq - 1)
    return this.ring[(this.start + this.count - 1) % this.ring.length]!
  }

  private position(seq: number): Position {
    return { id: `${this.epoch}-${seq}`, major: seq, minor: 0 }
  }

  private evictOldest(): void {
    // Stryker disable next-line ConditionalExpression,EqualityOperator: a read before the new oldest event takes the gap path and pages after it stay right; kept pages only hold memory until the next append (at most 16)
    if (this.pages.size > 0) this.pages.clear()
    const oldest = this.ring[this.start]!
    this.ring[this.start] = undefined
    this.start = (this.start + 1) % this.ring.length
    this.count--
    this.bytes -= oldest.frame.length
  }

  private expire(): void {
    // Stryker disable next-line ConditionalExpression: a shortcut; now() - Infinity is -Infinity, and no event is older than that
    if (this.maxAge === Number.POSITIVE_INFINITY) return
    const oldestAllowed = this.now() - this.maxAge
    while (this.count > 0 && this.ring[this.start]!.at < oldestAllowed) this.evictOldest()
  }

  private grow(): void {
    // Stryker disable next-line MethodExpression: growing straight to maxEvents + 1 slots costs memory, not behaviour
    const capacity = Math.min(this.maxEvents + 1, this.ring.length * 2)
    const next: (MemoryEvent | undefined)[] = new Array(capacity)
    // Stryker disable next-line EqualityOperator: the ring is full here, so one slot more copies the oldest event into the slot the append then fills
    for (let i = 0; i < this.count; i++) next[i] = this.ring[(this.start + i) % this.ring.length]
    this.ring = next
    this.start = 0
  }
}
