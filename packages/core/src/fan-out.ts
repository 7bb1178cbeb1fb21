/**
 * Fan-out: the per-stream state of a hub (who follows each stream, what waits to be sent), the
 * end-of-turn batching that turns a burst of publishes into one write per subscriber, the shared
 * asynchronous history reads, resets, and pins that keep a stream followed without a client.
 */

import type { AsyncHistoryStore, HistoryStore, ReadResult, StoredEvent } from './store.js'
import { concatFrames, SharedFrames } from './wire-writer.js'

/**
 * Events published in one turn of the event loop are written to each subscriber together, once
 * the turn ends; a burst larger than this is written at once instead, so pending bytes stay bounded.
 */
const FLUSH_BYTES = 256 * 1024

/**
 * Frames of one flush, shared by every subscriber of the stream: the concatenated frames, and the
 * same bytes framed as one HTTP/1.1 chunk, built at most once and only if a direct transport asks.
 */
export class Batch extends SharedFrames {
  constructor(
    readonly events: readonly StoredEvent[],
    all: Buffer,
  ) {
    super(all)
  }
}

/** What fan-out needs of a subscriber. */
export interface Follower {
  /** Takes a flush's events and their shared frames. */
  deliver(batch: Batch): void
  /** Ends it: the store lost live events of its stream, so it resumes from history. */
  end(reason: 'reset'): void
}

class StreamState<F extends Follower> {
  readonly followers = new Set<F>()
  pending: StoredEvent[] = []
  pendingBytes = 0
  /** For asynchronous stores: resolves once the store delivers this stream's new events. */
  watching: Promise<void> | undefined
  /** Holders other than subscribers that keep the stream followed (running response producers). */
  pins = 0
  /** Flushes to the subscribers so far; tells whether an in-flight read may still be shared. */
  flushes = 0
  /** Asynchronous reads in flight, by position and limit, with the flush count when they started. */
  readonly reads = new Map<string, { readonly flushes: number; readonly result: Promise<ReadResult> }>()
}

/** The streams of one hub that someone follows, and the events on their way to the followers. */
export class FanOut<F extends Follower> {
  private readonly streams = new Map<string, StreamState<F>>()
  private dirty: StreamState<F>[] = []
  private flushTimer: NodeJS.Immediate | undefined

  constructor(private readonly store: HistoryStore) {}

  /** Streams with at least one follower or pin. */
  get size(): number {
    return this.streams.size
  }

  /** Followers of `stream` in this process. */
  count(stream: string): number {
    return this.streams.get(stream)?.followers.size ?? 0
  }

  /**
   * Adds a follower; returns, for a stream of an asynchronous store, the store's promise that live
   * delivery has started.
   */
  add(stream: string, follower: F): Promise<void> | undefined {
    const state = this.stateOf(stream)
    state.followers.add(follower)
    return state.watching
  }

  remove(stream: string, follower: F): void {
    const state = this.streams.get(stream)
    if (state?.followers.delete(follower)) this.dropIfUnused(stream, state)
  }

  /** Keeps a stream followed while no client does (a response's producer runs here). */
  pin(stream: string): Promise<void> | undefined {
    const state = this.stateOf(stream)
    state.pins++
    return state.watching
  }

  unpin(stream: string): void {
    const state = this.streams.get(stream)
    if (state === undefined) return
    state.pins--
    this.dropIfUnused(stream, state)
  }

  /** Queues new events of a stream for its followers; they are written when the turn ends. */
  deliver(stream: string, events: StoredEvent | readonly StoredEvent[]): void {
    const state = this.streams.get(stream)
    if (state === undefined) return
    // Stryker disable next-line ConditionalExpression: pushing a dirty stream twice only adds a flush that finds nothing pending
    if (state.pending.length === 0) this.dirty.push(state)
    if (Array.isArray(events)) {
      for (const event of events as readonly StoredEvent[]) {
        state.pending.push(event)
        state.pendingBytes += event.frame.length
      }
    } else {
      state.pending.push(events as StoredEvent)
      state.pendingBytes += (events as StoredEvent).frame.length
    }
    if (state.pendingBytes >= FLUSH_BYTES) this.flushStream(state)
    else if (this.flushTimer === undefined) this.flushTimer = setImmediate(this.flush)
  }

  /**
   * Reads history from an asynchronous store for a subscriber, sharing a read already in flight for
   * the same position (a crowd resuming from the same id costs one read, not one each). A read may
   * only be shared while no flush has reached the subscribers since it started: each subscriber
   * queues live events from the moment its own read starts, so a joiner must not miss a delivery
   * that the first reader's queue caught.
   */
  readHistory(stream: string, after: string | null | undefined, limit: number): Promise<ReadResult> {
    const store = this.store as AsyncHistoryStore
    const state = this.streams.get(stream)
    if (state === undefined) return store.read(stream, after, limit)
    // Stryker disable next-line StringLiteral: any two distinct tags keep the three kinds of position apart ('' included)
    const key = `${after === undefined ? 'u' : after === null ? 'n' : `i${after}`}:${limit}`
    const shared = state.reads.get(key)
    if (shared !== undefined && shared.flushes === state.flushes) return shared.result
    const result = store.read(stream, after, limit)
    const entry = { flushes: state.flushes, result }
    state.reads.set(key, entry)
    const forget = () => {
      if (state.reads.get(key) === entry) state.reads.delete(key)
    }
    result.then(forget, forget)
    return result
  }

  /** Ends a stream's followers after the store lost live events; they resume from history. */
  reset(stream: string): void {
    const state = this.streams.get(stream)
    if (state === undefined) return
    this.flushStream(state)
    for (const follower of [...state.followers]) follower.end('reset')
  }

  /** Writes every stream's pending events now. */
  readonly flush = (): void => {
    // Stryker disable next-line ConditionalExpression: clearImmediate(undefined) does nothing
    if (this.flushTimer !== undefined) {
      clearImmediate(this.flushTimer)
      this.flushTimer = undefined
    }
    const dirty = this.dirty
    this.dirty = []
    for (const state of dirty) this.flushStream(state)
  }

  /** The state of a stream, created (and, with a shared store, watched) on first use. */
  private stateOf(stream: string): StreamState<F> {
    let state = this.streams.get(stream)
    if (state !== undefined) return state
    state = new StreamState()
    this.streams.set(stream, state)
    const watching = this.store.watch?.(stream)
    if (watching !== undefined) {
      state.watching = watching
      // Each subscriber reports its own failure; this only keeps the shared promise from being unhandled.
      watching.catch(() => {})
    }
    return state
  }

  private dropIfUnused(stream: string, state: StreamState<F>): void {
    if (state.followers.size > 0 || state.pins > 0) return
    this.streams.delete(stream)
    this.store.unwatch?.(stream)
  }

  private flushStream(state: StreamState<F>): void {
    const events = state.pending
    if (events.length === 0) return
    const bytes = state.pendingBytes
    state.pending = []
    state.pendingBytes = 0
    // Stryker disable next-line ConditionalExpression: a batch for no follower reaches nobody, and no read is in flight without one
    if (state.followers.size === 0) return
    // Stryker disable next-line UpdateOperator: the count is only compared for equality, which counting down keeps
    state.flushes++
    // One buffer for the whole batch, shared by every subscriber that takes all of it.
    const batch = new Batch(events, concatFrames(events, bytes))
    for (const follower of state.followers) follower.deliver(batch)
  }
}
