/**
 * The hub: named streams, their subscribers, publishing and fan-out, heartbeats, limits and shutdown.
 * One hub per application is the usual setup; adapters create one unless given one.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2'
import { Batch, type CloseReason, type Connection, type Subscription, type Transport } from './connection.js'
import { RewindError } from './errors.js'
import { assertFieldValue, encodeRetry, type Serializer, serializeData } from './frame.js'
import { closeConnectionAfterShutdown, directTransport, responseHeaders } from './http.js'
import { type IterableOwner, IterableStream, type StreamItem } from './iterable.js'
import { type ResumeId, readResumeId } from './last-event-id.js'
import { createMemoryStore, type MemoryStoreOptions } from './memory-store.js'
import {
  assertStreamName,
  fieldOption,
  gapPolicyOption,
  MAX_TIMER_DELAY,
  optionalFunction,
  positiveInteger,
  positiveLimit,
  timerDelay,
} from './options.js'
import {
  DEFAULT_END_EVENT,
  type HubResponses,
  RESPONSE_STREAM_PREFIX,
  type ResponseOptions,
  Responses,
} from './responses.js'
import type { SubscriberSink } from './sink.js'
import type {
  AsyncHistoryStore,
  GapReason,
  HistoryStore,
  NewEvent,
  ReadResult,
  StoredEvent,
  SyncHistoryStore,
} from './store.js'
import { type EventFilter, type GapPolicy, Subscriber, type SubscriberOwner } from './subscriber.js'
import { throttleErrors } from './throttle-errors.js'
import { CORE_VERSION } from './version.js'

/** Default of {@link HubOptions.maxEventBytes}: 256 KiB. */
export const DEFAULT_MAX_EVENT_BYTES = 256 * 1024
/** Default of {@link HubOptions.maxQueueBytes}: 1 MiB. */
export const DEFAULT_MAX_QUEUE_BYTES = 1024 * 1024
/** Default of {@link HubOptions.heartbeatInterval}: 15 s. */
export const DEFAULT_HEARTBEAT_INTERVAL = 15_000
/** Default of {@link HubOptions.retry}: 3 s. */
export const DEFAULT_RETRY = 3000
/** Default of {@link HubOptions.overloadRetry}: 10 s. */
export const DEFAULT_OVERLOAD_RETRY = 10_000
/** Default of {@link HubOptions.closeGrace}: 1 s. */
export const DEFAULT_CLOSE_GRACE = 1000
/** Default of {@link HubOptions.gapEvent}. */
export const DEFAULT_GAP_EVENT = 'rewind-gap'

/**
 * Events published in one turn of the event loop are written to each subscriber together, once
 * the turn ends; a burst larger than this is written at once instead, so pending bytes stay bounded.
 */
const FLUSH_BYTES = 256 * 1024

/** Serves a response (a stream that ends) by id: see {@link Hub.responses}. */
export interface ResponseSource {
  /** The response's id. */
  response: string
}

/**
 * What an event stream serves: a hub stream by name (with replay), a response by id (from its start,
 * or the client's position, to its end), or the items of an async iterable (not kept).
 */
export type StreamSource = string | ResponseSource | AsyncIterable<StreamItem>

/** An event to publish. */
export interface PublishInput {
  /** The payload: a string is sent as is, anything else through the hub's serializer (JSON by default). */
  data: unknown
  /** The event type; absent means `message`. Must not contain CR, LF or NUL. */
  event?: string | undefined
}

/** What {@link HubOptions.onGap} is told. */
export interface GapInfo {
  /** The stream the client resumes. */
  stream: string
  /** Why its position could not be honoured. */
  reason: GapReason
  /** The id the client sent, or `null` when it was malformed. */
  lastEventId: string | null
  /** The policy that applies unless the hook returns another one. */
  policy: GapPolicy
}

/** What the connection hooks are told. */
export interface ConnectionInfo {
  /** The hub stream, or `undefined` for an iterable stream. */
  stream: string | undefined
}

/** Options of {@link createHub}. Every limit has a default; every hook is optional. */
export interface HubOptions {
  /**
   * Where history is kept. Give a shared store (for example `@rewind/redis`) to run several instances;
   * the hub does not close a store it was given.
   * @defaultValue an in-memory store built from `history`
   */
  store?: HistoryStore
  /**
   * Bounds of the default in-memory history. Refused together with `store` (`ERR_INVALID_ARGUMENT`):
   * they would not apply to it; configure the store's own bounds instead.
   * @defaultValue the defaults of {@link MemoryStoreOptions}
   */
  history?: MemoryStoreOptions
  /**
   * Turns non-string data into the text of `data:` lines.
   * @defaultValue `JSON.stringify`
   */
  serialize?: Serializer
  /**
   * Largest serialized data accepted by `publish`, in bytes; larger data throws `ERR_EVENT_TOO_LARGE`.
   * Must not exceed `maxQueueBytes`.
   * @defaultValue 262144 (256 KiB)
   */
  maxEventBytes?: number
  /**
   * Most bytes that may wait to be sent to one client. A subscriber past it is disconnected and
   * resumes from history when it reconnects, so a stalled client never grows the server's memory.
   * @defaultValue 1048576 (1 MiB)
   */
  maxQueueBytes?: number
  /**
   * Period of the heartbeat, in milliseconds: one shared timer ticks at this period and sends a `:`
   * comment to every connection that wrote nothing since the previous tick, so proxies keep idle
   * streams open and dead peers are noticed. An idle stream thus hears something at least every two
   * periods; a busy one gets no heartbeats at all. `0` disables them; at most `MAX_TIMER_DELAY`.
   * @defaultValue 15000
   */
  heartbeatInterval?: number
  /**
   * Reconnection delay sent to each client when its stream opens (`retry:`), in milliseconds;
   * `null` sends none and leaves the client's default. At most `MAX_TIMER_DELAY`.
   * @defaultValue 3000
   */
  retry?: number | null
  /**
   * Name of the event that tells a client its resume position could not be honoured.
   * @defaultValue `'rewind-gap'`
   */
  gapEvent?: string
  /**
   * Name of the terminal event of a response, whose data says how it ended (`done`, `cancelled`,
   * `failed`). Producers may not use it.
   * @defaultValue `'rewind-end'`
   */
  endEvent?: string
  /** Bounds of responses (streams that end): see {@link ResponseOptions}. */
  responses?: ResponseOptions
  /**
   * After the gap signal, `replay` sends every retained event; `reset` sends none, for clients that
   * refetch their state when they see the signal.
   * @defaultValue `'replay'`
   */
  gapPolicy?: GapPolicy
  /**
   * Most open connections (subscribers and iterable streams). Past it a new client gets a `retry:`
   * hint and an ended body, so it comes back later (never an HTTP error, which would stop it for good).
   * @defaultValue Infinity
   */
  maxConnections?: number
  /**
   * Most subscribers of one stream; past it, the same answer as for `maxConnections`.
   * @defaultValue Infinity
   */
  maxSubscribersPerStream?: number
  /**
   * Base of the `retry:` hint given to clients turned away by a limit; each gets a random delay
   * between half and one and a half times this (at most `MAX_TIMER_DELAY`), so they do not all
   * return at once.
   * @defaultValue 10000
   */
  overloadRetry?: number
  /**
   * How long `close()` lets ended streams flush before destroying them, in milliseconds; at most
   * `MAX_TIMER_DELAY`.
   * @defaultValue 1000
   */
  closeGrace?: number
  /** Called when a client's resume position is a gap; may return the policy for this client. */
  onGap?: (info: GapInfo) => GapPolicy | undefined | void
  /** Called when a connection opens. */
  onConnect?: (info: ConnectionInfo) => void
  /** Called when a connection ends, with the reason. */
  onDisconnect?: (info: ConnectionInfo & { reason: CloseReason }) => void
  /** Called when a client is turned away: `limit` (a connection limit) or `closed` (the hub is closed). */
  onReject?: (info: ConnectionInfo & { reason: 'limit' | 'closed' }) => void
  /**
   * Called when application code (a filter, an iterable, a hook) or the store fails while a stream
   * is open; that stream is ended. By default each kind of error (its code or name) is logged with
   * `console.error` at most once a minute, with a count of the ones left out (see `throttleErrors`).
   * @defaultValue `console.error` wrapped by `throttleErrors`
   */
  onError?: (error: unknown, info: ConnectionInfo) => void
}

/** Options of one subscription. */
export interface SubscribeOptions {
  /**
   * Where the client resumes: an id it was sent, `null` for a malformed value (a gap), or
   * `undefined` for a fresh connection that starts with live events.
   */
  lastEventId?: ResumeId
  /** Only events for which this returns true are sent (for example, one user's events). */
  filter?: EventFilter | undefined
  /** Overrides the hub's `gapPolicy` for this client. */
  gapPolicy?: GapPolicy | undefined
}

/** Options of {@link Hub.serve}. */
export interface ServeOptions {
  /** Only events for which this returns true are sent (hub streams only). */
  filter?: EventFilter | undefined
  /** Overrides the hub's `gapPolicy` for this client (hub streams only). */
  gapPolicy?: GapPolicy | undefined
}

/** A request from `node:http` or `node:http2` (what Express and Fastify hand to handlers as `req` / `request.raw`). */
export type EventStreamRequest = IncomingMessage | Http2ServerRequest
/** A response from `node:http` or `node:http2` (Express's `res`, Fastify's `reply.raw`). */
export type EventStreamResponse = ServerResponse | Http2ServerResponse

/** Counters of a hub, read with {@link Hub.stats}. */
export interface HubStats {
  /** Open connections: subscribers plus iterable streams. */
  connections: number
  /** Open subscribers of hub streams. */
  subscribers: number
  /** Streams with at least one subscriber in this process. */
  streams: number
  /** Events published through this hub. */
  published: number
  /** Live deliveries: one per event per subscriber. */
  delivered: number
  /** Events sent from history during catch-up. */
  replayed: number
  /** Gap signals sent. */
  gaps: number
  /** Subscribers disconnected for passing `maxQueueBytes`. */
  slowClosed: number
  /** Clients turned away by a limit or because the hub was closed. */
  rejected: number
  /** Errors reported through `onError`. */
  errors: number
  /** Bytes written but not yet sent, summed over open connections, now. */
  queuedBytes: number
}

class StreamState {
  readonly subscribers = new Set<Subscriber>()
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

/** The returned id of `publish`: a string with a synchronous store, a promise with an asynchronous one. */
export type PublishResult<S extends HistoryStore> = S extends AsyncHistoryStore ? Promise<string> : string

/**
 * Holds named streams, each with a bounded history, and the clients following them.
 * Create one with {@link createHub}.
 */
export class Hub<Published extends string | Promise<string> = string>
  implements SubscriberOwner, IterableOwner
{
  /** The history store. */
  readonly store: HistoryStore
  /** @internal */
  readonly counters = {
    published: 0,
    delivered: 0,
    replayed: 0,
    gaps: 0,
    slowClosed: 0,
    rejected: 0,
    errors: 0,
  }
  /** @internal */
  readonly maxQueueBytes: number
  /** @internal */
  readonly gapEvent: string
  /** @internal */
  readonly endEvent: string
  /**
   * Responses: streams with a producer and an end, resumable from their start on any instance.
   *
   * @example
   * ```ts
   * const { id } = await hub.responses.start((signal) => model.stream(prompt, { signal }))
   * // GET /responses/:id → hub.serve(req, res, { response: id }); DELETE → hub.responses.cancel(id)
   * ```
   */
  readonly responses: HubResponses
  private readonly registry: Responses
  private readonly gapPolicy: GapPolicy
  private readonly serializer: Serializer
  private readonly maxEventBytes: number
  private readonly heartbeatInterval: number
  private readonly retryHint: Buffer | undefined
  private readonly maxConnections: number
  private readonly maxSubscribersPerStream: number
  private readonly overloadRetry: number
  private readonly closeGrace: number
  private readonly ownsStore: boolean
  private readonly hooks: {
    [K in 'onGap' | 'onConnect' | 'onDisconnect' | 'onReject']: HubOptions[K] | undefined
  } & { onError: NonNullable<HubOptions['onError']> }
  private readonly connections = new Set<Connection>()
  private readonly streams = new Map<string, StreamState>()
  private dirty: StreamState[] = []
  private flushTimer: NodeJS.Immediate | undefined
  private heartbeatTimer: NodeJS.Timeout | undefined
  private closing: Promise<void> | undefined
  /** @internal Counts turns of the event loop in which something was written (see `Connection.backlog`). */
  turn = 0
  private turnEnding = false
  private readonly endTurn = (): void => {
    this.turn++
    this.turnEnding = false
  }

  constructor(options: HubOptions = {}) {
    if (options.store !== undefined && options.history !== undefined) {
      throw new RewindError(
        'ERR_INVALID_ARGUMENT',
        "history bounds apply to the in-memory store and would be ignored with the store given; configure the store's own bounds (for example createRedisStore({ maxLen })) and drop history",
        { field: 'history' },
      )
    }
    this.ownsStore = options.store === undefined
    this.store = options.store ?? createMemoryStore(options.history)
    this.serializer = optionalFunction('serialize', options.serialize) ?? JSON.stringify
    this.maxQueueBytes = positiveInteger('maxQueueBytes', options.maxQueueBytes ?? DEFAULT_MAX_QUEUE_BYTES)
    this.maxEventBytes = positiveInteger('maxEventBytes', options.maxEventBytes ?? DEFAULT_MAX_EVENT_BYTES)
    if (this.maxEventBytes > this.maxQueueBytes) {
      throw new RewindError(
        'ERR_INVALID_ARGUMENT',
        `maxEventBytes (${this.maxEventBytes}) must not exceed maxQueueBytes (${this.maxQueueBytes}): one event would disconnect every subscriber; raise maxQueueBytes or lower maxEventBytes`,
        { field: 'maxEventBytes' },
      )
    }
    this.heartbeatInterval = timerDelay(
      'heartbeatInterval',
      options.heartbeatInterval ?? DEFAULT_HEARTBEAT_INTERVAL,
    )
    const retry = options.retry === undefined ? DEFAULT_RETRY : options.retry
    this.retryHint = retry === null ? undefined : Buffer.from(encodeRetry(timerDelay('retry', retry)))
    this.gapEvent = fieldOption('gapEvent', options.gapEvent ?? DEFAULT_GAP_EVENT)
    this.gapPolicy = gapPolicyOption('gapPolicy', options.gapPolicy) ?? 'replay'
    this.endEvent = fieldOption('endEvent', options.endEvent ?? DEFAULT_END_EVENT)
    this.maxConnections = positiveLimit('maxConnections', options.maxConnections ?? Number.POSITIVE_INFINITY)
    this.maxSubscribersPerStream = positiveLimit(
      'maxSubscribersPerStream',
      options.maxSubscribersPerStream ?? Number.POSITIVE_INFINITY,
    )
    this.overloadRetry = timerDelay('overloadRetry', options.overloadRetry ?? DEFAULT_OVERLOAD_RETRY)
    this.closeGrace = timerDelay('closeGrace', options.closeGrace ?? DEFAULT_CLOSE_GRACE)
    this.hooks = {
      onGap: optionalFunction('onGap', options.onGap),
      onConnect: optionalFunction('onConnect', options.onConnect),
      onDisconnect: optionalFunction('onDisconnect', options.onDisconnect),
      onReject: optionalFunction('onReject', options.onReject),
      onError: optionalFunction('onError', options.onError) ?? defaultErrorReport(),
    }
    this.registry = new Responses(
      {
        store: this.store,
        endEvent: this.endEvent,
        prepare: (stream, input) => this.encode(stream, input),
        fanOut: (stream, event) => this.fanOut(stream, event),
        pin: (stream) => this.pin(stream),
        unpin: (stream) => this.unpin(stream),
        reportError: (error, stream) => this.reportError(error, stream),
      },
      options.responses,
    )
    this.responses = this.registry
    if (!this.store.synchronous) {
      this.store.attach({
        deliver: (stream, events) => this.fanOut(stream, events),
        reset: (stream) => this.resetStream(stream),
      })
    }
  }

  /** Whether {@link Hub.close} has been called. */
  get closed(): boolean {
    return this.closing !== undefined
  }

  /**
   * Publishes an event to a stream: assigns the next id, serializes the event once, keeps it in
   * history and sends the same bytes to every subscriber. Events published in the same turn of the
   * event loop reach each subscriber in one write.
   *
   * Throws (or, with an asynchronous store, rejects with) a {@link RewindError}: `ERR_INVALID_FIELD`
   * for an event name with CR, LF or NUL, `ERR_SERIALIZE`, `ERR_EVENT_TOO_LARGE`, `ERR_INVALID_STREAM`,
   * `ERR_CLOSED`, or the store's `ERR_STORE_UNAVAILABLE`.
   *
   * @returns the id of the event (a promise of it with an asynchronous store)
   * @example
   * ```ts
   * const id = hub.publish('orders', { event: 'created', data: { orderId: 42 } })
   * ```
   */
  publish(stream: string, input: PublishInput): Published {
    const store = this.store
    if (isResponseStream(stream)) {
      if (store.synchronous) throw reservedStream(stream)
      return Promise.reject(reservedStream(stream)) as Published
    }
    if (store.synchronous) {
      const event = store.append(stream, this.prepare(stream, input))
      this.counters.published++
      this.fanOut(stream, event)
      return event.id as Published
    }
    let prepared: NewEvent
    try {
      prepared = this.prepare(stream, input)
    } catch (error) {
      return Promise.reject(error) as Published
    }
    return store.append(stream, prepared).then((id) => {
      this.counters.published++
      return id
    }) as Published
  }

  /**
   * Follows a stream on any sink: replays history after `options.lastEventId`, then live events.
   * The sink must already be an open event stream (headers sent); {@link Hub.serve} does that for HTTP.
   * Throws `ERR_INVALID_STREAM` or `ERR_INVALID_ARGUMENT` for a bad call; a limit or a closed hub
   * ends the sink with a `retry:` hint and returns a closed subscription.
   */
  subscribe(stream: string, sink: SubscriberSink, options: SubscribeOptions = {}): Subscription {
    if (isResponseStream(stream)) throw reservedStream(stream)
    return this.follow(stream, sink, options, undefined, undefined)
  }

  /** `subscribe`, with the response head to send when the stream starts (from `serve`). */
  private follow(
    stream: string,
    sink: SubscriberSink,
    options: SubscribeOptions,
    begin: ((flush: boolean) => Transport | undefined) | undefined,
    endEvent: string | undefined,
  ): Subscription {
    assertStreamName(stream)
    const filter = optionalFunction('filter', options.filter)
    gapPolicyOption('gapPolicy', options.gapPolicy)
    // The client may have left while the application was deciding to subscribe it (an awaited
    // lookup, say); its 'close' has fired already, so nothing else would ever end the subscriber.
    if (sink.destroyed === true) return closedSubscription(stream, 'client')
    const subscriber = new Subscriber(
      this as Hub<string | Promise<string>>,
      sink,
      stream,
      filter,
      options.gapPolicy,
      begin,
      endEvent,
    )
    let state = this.streams.get(stream)
    const full = state !== undefined && state.subscribers.size >= this.maxSubscribersPerStream
    if (this.refuse(subscriber, full)) return subscriber
    if (state === undefined) state = this.stateOf(stream)
    state.subscribers.add(subscriber)
    // With an asynchronous store the client's `open` waits for its position to be fixed: an event
    // published right after `open` must reach it.
    this.open(subscriber, !this.store.synchronous)
    subscriber.start(options.lastEventId, state.watching)
    return subscriber
  }

  /**
   * Writes the items of an async iterable to a sink as events, pulling each item only when the sink
   * has room; ends the sink when the iterable ends, and calls the iterator's `return()` if the client
   * leaves first. Nothing is kept in history.
   */
  streamIterable(sink: SubscriberSink, iterable: AsyncIterable<StreamItem>): Subscription {
    return this.iterate(sink, iterable, undefined)
  }

  private iterate(
    sink: SubscriberSink,
    iterable: AsyncIterable<StreamItem>,
    begin: ((flush: boolean) => Transport | undefined) | undefined,
  ): Subscription {
    if (!isAsyncIterable(iterable)) {
      throw new RewindError(
        'ERR_INVALID_ARGUMENT',
        'streamIterable needs an async iterable (an async generator, for example)',
        { field: 'iterable' },
      )
    }
    if (sink.destroyed === true) return closedSubscription(undefined, 'client')
    const connection = new IterableStream(this as Hub<string | Promise<string>>, sink, iterable, begin)
    if (this.refuse(connection, false)) return connection
    this.open(connection, false)
    void connection.run()
    return connection
  }

  /**
   * Answers an HTTP request (`node:http` or `node:http2`) with an event stream: status 200 and the
   * event-stream headers, flushed at once, then either a hub stream with replay from the request's
   * `Last-Event-ID` header (else its `lastEventId` query parameter), or the items of an async iterable.
   * Headers set on the response before (CORS, for instance) are kept.
   *
   * Throws `ERR_INVALID_STREAM` or `ERR_INVALID_ARGUMENT` before anything is written, so the caller's
   * error handling still owns the response; afterwards nothing throws.
   *
   * @example
   * ```ts
   * http.createServer((req, res) => hub.serve(req, res, 'news'))
   * ```
   */
  serve(
    req: EventStreamRequest,
    res: EventStreamResponse,
    source: StreamSource,
    options: ServeOptions = {},
  ): Subscription {
    if (typeof source === 'string') {
      assertStreamName(source)
      if (isResponseStream(source)) throw reservedStream(source)
    } else if (isResponseSource(source)) {
      if (typeof source.response !== 'string') {
        throw new RewindError(
          'ERR_INVALID_ARGUMENT',
          'a response source is { response: id } with a string id',
          {
            field: 'response',
          },
        )
      }
    } else if (!isAsyncIterable(source)) {
      throw new RewindError(
        'ERR_INVALID_ARGUMENT',
        'the source of an event stream must be a stream name, { response: id } or an async iterable',
        { field: 'source' },
      )
    }
    if (res.headersSent) {
      throw new RewindError(
        'ERR_INVALID_ARGUMENT',
        'the response has already started; serve the event stream before writing anything to the response',
      )
    }
    if (isResponseSource(source)) return this.serveResponse(req, res, source.response)
    const stream = typeof source === 'string' ? source : undefined
    if (res.destroyed) return closedSubscription(stream, 'client')
    const head = (flush: boolean): Transport | undefined => {
      res.writeHead(200, responseHeaders(req.httpVersionMajor >= 2))
      // Http2ServerResponse has flushHeaders too, though its typings omit it.
      if (flush) (res as ServerResponse).flushHeaders()
      return directTransport(req, res)
    }
    if (req.method === 'HEAD') {
      // Headers only: a HEAD request must not become a subscriber that never ends.
      res.writeHead(200, responseHeaders(req.httpVersionMajor >= 2))
      res.end()
      return closedSubscription(stream, 'end')
    }
    closeConnectionAfterShutdown(this as Hub<string | Promise<string>>, req, res)
    if (stream === undefined) return this.iterate(res, source as AsyncIterable<StreamItem>, head)
    return this.follow(
      stream,
      res,
      {
        lastEventId: readResumeId(req.headers, req.url),
        filter: options.filter,
        gapPolicy: options.gapPolicy,
      },
      head,
      undefined,
    )
  }

  /**
   * Serves a response: 404 for an unknown or expired id, 204 for a client whose position is the
   * terminal event (an EventSource then stops for good), else the event stream from the client's
   * position (or the start) to the terminal event, after which the body ends.
   */
  private serveResponse(req: EventStreamRequest, res: EventStreamResponse, id: string): Subscription {
    const resumeId = readResumeId(req.headers, req.url)
    const stream = undefined
    if (req.method === 'HEAD') {
      res.writeHead(200, responseHeaders(req.httpVersionMajor >= 2))
      res.end()
      return closedSubscription(stream, 'end')
    }
    // The answer depends on the response's record, which a shared store holds: the subscription
    // exists at once and follows the stream once the record has been read.
    const pending = new PendingSubscription()
    this.registry.plan(id, resumeId).then(
      (plan) => {
        if (pending.closed || res.destroyed) return pending.settle(closedSubscription(stream, 'client'))
        if (plan.kind === 'unknown') {
          res.writeHead(404, {
            'content-type': 'application/json; charset=utf-8',
            'cache-control': 'no-store',
          })
          res.end(UNKNOWN_RESPONSE_BODY)
          return pending.settle(closedSubscription(stream, 'end'))
        }
        if (plan.kind === 'ended') {
          res.writeHead(204, { 'cache-control': 'no-store' })
          res.end()
          return pending.settle(closedSubscription(stream, 'end'))
        }
        closeConnectionAfterShutdown(this as Hub<string | Promise<string>>, req, res)
        const head = (flush: boolean): Transport | undefined => {
          res.writeHead(200, responseHeaders(req.httpVersionMajor >= 2))
          if (flush) (res as ServerResponse).flushHeaders()
          return directTransport(req, res)
        }
        const subscription = this.follow(plan.stream, res, { lastEventId: plan.after }, head, this.endEvent)
        if (plan.active && !subscription.closed) this.registry.watchLease(id, subscription.done)
        pending.settle(subscription)
      },
      (error: unknown) => {
        this.reportError(error, undefined)
        if (!res.headersSent && !res.destroyed) {
          res.writeHead(503, { 'content-type': 'application/json; charset=utf-8', 'retry-after': '1' })
          res.end(UNAVAILABLE_BODY)
        }
        pending.settle(closedSubscription(stream, 'error'))
      },
    )
    return pending
  }

  /** Counters and gauges of this hub, for logs and metrics. */
  stats(): HubStats {
    let subscribers = 0
    let queuedBytes = 0
    for (const connection of this.connections) {
      if (connection.stream !== undefined) subscribers++
      queuedBytes += connection.queuedBytes
    }
    return {
      ...this.counters,
      connections: this.connections.size,
      subscribers,
      streams: this.streams.size,
      queuedBytes,
    }
  }

  /**
   * Ends every open stream and stops the heartbeat timer, so `server.close()` (or `fastify.close()`)
   * can finish. Events published before the call are sent first. With `retry`, each client is first
   * told to wait a random delay between half and one and a half times `retry` milliseconds, so a fleet
   * of clients does not come back all at once. Resolves when every stream has flushed (or, after
   * `closeGrace`, has been destroyed) and, if the hub created its store, the store is closed.
   * Later calls return the same promise; publishing afterwards throws `ERR_CLOSED`.
   */
  close(options: { retry?: number } = {}): Promise<void> {
    if (this.closing !== undefined) return this.closing
    try {
      if (options.retry !== undefined) timerDelay('retry', options.retry)
    } catch (error) {
      return Promise.reject(error)
    }
    this.closing = this.shutdown(options.retry)
    return this.closing
  }

  private async shutdown(retry: number | undefined): Promise<void> {
    // Producers running here end first, so their clients get the terminal event before the streams close.
    await boundedWait(this.registry.close(), this.closeGrace)
    this.flush()
    this.stopHeartbeat()
    const ended = [...this.connections]
    const finished = ended.map(
      (connection) => new Promise<void>((resolve) => connection.sink.on('close', () => resolve())),
    )
    for (const connection of ended)
      connection.end('shutdown', retry === undefined ? undefined : jitter(retry))
    if (ended.length > 0) {
      let timer: NodeJS.Timeout | undefined
      const grace = new Promise<'timeout'>((resolve) => {
        timer = setTimeout(() => resolve('timeout'), this.closeGrace)
      })
      const outcome = await Promise.race([Promise.all(finished), grace])
      clearTimeout(timer)
      // Clients that do not read would otherwise hold their sockets open forever.
      if (outcome === 'timeout') for (const connection of ended) connection.sink.destroy()
    }
    if (this.ownsStore) await this.store.close?.()
  }

  /** @internal Returns the current turn, making sure the counter moves once this turn's writes are out. */
  markTurn(): number {
    if (!this.turnEnding) {
      this.turnEnding = true
      // A response's writes reach its socket in a nextTick scheduled by the first of them, which is
      // queued before this one (connections count their bytes after writing).
      process.nextTick(this.endTurn)
    }
    return this.turn
  }

  /** @internal Serializes event data with the hub's serializer (`ERR_SERIALIZE` on failure). */
  serialize(value: unknown): string {
    const data = serializeData(value, this.serializer)
    this.assertSize(data)
    return data
  }

  /** @internal Applies the gap policy and the `onGap` hook. */
  decideGap(
    stream: string,
    reason: GapReason,
    lastEventId: string | null,
    override: GapPolicy | undefined,
  ): GapPolicy {
    this.counters.gaps++
    const policy = override ?? this.gapPolicy
    const onGap = this.hooks.onGap
    if (onGap === undefined) return policy
    try {
      const decided = onGap({ stream, reason, lastEventId, policy })
      return decided === 'replay' || decided === 'reset' ? decided : policy
    } catch (error) {
      this.reportError(error, stream)
      return policy
    }
  }

  /** @internal Reports an error through `onError`. */
  reportError(error: unknown, stream: string | undefined): void {
    this.counters.errors++
    try {
      this.hooks.onError(error, { stream })
    } catch {
      // A failing error hook must not take the stream or the process down.
    }
  }

  /** @internal Called by a connection when it ends. */
  release(connection: Connection, reason: CloseReason): void {
    if (!this.connections.delete(connection)) return
    if (connection instanceof Subscriber) {
      const state = this.streams.get(connection.stream)
      if (state?.subscribers.delete(connection)) this.dropIfUnused(connection.stream, state)
    }
    if (reason === 'slow') this.counters.slowClosed++
    if (this.connections.size === 0) this.stopHeartbeat()
    this.call(this.hooks.onDisconnect, { stream: connection.stream, reason })
  }

  /** Turns a connection away (closed hub or a limit); returns true if it was. */
  private refuse(connection: Connection, streamFull: boolean): boolean {
    const reason = this.closed
      ? 'closed'
      : streamFull || this.connections.size >= this.maxConnections
        ? 'limit'
        : undefined
    if (reason === undefined) return false
    this.counters.rejected++
    this.call(this.hooks.onReject, { stream: connection.stream, reason })
    connection.end('rejected', jitter(this.overloadRetry))
    return true
  }

  private open(connection: Connection, deferHead: boolean): void {
    this.connections.add(connection)
    if (this.heartbeatTimer === undefined && this.heartbeatInterval > 0) {
      this.heartbeatTimer = setInterval(() => {
        for (const open of this.connections) open.heartbeat()
      }, this.heartbeatInterval)
      this.heartbeatTimer.unref()
    }
    connection.open(this.retryHint, deferHead)
    this.call(this.hooks.onConnect, { stream: connection.stream })
  }

  private stopHeartbeat(): void {
    clearInterval(this.heartbeatTimer)
    this.heartbeatTimer = undefined
  }

  private prepare(stream: string, input: PublishInput): NewEvent {
    if (this.closed) {
      throw new RewindError('ERR_CLOSED', 'the hub is closed; create a new hub to publish again')
    }
    return this.encode(stream, input)
  }

  /** Validates and serializes an event (responses use it while the hub closes, to append their end). */
  private encode(stream: string, input: PublishInput): NewEvent {
    assertStreamName(stream)
    if (input === null || typeof input !== 'object') {
      throw new RewindError(
        'ERR_INVALID_ARGUMENT',
        `publish takes an event object { data, event? }, got ${input === null ? 'null' : typeof input}; wrap the value: publish(stream, { data: value })`,
        { field: 'data' },
      )
    }
    const event = input.event === undefined || input.event === '' ? undefined : input.event
    if (event !== undefined) assertFieldValue('event', event)
    const data = serializeData(input.data, this.serializer)
    this.assertSize(data)
    return { event, data, value: input.data }
  }

  private assertSize(data: string): void {
    // Most payloads are far below the limit; only count bytes when characters alone cannot decide.
    if (data.length * 3 <= this.maxEventBytes) return
    const bytes = Buffer.byteLength(data)
    if (bytes > this.maxEventBytes) {
      throw new RewindError(
        'ERR_EVENT_TOO_LARGE',
        `event data is ${bytes} bytes, more than maxEventBytes (${this.maxEventBytes}); send a reference to the data, or raise maxEventBytes (and maxQueueBytes)`,
        { field: 'data' },
      )
    }
  }

  /** Queues new events of a stream for its subscribers; they are written when the turn ends. */
  private fanOut(stream: string, events: StoredEvent | readonly StoredEvent[]): void {
    // A terminal event delivered by a shared store may be a cancel from another instance.
    if (this.registry.producing > 0 && !this.store.synchronous) {
      this.registry.observe(stream, Array.isArray(events) ? events : [events as StoredEvent])
    }
    const state = this.streams.get(stream)
    if (state === undefined) return
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
   * @internal Reads history from an asynchronous store for a subscriber, sharing a read already in
   * flight for the same position (a crowd resuming from the same id costs one read, not one each).
   * A read may only be shared while no flush has reached the subscribers since it started: each
   * subscriber queues live events from the moment its own read starts, so a joiner must not miss a
   * delivery that the first reader's queue caught.
   */
  readHistory(stream: string, after: string | null | undefined, limit: number): Promise<ReadResult> {
    const store = this.store as AsyncHistoryStore
    const state = this.streams.get(stream)
    if (state === undefined) return store.read(stream, after, limit)
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

  /** The state of a stream, created (and, with a shared store, watched) on first use. */
  private stateOf(stream: string): StreamState {
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

  /** Keeps a stream followed while no client does (a response's producer runs here). */
  private pin(stream: string): Promise<void> | undefined {
    const state = this.stateOf(stream)
    state.pins++
    return state.watching
  }

  private unpin(stream: string): void {
    const state = this.streams.get(stream)
    if (state === undefined) return
    state.pins--
    this.dropIfUnused(stream, state)
  }

  private dropIfUnused(stream: string, state: StreamState): void {
    if (state.subscribers.size > 0 || state.pins > 0) return
    this.streams.delete(stream)
    this.store.unwatch?.(stream)
  }

  /** Ends a stream's subscribers after the store lost live events; they resume from history. */
  private resetStream(stream: string): void {
    const state = this.streams.get(stream)
    if (state === undefined) return
    this.flushStream(state)
    for (const subscriber of [...state.subscribers]) subscriber.end('reset')
  }

  private readonly flush = (): void => {
    if (this.flushTimer !== undefined) {
      clearImmediate(this.flushTimer)
      this.flushTimer = undefined
    }
    const dirty = this.dirty
    this.dirty = []
    for (const state of dirty) this.flushStream(state)
  }

  private flushStream(state: StreamState): void {
    const events = state.pending
    if (events.length === 0) return
    const bytes = state.pendingBytes
    state.pending = []
    state.pendingBytes = 0
    if (state.subscribers.size === 0) return
    state.flushes++
    // One buffer for the whole batch, shared by every subscriber that takes all of it.
    const batch = new Batch(
      events,
      events.length === 1 ? events[0]!.frame : Buffer.concat(events.map(frameOf), bytes),
    )
    for (const subscriber of state.subscribers) subscriber.deliver(batch)
  }

  private call<T>(hook: ((info: T) => void) | undefined, info: T): void {
    if (hook === undefined) return
    try {
      hook(info)
    } catch (error) {
      this.reportError(error, (info as ConnectionInfo).stream)
    }
  }
}

function defaultErrorReport(): NonNullable<HubOptions['onError']> {
  return throttleErrors((error, suppressed, info: ConnectionInfo) =>
    console.error(
      `[rewind] stream error${info.stream === undefined ? '' : ` on ${JSON.stringify(info.stream)}`} (each kind is logged at most once a minute${suppressed > 0 ? `; ${suppressed} more since the last one` : ''}; set onError to handle them):`,
      error,
    ),
  )
}

const UNKNOWN_RESPONSE_BODY = JSON.stringify({
  error: 'unknown response: it never existed, or it ended and expired',
})
const UNAVAILABLE_BODY = JSON.stringify({ error: 'the store is unavailable; try again' })

/**
 * The subscription of a response whose record is being read: it stands for the real one, which it
 * follows once known (`close()` before then ends the request when the record arrives).
 */
class PendingSubscription implements Subscription {
  readonly stream = undefined
  readonly done: Promise<CloseReason>
  private resolveDone!: (reason: CloseReason) => void
  private inner: Subscription | undefined
  private closedEarly = false

  constructor() {
    this.done = new Promise((resolve) => {
      this.resolveDone = resolve
    })
  }

  get closed(): boolean {
    return this.closedEarly || (this.inner?.closed ?? false)
  }

  settle(inner: Subscription): void {
    this.inner = inner
    if (this.closedEarly) inner.close()
    void inner.done.then(this.resolveDone)
  }

  close(): void {
    if (this.inner !== undefined) this.inner.close()
    else this.closedEarly = true
  }
}

function isResponseStream(stream: string): boolean {
  return typeof stream === 'string' && stream.startsWith(RESPONSE_STREAM_PREFIX)
}

function reservedStream(stream: string): RewindError {
  return new RewindError(
    'ERR_INVALID_STREAM',
    `stream names starting with ${JSON.stringify(RESPONSE_STREAM_PREFIX)} belong to responses (got ${JSON.stringify(stream)}); serve a response with { response: id } and name your streams otherwise`,
    { field: 'stream' },
  )
}

function isResponseSource(source: unknown): source is ResponseSource {
  return source !== null && typeof source === 'object' && 'response' in source
}

/** Waits for `promise`, at most `ms` milliseconds. */
async function boundedWait(promise: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, ms)
  })
  await Promise.race([promise.catch(() => {}), timeout])
  clearTimeout(timer)
}

function closedSubscription(stream: string | undefined, reason: CloseReason): Subscription {
  return { stream, closed: true, done: Promise.resolve(reason), close: () => {} }
}

function frameOf(event: StoredEvent): Buffer {
  return event.frame
}

function jitter(ms: number): number {
  // Up to one and a half times a delay that may itself be MAX_TIMER_DELAY: keep the hint a valid delay.
  return Math.min(MAX_TIMER_DELAY, Math.round(ms * (0.5 + Math.random())))
}

function isAsyncIterable(value: unknown): value is AsyncIterable<StreamItem> {
  return (
    value !== null &&
    typeof value === 'object' &&
    typeof (value as Partial<AsyncIterable<unknown>>)[Symbol.asyncIterator] === 'function'
  )
}

/**
 * Every hub carries the version of the copy of `@rewind/core` that made it, under a key from the
 * global symbol registry that every copy sees. `instanceof Hub` only knows this copy's class, so
 * without the brand a hub from a second copy (two versions installed, or one loaded through both
 * `import` and `require`) could only be refused as "not a hub", which hides the cause.
 * Set on the prototype so the brand adds no member to the class's public type.
 */
const kHubVersion = Symbol.for('rewind.hub')
Object.defineProperty(Hub.prototype, kHubVersion, { value: CORE_VERSION })

/**
 * Creates a hub. Without a `store` it keeps history in memory and `publish` returns the id at once;
 * with an asynchronous store (such as `@rewind/redis`) `publish` returns a promise of the id.
 *
 * @example
 * ```ts
 * const hub = createHub({ history: { maxEvents: 500 } })
 * http.createServer((req, res) => hub.serve(req, res, 'news')).listen(3000)
 * hub.publish('news', { event: 'headline', data: { title: 'Hello' } })
 * ```
 */
export function createHub(options?: HubOptions & { store?: SyncHistoryStore | undefined }): Hub<string>
export function createHub(options: HubOptions & { store: AsyncHistoryStore }): Hub<Promise<string>>
export function createHub(options?: HubOptions): Hub<string> | Hub<Promise<string>>
export function createHub(options: HubOptions = {}): Hub<string> | Hub<Promise<string>> {
  return new Hub(options) as Hub<string>
}

/**
 * For adapters that take either an existing hub or the options to build one: returns `options.hub`
 * when given, else a new hub built from `options` (with `defaults` under them). Giving a hub and hub
 * options together is refused, since the options would be silently ignored.
 *
 * @example
 * ```ts
 * const hub = hubFromOptions({ hub: sharedHub }) // or hubFromOptions({ history: { maxEvents: 50 } })
 * ```
 */
export function hubFromOptions(
  options: HubOptions & { hub?: Hub<string> | Hub<Promise<string>> | undefined },
  defaults: HubOptions = {},
): Hub<string | Promise<string>> {
  const { hub, ...hubOptions } = options
  if (hub === undefined) return new Hub({ ...defaults, ...hubOptions }) as Hub<string | Promise<string>>
  if (!(hub instanceof Hub)) {
    const version = (hub as { [kHubVersion]?: unknown } | null)?.[kHubVersion]
    if (typeof version === 'string') {
      const sameVersion =
        version === CORE_VERSION
          ? `; if both are ${version}, one is loaded with import and one with require: use one`
          : ''
      throw new RewindError(
        'ERR_INVALID_ARGUMENT',
        `hub was made by another copy of @rewind/core: two copies of @rewind/core are installed (${CORE_VERSION} and ${version}): dedupe them (npm dedupe / pnpm dedupe) so that the app and the adapters share one${sameVersion}`,
        { field: 'hub' },
      )
    }
    throw new RewindError('ERR_INVALID_ARGUMENT', 'hub must be a hub made by createHub()', { field: 'hub' })
  }
  const ignored = Object.keys(hubOptions).filter((key) => hubOptions[key as keyof HubOptions] !== undefined)
  if (ignored.length > 0) {
    throw new RewindError(
      'ERR_INVALID_ARGUMENT',
      `pass either a hub or hub options, not both: ${ignored.join(', ')} would be ignored; give them to createHub() instead`,
      { field: 'hub' },
    )
  }
  return hub as Hub<string | Promise<string>>
}
