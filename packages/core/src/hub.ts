/**
 * The hub: named streams, their subscribers, publishing, admission, stats and shutdown. Option
 * resolution, fan-out, the heartbeat, the bytes on the wire and HTTP serving each have their own
 * module; the hub wires them together. One hub per application is the usual setup; adapters create
 * one unless given one.
 */
import type { Connection } from './connection.js'
import { RewindError } from './errors.js'
import { EventPreparer } from './event-preparer.js'
import { FanOut } from './fan-out.js'
import { Heartbeat } from './heartbeat.js'
import { Hooks } from './hooks.js'
import { type HubOptions, type ResolvedHubOptions, resolveHubOptions } from './hub-options.js'
import { type IterableOwner, IterableStream, isAsyncIterable, type StreamItem } from './iterable.js'
import { createMemoryStore } from './memory-store.js'
import { type HubResponses, Responses } from './responses.js'
import {
  closedSubscription,
  type EventStreamRequest,
  type EventStreamResponse,
  isResponseStream,
  reservedStream,
  type ServeHost,
  type ServeOptions,
  type StreamSource,
  serve,
} from './serve.js'
import type { HistoryStore, NewEvent, StoreDelivery, StoredEvent } from './store.js'
import { type ResponseLink, Subscriber, type SubscriberOwner } from './subscriber.js'
import type {
  CloseReason,
  EventSink,
  HubStats,
  PublishInput,
  SubscribeOptions,
  Subscription,
} from './types.js'
import {
  assertStreamName,
  gapPolicyOption,
  MAX_TIMER_DELAY,
  optionalFunction,
  timerDelay,
} from './validation.js'
import { type StartStream, TurnClock } from './wire-writer.js'

/** What the hub's children (subscribers, iterable streams, serving) may use of it. */
type Owner = SubscriberOwner & IterableOwner & ServeHost

/** Each hub's {@link ServeHost}, for serving on sinks other than `node:http` responses (see {@link serveHostOf}). */
const hosts = new WeakMap<object, ServeHost>()

/**
 * What serving needs of a hub, for an adapter whose responses are not `node:http` ones (a Fetch
 * `Response` body): see `serveSink`. Kept off the hub's public type, as the hub's children's view is.
 */
export function serveHostOf(hub: Hub<string | Promise<string>>): ServeHost {
  const host = hosts.get(hub)
  if (host === undefined) {
    throw new RewindError('ERR_INVALID_ARGUMENT', 'hub must be a hub made by createHub()', { field: 'hub' })
  }
  return host
}

/**
 * Holds named streams and the clients following them; each stream's history is kept by the store.
 * Create one with {@link createHub}.
 */
export class Hub<Published extends string | Promise<string> = string> {
  /**
   * The history store. Private: appending to it directly would bypass fan-out, so subscribers
   * would miss the event; an application that needs the store holds the one it gave.
   */
  private readonly store: HistoryStore
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
  private readonly options: ResolvedHubOptions
  /** Whether the hub made the store (and so closes it). */
  private readonly ownsStore: boolean
  private readonly counters = {
    published: 0,
    delivered: 0,
    replayed: 0,
    gaps: 0,
    slowClosed: 0,
    rejected: 0,
    errors: 0,
  }
  private readonly registry: Responses
  private readonly preparer: EventPreparer
  private readonly hooks: Hooks
  private readonly connections = new Set<Connection>()
  private readonly fanOut: FanOut<Subscriber>
  private readonly heartbeat: Heartbeat
  /** Lent to the children: the members they need, kept off this class's public type. */
  private readonly owner: Owner
  private closing: Promise<void> | undefined
  /** How the store reaches this hub; also what tells this hub from another using the same store. */
  private readonly delivery: StoreDelivery

  constructor(options: HubOptions = {}) {
    const resolved = resolveHubOptions(options)
    this.options = resolved
    // Built here, not while resolving: resolving options creates nothing.
    this.store = resolved.store ?? createMemoryStore(resolved.history)
    this.ownsStore = resolved.store === undefined
    this.preparer = new EventPreparer(resolved.serializer, resolved.maxEventBytes)
    this.hooks = new Hooks(resolved.hooks, resolved.gapPolicy, this.counters)
    this.fanOut = new FanOut(this.store)
    this.heartbeat = new Heartbeat(resolved.heartbeatInterval, () => {
      for (const open of this.connections) open.heartbeat()
    })
    this.registry = new Responses(
      {
        store: this.store,
        endEvent: resolved.endEvent,
        prepare: (stream, input) => this.preparer.prepare(stream, input),
        fanOut: (stream, event) => this.deliver(stream, event),
        pin: (stream) => this.fanOut.pin(stream),
        unpin: (stream) => this.fanOut.unpin(stream),
        reportError: (error, stream) => this.hooks.reportError(error, stream),
      },
      resolved.responses,
    )
    this.responses = this.registry
    this.owner = this.makeOwner()
    hosts.set(this, this.owner)
    this.delivery = {
      deliver: (stream, events) => this.deliver(stream, events),
      reset: (stream) => this.fanOut.reset(stream),
    }
    // Last: a store that refuses this hub (it serves another) must leave nothing running.
    this.store.attach?.(this.delivery)
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
      this.deliver(stream, event)
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
  subscribe(stream: string, sink: EventSink, options: SubscribeOptions = {}): Subscription {
    if (isResponseStream(stream)) throw reservedStream(stream)
    return this.follow(stream, sink, options, undefined, undefined)
  }

  /**
   * Writes the items of an async iterable to a sink as events, pulling each item only when the sink
   * has room; ends the sink when the iterable ends, and calls the iterator's `return()` if the client
   * leaves first. Nothing is kept in history.
   */
  streamIterable(sink: EventSink, iterable: AsyncIterable<StreamItem>): Subscription {
    return this.iterate(sink, iterable, undefined)
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
    return serve(this.owner, req, res, source, options)
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
      streams: this.fanOut.size,
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
    const closeGrace = this.options.closeGrace
    // Producers running here end first, so their clients get the terminal event before the streams close.
    await boundedWait(this.registry.close(), closeGrace)
    this.fanOut.flush()
    this.heartbeat.stop()
    const ended = [...this.connections]
    const finished = ended.map(
      (connection) => new Promise<void>((resolve) => connection.sink.on('close', () => resolve())),
    )
    for (const connection of ended)
      connection.end('shutdown', retry === undefined ? undefined : jitter(retry))
    // Clients that do not read would otherwise hold their sockets open forever.
    // Stryker disable next-line EqualityOperator: with no connection, waiting for none settles at once and destroys nothing (`>= 0` only adds a timer that is cleared)
    if (ended.length > 0 && !(await boundedWait(Promise.all(finished), closeGrace))) {
      for (const connection of ended) connection.sink.destroy()
    }
    try {
      // Stryker disable next-line OptionalChaining: the hub owns only the memory store it made, which has close(); a store it was given is never closed
      if (this.ownsStore) await this.store.close?.()
    } finally {
      this.store.detach?.(this.delivery)
    }
  }

  /** `subscribe`, with the response head to send when the stream starts (from `serve`). */
  private follow(
    stream: string,
    sink: EventSink,
    options: SubscribeOptions,
    start: StartStream | undefined,
    response: ResponseLink | undefined,
  ): Subscription {
    assertStreamName(stream)
    const filter = optionalFunction('filter', options.filter)
    gapPolicyOption('gapPolicy', options.gapPolicy)
    // The client may have left while the application was deciding to subscribe it (an awaited
    // lookup, say); its 'close' has fired already, so nothing else would ever end the subscriber.
    if (sink.destroyed === true) return closedSubscription(stream, 'client')
    const subscriber = new Subscriber(this.owner, sink, {
      stream,
      filter,
      gapPolicy: options.gapPolicy,
      start,
      response,
    })
    const full = this.fanOut.count(stream) >= this.options.maxSubscribersPerStream
    if (this.refuse(subscriber, full)) return subscriber
    const watching = this.fanOut.add(stream, subscriber)
    // With an asynchronous store the client's `open` waits for its position to be fixed: an event
    // published right after `open` must reach it.
    this.open(subscriber, !this.store.synchronous)
    subscriber.start(options.lastEventId, watching)
    return subscriber
  }

  private iterate(
    sink: EventSink,
    iterable: AsyncIterable<StreamItem>,
    start: StartStream | undefined,
  ): Subscription {
    if (!isAsyncIterable(iterable)) {
      throw new RewindError(
        'ERR_INVALID_ARGUMENT',
        'streamIterable needs an async iterable (an async generator, for example)',
        { field: 'iterable' },
      )
    }
    if (sink.destroyed === true) return closedSubscription(undefined, 'client')
    const connection = new IterableStream(this.owner, sink, iterable, start)
    if (this.refuse(connection, false)) return connection
    this.open(connection, false)
    void connection.run()
    return connection
  }

  /** Turns a connection away (closed hub or a limit); returns true if it was. */
  private refuse(connection: Connection, streamFull: boolean): boolean {
    const reason = this.closed
      ? 'closed'
      : streamFull || this.connections.size >= this.options.maxConnections
        ? 'limit'
        : undefined
    if (reason === undefined) return false
    this.counters.rejected++
    this.hooks.reject({ stream: connection.stream, reason })
    connection.end('rejected', jitter(this.options.overloadRetry))
    return true
  }

  private open(connection: Connection, deferHead: boolean): void {
    this.connections.add(connection)
    this.heartbeat.start()
    connection.open(this.options.retryHint, deferHead)
    this.hooks.connect({ stream: connection.stream })
  }

  /** Called by a connection when it ends. */
  private release(connection: Connection, reason: CloseReason): void {
    if (!this.connections.delete(connection)) return
    // Stryker disable next-line ConditionalExpression: fan-out holds subscribers only; removing an iterable stream (stream undefined) would find no state and do nothing
    if (connection instanceof Subscriber) this.fanOut.remove(connection.stream, connection)
    if (reason === 'slow') this.counters.slowClosed++
    if (this.connections.size === 0) this.heartbeat.stop()
    this.hooks.disconnect({ stream: connection.stream, reason })
  }

  /** Queues new events of a stream for its subscribers; they are written when the turn ends. */
  private deliver(stream: string, events: StoredEvent | readonly StoredEvent[]): void {
    // A terminal event delivered by a shared store may be a cancel from another instance.
    // Stryker disable next-line ConditionalExpression,LogicalOperator,EqualityOperator: observe() only looks the stream up among this hub's running producers; with none it finds nothing, and on a synchronous store the only terminal event it can see is its own producer's, which is finishing already (halt() does nothing then). The forms that never observe are killed by responses-across-hubs.test.ts
    if (this.registry.producing > 0 && !this.store.synchronous) {
      // Stryker disable next-line ArrayDeclaration: a single event comes only from this hub's own appends (publish, a producer's item or end), never a terminal event of a producer not already finishing; a store's delivery is always an array
      this.registry.observe(stream, Array.isArray(events) ? events : [events as StoredEvent])
    }
    this.fanOut.deliver(stream, events)
  }

  private prepare(stream: string, input: PublishInput): NewEvent {
    if (this.closed) {
      throw new RewindError('ERR_CLOSED', 'the hub is closed; create a new hub to publish again')
    }
    return this.preparer.prepare(stream, input)
  }

  private makeOwner(): Owner {
    const hub = this
    const { maxQueueBytes, gapEvent } = this.options
    const fanOut = this.fanOut
    const registry = this.registry
    return {
      store: this.store,
      counters: this.counters,
      maxQueueBytes,
      gapEvent,
      clock: new TurnClock(),
      get closed() {
        return hub.closed
      },
      release: (connection, reason) => this.release(connection, reason),
      decideGap: (stream, reason, lastEventId, override) =>
        this.hooks.decideGap(stream, reason, lastEventId, override),
      readHistory: (stream, after, limit) => fanOut.readHistory(stream, after, limit),
      reportError: (error, stream) => this.hooks.reportError(error, stream),
      serialize: (value) => this.preparer.serialize(value),
      follow: (stream, sink, options, start) => this.follow(stream, sink, options, start, undefined),
      followResponse: (id, stream, sink, after, start) => this.followResponse(id, stream, sink, after, start),
      iterate: (sink, iterable, start) => this.iterate(sink, iterable, start),
      plan: (id, resumeId) => registry.plan(id, resumeId),
    }
  }

  /** `follow` for a response's stream: the subscriber ends when the response does (see `Responses.follow`). */
  private followResponse(
    id: string,
    stream: string,
    sink: EventSink,
    after: string | null | undefined,
    start: StartStream,
  ): Subscription {
    const registry = this.registry
    const link: ResponseLink = { endEvent: this.options.endEvent, verify: () => registry.verify(id) }
    const subscription = this.follow(stream, sink, { lastEventId: after }, start, link)
    // Stryker disable next-line LogicalOperator: `||` also follows a Subscriber refused by a limit or a closed hub; it has ended, so its resolved `done` drops it a microtask later, and a check meeting it meanwhile would find it not waiting, its end() a no-op
    if (subscription instanceof Subscriber && !subscription.closed) {
      registry.follow(id, subscription, subscription.done)
    }
    return subscription
  }
}

/** Waits for `promise` (fulfilled or rejected), at most `ms` milliseconds: whether it settled in time. */
async function boundedWait(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<false>((resolve) => {
    timer = setTimeout(resolve, ms, false)
  })
  const settled = promise.then(
    () => true,
    // Stryker disable next-line ArrowFunction,BooleanLiteral: shutdown ignores what its first wait (the producers' end) returns, and its second waits on promises that never reject
    () => true,
  )
  const inTime = await Promise.race([settled, timeout])
  clearTimeout(timer)
  return inTime
}

function jitter(ms: number): number {
  // Up to one and a half times a delay that may itself be MAX_TIMER_DELAY: keep the hint a valid delay.
  return Math.min(MAX_TIMER_DELAY, Math.round(ms * (0.5 + Math.random())))
}
