/**
 * Responses: streams that end. A response's producer (an async iterable, or a function given an
 * `AbortSignal`) runs once, on the instance that started it, and publishes each item into the
 * response's own stream with history, whatever happens to the connections: clients attach, drop and
 * come back, and each gets the answer from its start (or from its position), then live items, then
 * the terminal event. The end is an event in the stream, so every instance and every late client
 * sees the same end; a client that has it gets 204 when it comes back, which stops an EventSource.
 */
import { randomBytes } from 'node:crypto'
import { RewindError } from './errors.js'
import { encodeEvent } from './frame.js'
import { isAsyncIterable } from './iterable.js'
import { endInput, ProducerRun, type ResponseHost, type ResponseProducer } from './response-producer.js'
import type {
  ResponseEnd,
  ResponseLimits,
  ResponseRecords,
  ResponseState,
  ResponseStatus,
  StoredEvent,
} from './store.js'
import type { CloseReason } from './types.js'
import { nonNegativeInteger, positiveInteger, positiveLimit, timerDelay } from './validation.js'

/** Stream names that start with this are responses' streams: applications cannot publish to them. */
export const RESPONSE_STREAM_PREFIX = 'rewind:response:'
/** Default of `HubOptions.endEvent`. */
export const DEFAULT_END_EVENT = 'rewind-end'
/**
 * The defaults of {@link ResponseOptions} (`HubOptions.responses`), for code that derives its own
 * bounds from them (a store's TTL, a wrapper's limits). Frozen: changing them would change nothing.
 */
export const RESPONSE_DEFAULTS = Object.freeze({
  /** Most events one response keeps: 100,000 (a long answer is about 1,000–20,000 tokens). */
  maxEvents: 100_000,
  /** Most bytes of encoded frames one response keeps: 16 MiB. */
  maxBytes: 16_777_216,
  /** Longest time a response may stay active, in milliseconds: 1 hour. */
  maxLifetime: 3_600_000,
  /** How long an ended response stays replayable, in milliseconds: 5 minutes. */
  ttl: 300_000,
  /** How long a producer's lease lasts on a shared store, in milliseconds: 10 s. */
  lease: 10_000,
})

/** Response ids go into URLs and Redis keys: unreserved URL characters only. */
const ID_SHAPE = /^[A-Za-z0-9._~-]{1,128}$/

/** Bounds of responses; each has a default that holds a long answer. */
export interface ResponseOptions {
  /**
   * Most events one response keeps. Past it the oldest are dropped and a client that resumes from
   * before them gets the gap signal (`evicted`), never a silent hole.
   * @defaultValue 100000
   */
  maxEvents?: number
  /**
   * Most bytes of encoded frames one response keeps; past it, as for `maxEvents`.
   * @defaultValue 16777216 (16 MiB)
   */
  maxBytes?: number
  /**
   * Longest time a response may stay active, in milliseconds; then its producer is stopped and the
   * response ends with `failed`.
   * @defaultValue 3600000 (1 hour)
   */
  maxLifetime?: number
  /**
   * How long an ended response stays replayable, in milliseconds; then it is forgotten (in memory, and
   * in Redis by `PEXPIRE`) and its URL answers 404.
   * @defaultValue 300000 (5 minutes)
   */
  ttl?: number
  /**
   * Shared stores only: how long a producer's lease lasts, in milliseconds. The producing instance
   * renews it every third of this; if the instance dies, any instance serving the response ends it
   * with `failed` once the lease has lapsed, so clients learn of the death within about 1.5 × `lease`.
   * @defaultValue 10000
   */
  lease?: number
}

/** Options of {@link Responses.start}: the response's id, and bounds that override the hub's. */
export interface StartResponseOptions extends Omit<ResponseOptions, 'lease'> {
  /**
   * The response's id: 1 to 128 characters among `A-Z a-z 0-9 . _ ~ -`.
   * @defaultValue a random 22-character id
   */
  id?: string
}

/** A response started on this instance. */
export interface ResponseHandle {
  /** The response's id: serve it with `{ response: id }`. */
  readonly id: string
  /** Resolves with how the response ended, once it has. */
  readonly done: Promise<ResponseEnd>
  /** Cancels the response (see {@link Responses.cancel}). */
  cancel(): Promise<ResponseStatus | undefined>
}

/** How a request for a response is to be answered. */
export type ResponsePlan =
  | { readonly kind: 'unknown' }
  | { readonly kind: 'ended' }
  | { readonly kind: 'stream'; readonly stream: string; readonly after: string | null }

/** A client following a response on this instance (a subscriber), as the responses see it. */
export interface ResponseFollower {
  readonly closed: boolean
  /** True once it follows live events (replay done) and has not been sent the terminal event. */
  readonly waiting: boolean
  /** Ends it; the client comes back with its position (and gets the rest, 204, or 404). */
  end(reason: CloseReason): void
  /**
   * Writes `frame` (a terminal event the store does not hold, so it has no id) and ends; if it is
   * still catching up, once it has sent what history holds for it.
   */
  endWith(frame: Uint8Array): void
}

/** The clients of one response on this instance, and the timer that checks the response's record. */
interface ResponseWatch {
  readonly followers: Set<ResponseFollower>
  readonly timer: NodeJS.Timeout
  /** Checks in a row that found the response ended while some follower still waited for its end. */
  endedChecks: number
  /** A check is in flight (checks are not stacked on a slow store). */
  checking: boolean
}

/**
 * The responses of one hub (`hub.responses`): start, cancel, look up. Serving one is `hub.serve(req,
 * res, { response: id })` (`res.sse({ response: id })` in Express, `reply.sse({ response: id })` in
 * Fastify).
 */
export interface HubResponses {
  /**
   * Starts a response: creates its record and stream, then runs the producer, which keeps running
   * when every client has gone. Rejects with `ERR_RESPONSE_EXISTS` if the id is taken,
   * `ERR_RESPONSE_LIMIT` past the store's bound, `ERR_INVALID_ARGUMENT` for a bad producer, id or
   * bound, or the store's `ERR_STORE_UNAVAILABLE`.
   *
   * @example
   * ```ts
   * const { id } = await hub.responses.start((signal) => model.stream(prompt, { signal }))
   * ```
   */
  start(producer: ResponseProducer, options?: StartResponseOptions): Promise<ResponseHandle>
  /**
   * Cancels a response, wherever its producer runs: the terminal event with `cancelled` is appended
   * (through the store, so the producing instance sees it and aborts its producer), and clients end.
   * Resolves with the response's status afterwards (`cancelled`, or how it had already ended), or
   * `undefined` for an unknown or expired id.
   */
  cancel(id: string): Promise<ResponseStatus | undefined>
  /** The status of a response, or `undefined` for an unknown or expired id. */
  status(id: string): Promise<ResponseStatus | undefined>
}

/** The hub's side of responses: {@link HubResponses}, plus what serving and closing need. */
export class Responses implements HubResponses {
  private readonly limits: ResponseLimits
  /** Producers running on this instance, by response id. */
  private readonly running = new Map<string, ProducerRun>()
  private readonly runningByStream = new Map<string, ProducerRun>()
  /** Responses followed by clients of this instance, by response id. */
  private readonly watches = new Map<string, ResponseWatch>()

  constructor(
    private readonly host: ResponseHost,
    options: ResponseOptions = {},
  ) {
    this.limits = resolveLimits(options, {
      ...RESPONSE_DEFAULTS,
      lease: positiveTimer('lease', options.lease ?? RESPONSE_DEFAULTS.lease),
    })
  }

  /** Producers running on this instance. */
  get producing(): number {
    return this.running.size
  }

  async start(producer: ResponseProducer, options: StartResponseOptions = {}): Promise<ResponseHandle> {
    if (typeof producer !== 'function' && !isAsyncIterable(producer)) {
      throw new RewindError(
        'ERR_INVALID_ARGUMENT',
        'a response needs an async iterable, or a function (signal) => async iterable',
        { field: 'producer' },
      )
    }
    const records = this.records()
    const id = options.id === undefined ? randomBytes(16).toString('base64url') : responseId(options.id)
    const limits = resolveLimits(options, this.limits)
    const stream = RESPONSE_STREAM_PREFIX + id
    if (!(await records.create(id, stream, limits))) {
      throw new RewindError(
        'ERR_RESPONSE_EXISTS',
        `a response with id ${JSON.stringify(id)} already exists; give each response its own id (or omit id for a random one)`,
        { field: 'id' },
      )
    }
    const run = new ProducerRun(this.host, records, id, stream, limits, (_status, stored) => {
      this.running.delete(id)
      this.runningByStream.delete(stream)
      // The store holds no end (it failed, or lost the record): nothing would ever end this
      // instance's clients. They are told `failed` now; elsewhere the lease ends the response.
      if (!stored) this.endFollowers(id)
    })
    this.running.set(id, run)
    this.runningByStream.set(stream, run)
    await run.start(producer)
    return { id, done: run.done, cancel: () => this.cancel(id) }
  }

  async cancel(id: string): Promise<ResponseStatus | undefined> {
    const local = this.running.get(id)
    if (local !== undefined) return local.finish('cancelled')
    if (!ID_SHAPE.test(id)) return undefined
    const records = this.host.store.responses
    if (records === undefined) return undefined
    const stream = RESPONSE_STREAM_PREFIX + id
    // A synchronous store returns the terminal event to fan out; a shared store's tail delivers it.
    const ended: { readonly state: ResponseState; readonly event?: StoredEvent | undefined } | undefined =
      await records.end(id, stream, endInput(this.host, stream, 'cancelled'), 'cancelled', this.limits)
    if (ended === undefined) return undefined
    if (ended.event !== undefined) this.host.fanOut(stream, ended.event)
    return ended.state.status
  }

  async status(id: string): Promise<ResponseStatus | undefined> {
    if (!ID_SHAPE.test(id)) return undefined
    return (await this.host.store.responses?.get(id))?.status
  }

  /** How to answer a request for response `id` from a client at `resumeId`. */
  async plan(id: string, resumeId: string | null | undefined): Promise<ResponsePlan> {
    if (typeof id !== 'string' || !ID_SHAPE.test(id)) return { kind: 'unknown' }
    const state: ResponseState | undefined = await this.host.store.responses?.get(id)
    if (state === undefined) return { kind: 'unknown' }
    if (state.endId !== undefined && resumeId === state.endId) return { kind: 'ended' }
    return {
      kind: 'stream',
      stream: RESPONSE_STREAM_PREFIX + id,
      // A client without a position gets the answer from its start: it is an answer, not a feed.
      after: resumeId === undefined ? state.origin : resumeId,
    }
  }

  /**
   * A client of this instance follows response `id`. Until it leaves, the response's record is
   * checked every half lease, so the client ends when the response does, whatever happened to its
   * path there (see {@link Responses.check}).
   */
  follow(id: string, follower: ResponseFollower, done: Promise<unknown>): void {
    let watch = this.watches.get(id)
    if (watch === undefined) {
      const timer = setInterval(() => void this.check(id, false), Math.ceil(this.limits.lease / 2))
      timer.unref()
      watch = { followers: new Set(), timer, endedChecks: 0, checking: false }
      this.watches.set(id, watch)
    }
    watch.followers.add(follower)
    void done.then(() => {
      const current = this.watches.get(id)
      if (current === undefined || !current.followers.delete(follower)) return
      if (current.followers.size === 0) this.unwatch(id, current)
    })
  }

  /**
   * Checks response `id` now, for a client whose path was unsure (it was told of a gap): see
   * {@link Responses.check}.
   */
  verify(id: string): void {
    // Deferred: the subscriber asking may not be registered yet (a synchronous store replays at once).
    queueMicrotask(() => void this.check(id, true))
  }

  /**
   * Reads the record of a followed response and ends the clients that would otherwise wait forever:
   * - the record is gone (expired, dropped, or lost by the store): every client, which comes back
   *   and gets 404;
   * - the response has ended and a client follows live events without having had the end (a gap,
   *   a reset, or a lost delivery took it past the end): that client, which comes back with its
   *   position and gets the rest and the end, or 204. On a timer only once two checks in a row saw
   *   it, so a terminal event still on its way is not raced;
   * - the response is active on a shared store, produced elsewhere or by a producer here that has
   *   stopped, and its lease has lapsed: it is ended `failed` (exactly one instance's end wins).
   */
  private async check(id: string, now: boolean): Promise<void> {
    const watch = this.watches.get(id)
    const records = this.host.store.responses
    if (watch === undefined || records === undefined || watch.checking) return
    watch.checking = true
    const stream = RESPONSE_STREAM_PREFIX + id
    try {
      const state = await records.get(id)
      if (state === undefined) {
        for (const follower of [...watch.followers]) follower.end('reset')
        return
      }
      if (state.status !== 'active') {
        const waiting = [...watch.followers].filter((follower) => follower.waiting)
        watch.endedChecks = waiting.length === 0 ? 0 : watch.endedChecks + 1
        if (now || watch.endedChecks >= 2) for (const follower of waiting) follower.end('reset')
        return
      }
      watch.endedChecks = 0
      if (records.endIfLapsed === undefined || this.running.has(id)) return
      const failed = endInput(this.host, stream, 'failed')
      // A shared store's tail delivers the terminal event: there is nothing to fan out here.
      await records.endIfLapsed(id, stream, failed, 'failed', this.limits)
    } catch (error) {
      // The store is down: the clients' own reads fail and they come back; the next check retries.
      this.host.reportError(error, stream)
    } finally {
      watch.checking = false
    }
  }

  /**
   * Ends this instance's clients of a response whose producer stopped here without a stored end,
   * with `failed`: a response the store holds no end of has not ended any other way.
   */
  private endFollowers(id: string): void {
    const watch = this.watches.get(id)
    if (watch === undefined) return
    const frame = Buffer.from(encodeEvent({ event: this.host.endEvent, data: 'failed' }))
    for (const follower of [...watch.followers]) follower.endWith(frame)
  }

  /** Events delivered by a shared store: a terminal event stops a producer running here. */
  observe(stream: string, events: readonly StoredEvent[]): void {
    const run = this.runningByStream.get(stream)
    if (run === undefined) return
    for (const event of events) if (event.event === this.host.endEvent) run.halt()
  }

  /** Ends every producer running here with `failed` (the hub is closing) and stops every watch. */
  async close(): Promise<void> {
    for (const [id, watch] of this.watches) this.unwatch(id, watch)
    await Promise.all([...this.running.values()].map((run) => run.finish('failed')))
  }

  private unwatch(id: string, watch: ResponseWatch): void {
    clearInterval(watch.timer)
    this.watches.delete(id)
  }

  private records(): ResponseRecords {
    const records = this.host.store.responses
    if (records === undefined) {
      throw new RewindError(
        'ERR_INVALID_ARGUMENT',
        "this hub's store keeps no responses; use the in-memory store or @rewind/redis",
        { field: 'store' },
      )
    }
    return records
  }
}

function responseId(id: unknown): string {
  if (typeof id !== 'string' || !ID_SHAPE.test(id)) {
    throw new RewindError(
      'ERR_INVALID_ARGUMENT',
      `a response id must be 1 to 128 characters among A-Z a-z 0-9 . _ ~ -, got ${JSON.stringify(id)}`,
      { field: 'id' },
    )
  }
  return id
}

/** A delay a timer waits for: at least 1 ms, at most MAX_TIMER_DELAY. */
function positiveTimer(name: string, value: number): number {
  return timerDelay(name, positiveInteger(name, value))
}

function resolveLimits(options: ResponseOptions, defaults: ResponseLimits): ResponseLimits {
  return {
    maxEvents: positiveInteger('maxEvents', options.maxEvents ?? defaults.maxEvents),
    maxBytes: positiveLimit('maxBytes', options.maxBytes ?? defaults.maxBytes),
    maxLifetime: positiveTimer('maxLifetime', options.maxLifetime ?? defaults.maxLifetime),
    ttl: positiveTimer('ttl', nonNegativeInteger('ttl', options.ttl ?? defaults.ttl) || 1),
    lease: defaults.lease,
  }
}
