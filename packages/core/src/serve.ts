/**
 * Serving an event stream over HTTP (`node:http` and `node:http2`): checking the source, answering
 * HEAD, the response head, and serving a response (404, 204 or the stream). The hub lends it what
 * it needs through {@link ServeHost}.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2'
import type { Socket } from 'node:net'
import { RewindError } from './errors.js'
import { isAsyncIterable, type StreamItem } from './iterable.js'
import { readResumeId } from './last-event-id.js'
import { RESPONSE_STREAM_PREFIX, type ResponsePlan } from './responses.js'
import type {
  CloseReason,
  EventFilter,
  EventSink,
  GapPolicy,
  SubscribeOptions,
  Subscription,
} from './types.js'
import { assertStreamName } from './validation.js'
import { directTransport, eventStreamHeaders, type StartStream } from './wire-writer.js'

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

/** What serving needs from the hub. */
export interface ServeHost {
  /** Subscribes `sink` to a hub stream, sending `start`'s head when the stream starts. */
  follow(
    stream: string,
    sink: EventSink,
    options: SubscribeOptions,
    start: StartStream | undefined,
  ): Subscription
  /**
   * Subscribes `sink` to the stream of response `id` from `after`, sending `start`'s head when the
   * stream starts; the subscription ends when the response does, whatever path it takes there.
   */
  followResponse(
    id: string,
    stream: string,
    sink: EventSink,
    after: string | null | undefined,
    start: StartStream,
  ): Subscription
  /** Streams an async iterable to `sink`, sending `start`'s head when the stream starts. */
  iterate(sink: EventSink, iterable: AsyncIterable<StreamItem>, start: StartStream | undefined): Subscription
  /** How to answer a request for a response. */
  plan(id: string, resumeId: string | null | undefined): Promise<ResponsePlan>
  reportError(error: unknown, stream: string | undefined): void
}

/** `Hub.serve`: see there. */
export function serve(
  host: ServeHost,
  req: EventStreamRequest,
  res: EventStreamResponse,
  source: StreamSource,
  options: ServeOptions,
): Subscription {
  checkSource(source)
  if (res.headersSent) {
    throw new RewindError(
      'ERR_INVALID_ARGUMENT',
      'the response has already started; serve the event stream before writing anything to the response',
    )
  }
  const stream = typeof source === 'string' ? source : undefined
  if (res.destroyed) return closedSubscription(stream, 'client')
  if (req.method === 'HEAD') {
    // Headers only: a HEAD request must not become a subscriber that never ends, nor (for a
    // response) wait on its record.
    res.writeHead(200, eventStreamHeaders())
    res.end()
    return closedSubscription(stream, 'end')
  }
  if (isResponseSource(source)) return serveResponse(host, req, res, source.response)
  const head = httpHead(res)
  if (stream === undefined) return host.iterate(res, source as AsyncIterable<StreamItem>, head)
  return host.follow(
    stream,
    res,
    {
      lastEventId: readResumeId(req.headers, req.url),
      filter: options.filter,
      gapPolicy: options.gapPolicy,
    },
    head,
  )
}

/** The head of an event-stream response; later bytes may go to the socket (see `directTransport`). */
function httpHead(res: EventStreamResponse): StartStream {
  return (flush) => {
    res.writeHead(200, eventStreamHeaders())
    const transport = directTransport(res)
    if (transport === undefined) {
      // Http2ServerResponse has flushHeaders too, though its typings omit it.
      // Stryker disable next-line ConditionalExpression: the `true` form also flushes a head whose bytes follow in this tick, which res would send with them: the same bytes, in two writes
      if (flush) (res as ServerResponse).flushHeaders()
      return undefined
    }
    // The head goes out on its own, before the first bytes, which then go straight to the socket.
    // Unless it is sent at once, the socket is corked until the end of this tick, so both still
    // leave in one packet. Sent as one string, the head is flattened by the socket write; sent with
    // a chunk it would stay the tree of ~30 pieces Node built it from, which the response keeps for
    // as long as the stream lives (~0.7 KiB per connection).
    const socket = transport.out as Socket
    // Stryker disable next-line ConditionalExpression,LogicalOperator,BooleanLiteral,BlockStatement: corking only decides whether the head and the first bytes leave in one packet or two (or a flushed head at the end of this tick): the bytes and their order are the same
    if (!flush && !socket.writableCorked) {
      socket.cork()
      process.nextTick(uncork, socket)
    }
    ;(res as ServerResponse).flushHeaders()
    return transport
  }
}

function uncork(socket: Socket): void {
  socket.uncork()
}

/**
 * Serves a response: 404 for an unknown or expired id, 204 for a client whose position is the
 * terminal event (an EventSource then stops for good), else the event stream from the client's
 * position (or the start) to the terminal event, after which the body ends.
 */
function serveResponse(
  host: ServeHost,
  req: EventStreamRequest,
  res: EventStreamResponse,
  id: string,
): Subscription {
  const resumeId = readResumeId(req.headers, req.url)
  // The answer depends on the response's record, which a shared store holds: the subscription
  // exists at once and follows the stream once the record has been read.
  const pending = new PendingSubscription(() => {
    // Closed before the record arrived: the request ends now, as a stream's would.
    if (!res.headersSent && !res.destroyed) {
      res.writeHead(200, eventStreamHeaders())
      res.end()
    }
  })
  host.plan(id, resumeId).then(
    (plan) => {
      if (pending.closed) return pending.settle(closedSubscription(undefined, 'end'))
      if (res.destroyed) return pending.settle(closedSubscription(undefined, 'client'))
      if (plan.kind === 'unknown') {
        res.writeHead(404, {
          'content-type': 'application/json; charset=utf-8',
          'cache-control': 'no-store',
        })
        res.end(UNKNOWN_RESPONSE_BODY)
        return pending.settle(closedSubscription(undefined, 'end'))
      }
      if (plan.kind === 'ended') {
        res.writeHead(204, { 'cache-control': 'no-store' })
        res.end()
        return pending.settle(closedSubscription(undefined, 'end'))
      }
      pending.settle(host.followResponse(id, plan.stream, res, plan.after, httpHead(res)))
    },
    (error: unknown) => {
      host.reportError(error, undefined)
      // Stryker disable next-line LogicalOperator: a request closed early has its head sent unless it was destroyed (see onEarlyClose), so `!pending.closed || !res.headersSent` excludes the same requests
      if (!pending.closed && !res.headersSent && !res.destroyed) {
        res.writeHead(503, { 'content-type': 'application/json; charset=utf-8', 'retry-after': '1' })
        res.end(UNAVAILABLE_BODY)
      }
      pending.settle(closedSubscription(undefined, 'error'))
    },
  )
  return pending
}

/** The JSON body of a 404 for an unknown response id. */
export const UNKNOWN_RESPONSE_BODY = JSON.stringify({
  error: 'unknown response: it never existed, or it ended and expired',
})
/** The JSON body of a 503 when a response's record could not be read. */
export const UNAVAILABLE_BODY = JSON.stringify({ error: 'the store is unavailable; try again' })

/**
 * The subscription of a response whose record is being read: it stands for the real one, which it
 * follows once known (`close()` before then ends the request at once, with `onEarlyClose`).
 */
class PendingSubscription implements Subscription {
  readonly stream = undefined
  readonly done: Promise<CloseReason>
  private resolveDone!: (reason: CloseReason) => void
  private inner: Subscription | undefined
  private closedEarly = false

  constructor(private readonly onEarlyClose: () => void) {
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
    // Stryker disable next-line ConditionalExpression: a second early close finds the head sent or the response destroyed, so onEarlyClose writes nothing again
    else if (!this.closedEarly) {
      this.closedEarly = true
      this.onEarlyClose()
    }
  }
}

export function isResponseStream(stream: string): boolean {
  return typeof stream === 'string' && stream.startsWith(RESPONSE_STREAM_PREFIX)
}

export function reservedStream(stream: string): RewindError {
  return new RewindError(
    'ERR_INVALID_STREAM',
    `stream names starting with ${JSON.stringify(RESPONSE_STREAM_PREFIX)} belong to responses (got ${JSON.stringify(stream)}); serve a response with { response: id } and name your streams otherwise`,
    { field: 'stream' },
  )
}

export function isResponseSource(source: unknown): source is ResponseSource {
  return source !== null && typeof source === 'object' && 'response' in source
}

/**
 * Checks the source of `Hub.serve` and `serveSink` before anything is written, so both refuse the
 * same sources with the same errors: a stream name (not a response's), `{ response: id }` with a
 * string id, or an async iterable; else `ERR_INVALID_STREAM` or `ERR_INVALID_ARGUMENT`.
 */
export function checkSource(source: unknown): void {
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
}

/** A subscription that ended before it began (a client gone already, a HEAD request, a refusal). */
export function closedSubscription(stream: string | undefined, reason: CloseReason): Subscription {
  return { stream, closed: true, done: Promise.resolve(reason), close: () => {} }
}
