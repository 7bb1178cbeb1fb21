/**
 * A subscriber follows one hub stream: it replays history after its resume position, then takes
 * live events, and never sends an event twice or skips one that history still holds.
 */
import { Connection, type ConnectionOwner } from './connection.js'
import type { Batch } from './fan-out.js'
import { encodeEvent, encodeIdOnly } from './frame.js'
import type { ResumeId } from './last-event-id.js'
import { encodePage, WRITE_CHUNK_BYTES } from './replay-pages.js'
import {
  type GapReason,
  type HistoryStore,
  isAfter,
  type Position,
  type ReadResult,
  type StoredEvent,
} from './store.js'
import type { EventFilter, EventSink, GapPolicy } from './types.js'
import type { StartStream } from './wire-writer.js'

/** What a subscriber needs from the hub that owns it (see `ConnectionOwner`). */
export interface SubscriberOwner extends ConnectionOwner {
  /** The history store. */
  readonly store: HistoryStore
  /** The hub's counters that subscribers add to. */
  readonly counters: { delivered: number; replayed: number }
  /** Bytes that may wait for one client before it is cut off as slow. */
  readonly maxQueueBytes: number
  /** Name of the event that tells a client its position could not be honoured. */
  readonly gapEvent: string
  /** Applies the gap policy and the `onGap` hook. */
  decideGap(
    stream: string,
    reason: GapReason,
    lastEventId: string | null,
    override: GapPolicy | undefined,
  ): GapPolicy
  /** Reads history from an asynchronous store, sharing a read with subscribers that ask for the same page. */
  readHistory(stream: string, after: string | null | undefined, limit: number): Promise<ReadResult>
  /** Reports an error through `onError`. */
  reportError(error: unknown, stream: string | undefined): void
}

/** What a subscriber of a response (a stream that ends) knows of it. */
export interface ResponseLink {
  /** Name of the terminal event: the body ends once that event is sent. */
  readonly endEvent: string
  /**
   * Asks for the response's record once this subscriber has been told of a gap: past a gap or a
   * reset, the live events it waits for may never come (the response ended, or is gone).
   */
  verify(): void
}

/** Events read from history per store call during catch-up. */
const PAGE_SIZE = 256
/**
 * Replay pauses until the sink drains once this much is buffered for the client. Larger than a
 * socket's high-water mark (16 KiB), so a fast client is not made to wait for a drain per chunk.
 */
const REPLAY_BUFFER_BYTES = 256 * 1024

/** What a subscriber follows, and how. */
export interface SubscriberOptions {
  /** The hub stream (for a response, the stream that holds its events). */
  readonly stream: string
  /** Events it is not sent (its cursor still moves past them). */
  readonly filter?: EventFilter | undefined
  /** Overrides the hub's gap policy for this subscriber. */
  readonly gapPolicy?: GapPolicy | undefined
  /** Sends the response head when the stream starts (see {@link StartStream}). */
  readonly start?: StartStream | undefined
  /** For a response: its terminal event, and who checks its record. */
  readonly response?: ResponseLink | undefined
}

/**
 * Where a subscriber is. Live events are handled by phase: queued while a history read is in flight
 * (`starting`, `reading`, see {@link ReadQueue}), dropped while history holds them anyway (`reading`
 * from a synchronous store, `draining`), sent once `live`.
 * - `starting`: no history read has returned yet; the first one tells a fresh client its position.
 * - `reading`: catching up from history, page by page.
 * - `draining`: catch-up paused until the client reads what it was sent.
 * - `live`: caught up; live events are sent as they come.
 */
type Phase = 'starting' | 'reading' | 'draining' | 'live'

/**
 * Before every event: the cursor until the first page moves it. Nothing compares with it: the first
 * page's events or its resolved position replace it before the subscriber goes live.
 */
const NOWHERE: Position = { id: '', major: Number.NEGATIVE_INFINITY, minor: Number.NEGATIVE_INFINITY }

/**
 * Live events that arrive while an asynchronous history read is in flight: everything delivered
 * before the read started is in its result, and these are sent after the last page if newer than the
 * cursor. Bounded by `maxBytes`: past it, the queue keeps nothing and says so, and history is read
 * again instead (it holds every event the queue dropped).
 */
class ReadQueue {
  events: StoredEvent[] = []
  private bytes = 0
  /** The queue dropped events: read history again instead of trusting it. */
  overflowed = false

  constructor(private readonly maxBytes: number) {}

  add(events: readonly StoredEvent[]): void {
    if (this.overflowed) return
    for (const event of events) {
      this.events.push(event)
      this.bytes += event.frame.length
    }
    if (this.bytes > this.maxBytes) {
      this.overflowed = true
      this.events = []
      this.bytes = 0
    }
  }
}

export class Subscriber extends Connection<SubscriberOwner> {
  override readonly stream: string
  private readonly filter: EventFilter | undefined
  private readonly gapPolicy: GapPolicy | undefined
  private readonly response: ResponseLink | undefined
  private phase: Phase = 'starting'
  /** The last event this subscriber was sent (or skipped by its filter), or the position it starts from. */
  private cursor: Position = NOWHERE
  /** Where the next history read starts (see `SyncHistoryStore.read`). */
  private after: string | null | undefined
  /** Present while an asynchronous history read is in flight. */
  private queue: ReadQueue | undefined
  /**
   * A gap signal was sent: a response's record is checked once live (see `ResponseLink.verify`).
   * Not a phase: a gap can open on any page, and what it changes comes after catch-up.
   */
  private gapped = false
  /** A terminal event the store does not hold, to write once caught up (see `endWith`). */
  private endFrame: Uint8Array | undefined

  constructor(owner: SubscriberOwner, sink: EventSink, options: SubscriberOptions) {
    super(owner, sink, options.stream, options.start)
    this.stream = options.stream
    this.filter = options.filter
    this.gapPolicy = options.gapPolicy
    this.response = options.response
  }

  /** True while it follows live events of a response without having been sent its terminal event. */
  get waiting(): boolean {
    return this.phase === 'live' && !this.closed
  }

  /**
   * Writes a terminal event that the store does not hold (without an id, so the client's position
   * stays on its last event) and ends: the response's producer stopped without a stored end. A
   * subscriber still catching up gets it once caught up: a client takes the end for the last word,
   * and would miss the events history still holds for it.
   */
  endWith(frame: Uint8Array): void {
    // Stryker disable next-line ConditionalExpression: write and end do nothing on a closed connection, and a closed subscriber never goes live to write a deferred end
    if (this.closed) return
    if (this.phase !== 'live') {
      this.endFrame = frame
      return
    }
    this.write(frame)
    this.end('end')
  }

  /**
   * Starts catch-up from `resumeId`. With a synchronous store it is complete, and the subscriber
   * live, when this returns; `watching` is the store's promise that live delivery has started.
   */
  start(resumeId: ResumeId, watching: Promise<void> | undefined): void {
    this.after = resumeId
    if (watching === undefined) {
      this.readNext()
      return
    }
    this.openQueue()
    watching.then(() => this.readNext()).catch((error: unknown) => this.fail(error))
  }

  /** Live fan-out from the hub: a flush's events and their frames, shared by every subscriber. */
  deliver(batch: Batch): void {
    const events = batch.events
    if (this.queue !== undefined) {
      this.queue.add(events)
      return
    }
    if (this.phase !== 'live') return
    const last = events[events.length - 1]!
    // The common case costs two comparisons: no filter, and the whole batch is new to this subscriber.
    if (this.filter === undefined && isAfter(events[0]!, this.cursor)) {
      this.cursor = last
      if (this.tooSlow()) return
      this.writeShared(batch)
      this.owner.counters.delivered += events.length
      this.endIfFinished()
      return
    }
    if (isAfter(last, this.cursor)) this.sendSelected(events)
    this.endIfFinished()
  }

  /**
   * A response's terminal event is its last: once it is sent, the body ends (the client then comes
   * back with its id and gets 204, or, if it has the end already, stops).
   */
  private endIfFinished(): boolean {
    if (this.response === undefined || this.closed) return false
    if ((this.cursor as Partial<StoredEvent>).event !== this.response.endEvent) return false
    this.end('end')
    return true
  }

  protected detach(): void {
    this.queue = undefined
  }

  /**
   * Reads history page by page. With a synchronous store the loop runs to the newest event without
   * yielding, so no publish can slip between the last read and going live. With an asynchronous
   * store, live events are queued while each read is in flight (everything delivered before the read
   * started is in its result) and sent after the last page if newer than the cursor.
   */
  private readNext(): void {
    const store = this.owner.store
    while (!this.closed) {
      if (store.synchronous) {
        if (!this.onRead(store.read(this.stream, this.after, PAGE_SIZE))) return
        continue
      }
      this.openQueue()
      this.owner
        .readHistory(this.stream, this.after, PAGE_SIZE)
        .then((result) => {
          if (this.onRead(result)) this.readNext()
        })
        .catch((error: unknown) => this.fail(error))
      return
    }
  }

  /** Handles one page; returns true when the next page should be read at once. */
  private onRead(result: ReadResult): boolean {
    if (this.closed) return false
    let gap = result.gap
    if (this.phase === 'starting') {
      this.phase = 'reading'
      if (this.after === undefined) {
        // A fresh client learns the current position, so even a drop before its first event
        // resumes without loss (the spec sets the last event ID at every blank line).
        this.write(Buffer.from(encodeIdOnly(result.position.id)))
      } else if (this.after === null) gap = 'malformed'
    }
    // A gap can also open on a later page, if history evicts past a slow catch-up: say so too.
    if (gap !== undefined && this.signalGap(gap, this.after ?? null, result.position)) return false
    const complete = this.replay(result.events)
    if (this.closed || this.endIfFinished()) return false
    // The position is fixed now, even if nothing was replayed (up to date, or all filtered out).
    this.sendPendingHead()
    if (complete && result.events.length === 0) this.cursor = result.position
    this.after = this.cursor.id
    if (!complete) {
      // The sink is full: stop queueing (history holds everything) and read on once it drains.
      this.phase = 'draining'
      this.queue = undefined
      this.drained()
        .then(() => {
          this.phase = 'reading'
          this.readNext()
        })
        .catch((error: unknown) => this.fail(error))
      return false
    }
    if (!result.done || this.queue?.overflowed === true) return true
    this.goLive()
    return false
  }

  /**
   * Sends the gap signal with the id the client should resume from. With the `replay` policy that is
   * the gap position (just before the oldest retained event), which the replay then continues from;
   * with `reset` it is the newest event and the subscriber goes live (returns true: nothing is replayed).
   */
  private signalGap(reason: GapReason, resumeId: string | null, gapPosition: Position): boolean {
    const owner = this.owner
    this.gapped = true
    const policy = owner.decideGap(this.stream, reason, resumeId, this.gapPolicy)
    if (policy === 'replay') {
      this.write(Buffer.from(encodeEvent({ id: gapPosition.id, event: owner.gapEvent, data: reason })))
      return false
    }
    const signal = (head: Position): void => {
      if (this.closed) return
      this.write(Buffer.from(encodeEvent({ id: head.id, event: owner.gapEvent, data: reason })))
      this.cursor = head
      this.goLive()
    }
    const store = owner.store
    if (store.synchronous) signal(store.read(this.stream, undefined, 0).position)
    else {
      this.openQueue()
      owner
        .readHistory(this.stream, undefined, 0)
        .then((head) => signal(head.position))
        .catch((error: unknown) => this.fail(error))
    }
    return true
  }

  /**
   * Writes replayed events in chunks; returns false if the sink filled up, in which case the cursor
   * is on the last event written and the caller reads on from it once the sink drains.
   */
  private replay(events: readonly StoredEvent[]): boolean {
    const filter = this.filter
    if (filter === undefined) return this.replayShared(events)
    let chunks: Buffer[] = []
    let bytes = 0
    for (let i = 0; i < events.length; i++) {
      const event = events[i]!
      this.cursor = event
      if (!this.accepts(filter, event)) {
        if (this.closed) return false
        continue
      }
      chunks.push(event.frame)
      bytes += event.frame.length
      if (bytes >= WRITE_CHUNK_BYTES) {
        const ok = this.writeReplay(chunks, bytes)
        chunks = []
        bytes = 0
        if (this.full(ok)) return false
      }
    }
    // The last write of a page counts too: pages of small events never reach a chunk, and reading
    // the next page regardless would copy the whole history into the buffer of a client that does
    // not read.
    if (chunks.length > 0 && this.full(this.writeReplay(chunks, bytes))) return false
    return true
  }

  /** `replay` without a filter: the page's writes, encoded once for every client that reads it. */
  private replayShared(events: readonly StoredEvent[]): boolean {
    const chunks = encodePage(events)
    for (const chunk of chunks) {
      this.cursor = events[chunk.last]!
      this.owner.counters.replayed += chunk.count
      // As in `replay`, the last write of a page counts too.
      if (this.full(this.writeShared(chunk))) return false
    }
    return true
  }

  /**
   * Whether replay must wait for the sink to drain. Only past the replay buffer, so a client that
   * reads is not made to wait per page; and only after a false write, which promises a 'drain'
   * event (pausing without one would wait forever).
   */
  private full(ok: boolean): boolean {
    return !ok && this.queuedBytes >= REPLAY_BUFFER_BYTES
  }

  private writeReplay(chunks: Buffer[], bytes: number): boolean {
    this.owner.counters.replayed += chunks.length
    return this.write(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, bytes))
  }

  private goLive(): void {
    const queued = this.queue?.events
    this.queue = undefined
    this.phase = 'live'
    if (queued !== undefined && queued.length > 0) this.sendSelected(queued)
    if (this.endIfFinished()) return
    // The producer stopped while this subscriber caught up: its end comes after everything replayed.
    if (this.endFrame !== undefined) this.endWith(this.endFrame)
    else if (this.gapped) this.response?.verify()
  }

  /** Sends the events after the cursor that pass the filter, advancing the cursor past all of them. */
  private sendSelected(events: readonly StoredEvent[]): void {
    const filter = this.filter
    let chunks: Buffer[] | undefined
    for (const event of events) {
      if (!isAfter(event, this.cursor)) continue
      this.cursor = event
      if (filter !== undefined && !this.accepts(filter, event)) {
        if (this.closed) return
        continue
      }
      if (chunks === undefined) chunks = [event.frame]
      else chunks.push(event.frame)
    }
    if (chunks !== undefined)
      this.send(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks), chunks.length)
  }

  /**
   * Whether what still waits for this client from earlier turns passes the queue limit; if so it is
   * cut off, and will resume from history. Bytes written in the current turn do not count (see
   * `backlog`): a burst is not a slow client.
   */
  private tooSlow(): boolean {
    if (this.backlog <= this.owner.maxQueueBytes) return false
    this.end('slow')
    return true
  }

  private send(chunk: Buffer, count: number): void {
    if (this.tooSlow()) return
    this.write(chunk)
    this.owner.counters.delivered += count
  }

  private accepts(filter: EventFilter, event: StoredEvent): boolean {
    try {
      return filter(event) === true
    } catch (error) {
      this.fail(error)
      return false
    }
  }

  private openQueue(): void {
    this.queue = new ReadQueue(this.owner.maxQueueBytes)
  }

  /**
   * Reports a failure of the store or of application code once, and ends this subscriber. A method,
   * not a bound field: only subscribers of an asynchronous store need it as a callback, and a
   * closure per subscriber would be held for the life of every connection.
   */
  private fail(error: unknown): void {
    if (this.closed) return
    this.owner.reportError(error, this.stream)
    this.end('error')
  }
}
