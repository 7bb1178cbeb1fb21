/**
 * The history store interface: where a stream's recent events are kept for replay.
 * The in-memory store ({@link createMemoryStore}) is synchronous; stores shared between processes
 * (for example `@rewind/redis`) are asynchronous and deliver every event through {@link StoreDelivery}.
 */

/**
 * Why a resume position could not be honoured exactly:
 * - `evicted`: the position is older than the oldest retained event;
 * - `unknown`: the id is well formed but this history never issued it (or it is in the future);
 * - `malformed`: the value is not printable ASCII or is longer than 128 bytes;
 * - `epoch`: the id comes from another lifetime of the history (a restart) or from another stream.
 */
export type GapReason = 'evicted' | 'unknown' | 'malformed' | 'epoch'

/**
 * A place in a stream. Positions of one stream are totally ordered by (`major`, `minor`), which lets
 * a subscriber drop anything it has already been sent with two number comparisons.
 */
export interface Position {
  /** The id as sent to clients. */
  readonly id: string
  /** Major part of the order key (the sequence number in memory, the milliseconds part in Redis). */
  readonly major: number
  /** Minor part of the order key (0 in memory, the sequence part of a Redis stream id). */
  readonly minor: number
}

/** An event as kept in history: its position, its fields, and its frame encoded once for everyone. */
export interface StoredEvent extends Position {
  /** The event type, if any. */
  readonly event: string | undefined
  /** The data as serialized at publish time. */
  readonly data: string
  /** The data as published in this process, or parsed back from `data` by a shared store. */
  readonly value: unknown
  /** The complete frame (`id:`, `event:`, `data:` lines and the blank line), shared by every subscriber. */
  readonly frame: Buffer
}

/** What {@link HistoryStore} `append` receives: a validated, serialized event without an id. */
export interface NewEvent {
  readonly event: string | undefined
  readonly data: string
  readonly value: unknown
}

/** The result of reading a stream's history after a position. */
export interface ReadResult {
  /** Events after the position, oldest first, at most `limit`; none when `gap` is set. */
  readonly events: readonly StoredEvent[]
  /**
   * Where reading continues: the last returned event; with no events, the resolved position itself
   * (for a gap, the position just before the oldest retained event; for a fresh read, the newest).
   */
  readonly position: Position
  /** Set when the requested position could not be resolved; `position` is then the gap position. */
  readonly gap?: GapReason
  /** True when no event newer than `position` existed when the read ran. */
  readonly done: boolean
}

/** How a shared store hands events to the hub that uses it. */
export interface StoreDelivery {
  /** Delivers new events of one stream, oldest first, in stream order, each exactly once. */
  deliver(stream: string, events: readonly StoredEvent[]): void
  /**
   * Says that live delivery of `stream` lost events (the tail fell behind trimming, or the store lost
   * data). The hub ends that stream's subscribers; they reconnect with their last id and resume from
   * history, with the gap signal if history no longer holds their position.
   */
  reset(stream: string): void
}

/** A store whose operations complete synchronously (the in-memory history). */
export interface SyncHistoryStore {
  readonly synchronous: true
  /** Appends an event, assigning the next id, and returns it as stored (the hub fans it out). */
  append(stream: string, event: NewEvent): StoredEvent
  /**
   * Reads up to `limit` events after a position:
   * - `after` an id this store can resolve: the events after it;
   * - `after` an id it cannot resolve: no events, a `gap` reason, and `position` just before the
   *   oldest retained event (the caller reads on from there);
   * - `after` `null`: no events, and `position` just before the oldest retained event;
   * - `after` `undefined`: no events, and `position` the newest event (a fresh subscriber starts there).
   */
  read(stream: string, after: string | null | undefined, limit: number): ReadResult
  /** Called when a stream gets its first subscriber in this process; the store may pin its history. */
  watch?(stream: string): void
  /** Called when a stream's last subscriber in this process leaves. */
  unwatch?(stream: string): void
  /** Number of events retained for `stream` (for stats and tests). */
  size?(stream: string): number
  /** Where this store keeps responses (streams that end); without it the hub cannot start one. */
  readonly responses?: ResponseRecords | undefined
  /**
   * Called by the hub that takes this store, before any other call. A synchronous store never
   * delivers through it (the hub fans out what `append` returns); it tells one hub from another, so
   * that a store serving one hub can refuse a second with `ERR_INVALID_ARGUMENT`.
   */
  attach?(delivery: StoreDelivery): void
  /** Called once the hub that attached with `delivery` has closed: another hub may attach now. */
  detach?(delivery: StoreDelivery): void
  close?(): void | Promise<void>
}

/**
 * A store whose operations are asynchronous, typically shared by many processes. It must call
 * `delivery.deliver` for every event appended to a watched stream by any process, including this one,
 * in stream order; `append` resolves with the id but does not fan out by itself.
 */
export interface AsyncHistoryStore {
  readonly synchronous: false
  append(stream: string, event: NewEvent): Promise<string>
  /** Same contract as {@link SyncHistoryStore.read}. */
  read(stream: string, after: string | null | undefined, limit: number): Promise<ReadResult>
  /** Called once by the hub before any other call. */
  attach(delivery: StoreDelivery): void
  /** Called once the hub that attached with `delivery` has closed. */
  detach?(delivery: StoreDelivery): void
  /**
   * Starts delivering `stream`. Resolves once every event appended after that moment will be
   * delivered, so a read that starts afterwards plus the deliveries miss nothing.
   */
  watch(stream: string): Promise<void>
  unwatch(stream: string): void
  /** Where this store keeps responses (streams that end); without it the hub cannot start one. */
  readonly responses?: ResponseRecords | undefined
  close?(): void | Promise<void>
}

/** How a response ended: its producer finished, was cancelled, or failed (threw, timed out or died). */
export type ResponseEnd = 'done' | 'cancelled' | 'failed'

/** The lifecycle of a response: `active` while its producer runs, then how it ended. */
export type ResponseStatus = 'active' | ResponseEnd

/** What a store knows of one response. */
export interface ResponseState {
  readonly status: ResponseStatus
  /** The position before the response's first event: a client without a position starts after it. */
  readonly origin: string
  /** The id of the terminal event, once the response has ended. */
  readonly endId: string | undefined
}

/** Bounds of one response, resolved by the hub (see `ResponseOptions`). */
export interface ResponseLimits {
  readonly maxEvents: number
  readonly maxBytes: number
  /** Longest time the response may stay active, in milliseconds. */
  readonly maxLifetime: number
  /** How long an ended response stays replayable, in milliseconds. */
  readonly ttl: number
  /** How long the producer's lease lasts without renewal (shared stores), in milliseconds. */
  readonly lease: number
}

/**
 * The lifecycle records of responses, kept by a store beside their streams. A response's events
 * live in an ordinary stream of the store; the record says whether it still grows and where it ends.
 * Every method that ends a response is atomic: of two instances that end it at once, one wins and
 * the other sees the winner's state. Methods return promises for shared stores.
 */
export interface ResponseRecords {
  /** Creates an active response and its empty stream; false if the id is taken (active or not yet expired). */
  create(id: string, stream: string, limits: ResponseLimits): boolean | Promise<boolean>
  /**
   * Appends an event while the response is active, in the producer's order: `seq` counts the
   * response's events from 1, and event `seq` is stored only right after event `seq - 1`. That keeps
   * a stored answer free of holes when an append fails midway through a window of appends in flight:
   * the ones sent after it are refused, and the producer sends them again in order.
   *
   * Returns the stored event (synchronous stores), its id (shared stores, whose tail delivers it), or
   * `undefined` when the response has ended. A `seq` that is stored already (an append sent again
   * after its reply was lost) resolves as stored and is not stored twice. A `seq` whose predecessor
   * is missing rejects with `ERR_HISTORY_LOST`.
   */
  append(
    id: string,
    stream: string,
    event: NewEvent,
    limits: ResponseLimits,
    seq: number,
  ): StoredEvent | undefined | Promise<string | undefined>
  /**
   * Appends the terminal event and records how the response ended, if it is still active. Returns
   * the state after the call, or `undefined` if the response is unknown; the stored terminal event
   * is returned too by synchronous stores, for the hub to fan out.
   */
  end(
    id: string,
    stream: string,
    event: NewEvent,
    reason: ResponseEnd,
    limits: ResponseLimits,
  ):
    | { readonly state: ResponseState; readonly event?: StoredEvent | undefined }
    | undefined
    | Promise<{ readonly state: ResponseState } | undefined>
  /**
   * `end`, but only if the producer's lease has lapsed too: its process died, and no one else will
   * end it. Atomic like `end`, so a producer that renews at the same moment either wins or sees the
   * end. Shared stores only; one with `renew` has it.
   */
  endIfLapsed?(
    id: string,
    stream: string,
    event: NewEvent,
    reason: ResponseEnd,
    limits: ResponseLimits,
  ): Promise<{ readonly state: ResponseState } | undefined>
  /** The response's state, or `undefined` if it is unknown or has expired. */
  get(id: string): ResponseState | undefined | Promise<ResponseState | undefined>
  /** Extends the producer's lease (shared stores); false once the response is no longer active. */
  renew?(id: string, lease: number): Promise<boolean>
  /** Forgets every record and timer (the store is closing). */
  clear?(): void
}

/** Either kind of history store. */
export type HistoryStore = SyncHistoryStore | AsyncHistoryStore

/** True when `a` comes strictly after `b` in their stream. */
export function isAfter(a: Position, b: Position): boolean {
  return a.major > b.major || (a.major === b.major && a.minor > b.minor)
}
