/**
 * Rewind for `Request -> Response` runtimes (Next.js route handlers, Hono, Bun, Deno): a thin layer
 * that answers a Fetch `Request` from a core hub. Everything an event stream does (replay, the gap
 * signal, answers and their end, heartbeats, limits, shutdown) happens in `@rewind/core`; this package
 * turns a request into the core's input and its answer into a `Response` whose body is a pull-driven
 * stream.
 */
import {
  type Hub,
  type HubOptions,
  type HubResponses,
  type PublishInput,
  RewindError,
  type ServeOptions,
  type StreamSource,
} from '@rewind/core'
import {
  type AsyncHistoryStore,
  eventStreamHeaders,
  hubFromOptions,
  readResumeId,
  ServedStreams,
  type SinkAnswer,
  type SyncHistoryStore,
  serveSink,
  timerDelay,
} from '@rewind/core/adapter'
import { BodySink } from './body-sink.js'

/**
 * Default heartbeat period of a hub this package creates: 4 s. A silent stream gets a comment within
 * two periods, under the 10 s Bun's `idleTimeout` allows a quiet response by default.
 */
export const DEFAULT_FETCH_HEARTBEAT_INTERVAL = 4_000

/** Default of {@link FetchSseOptions.maxDurationMargin}: 2 s. */
export const DEFAULT_MAX_DURATION_MARGIN = 2_000

/** The body waits for the runtime to read once this much is queued (a socket's usual high-water mark). */
const BODY_HIGH_WATER_MARK = 16 * 1024

/** The `retry:` hint sent when `maxDuration` ends a stream: come back at once. */
const DURATION_RETRY = 0

/** Options of {@link sse}: the hub's options (or a hub to share), and the runtime's limits. */
export interface FetchSseOptions extends HubOptions {
  /**
   * A hub to use instead of creating one (for example one shared with an Express or Fastify app).
   * Giving hub options with it throws (`ERR_INVALID_ARGUMENT`): give them to `createHub()`. On Bun,
   * give it a `heartbeatInterval` under 5 s (or raise Bun's `idleTimeout`). It stays the caller's to
   * close: `close()` ends only the streams these handlers served (see "Ownership" in
   * docs/architecture.md).
   * @defaultValue a new hub built from the other options, with a heartbeat every 4 s
   */
  hub?: Hub<string> | Hub<Promise<string>> | undefined
  /**
   * The longest a response may stream, in milliseconds: a platform's limit (Vercel Functions: 300 s).
   * The stream ends `maxDurationMargin` before it with a `retry: 0` hint, and the client comes back
   * at once with its `Last-Event-ID`: nothing is lost. A bare number is given in milliseconds.
   * @defaultValue none (streams last as long as the client stays)
   */
  maxDuration?: number | undefined
  /**
   * How long before `maxDuration` a stream ends, in milliseconds: room for the last bytes to leave.
   * @defaultValue 2000
   */
  maxDurationMargin?: number | undefined
}

/** Works out the source of a stream from the request, e.g. a stream per room from the URL. */
export type SourceResolver = (request: Request) => StreamSource
/** Works out the serve options from the request, e.g. a filter for the signed-in user. */
export type ServeOptionsResolver = (request: Request) => ServeOptions

/** A `Request -> Response` handler, the shape of a Next.js route handler, Bun's and Deno's `fetch`. */
export type FetchHandler = (request: Request) => Promise<Response>

/** What {@link sse} returns: handlers, publishing and shutdown, with the hub at hand. */
export interface FetchSse<Published extends string | Promise<string> = string> {
  /** The hub behind the handlers. */
  readonly hub: Hub<Published>
  /**
   * Responses (streams that end: a model's answer, a job's progress): `start`, `cancel`, `status`.
   * Serve one with `serve(request, { response: id })`.
   */
  readonly responses: HubResponses
  /**
   * Publishes an event to a stream (see `Hub.publish`).
   * @returns the event id (a promise of it with an asynchronous store such as `@rewind/redis`)
   */
  publish(stream: string, input: PublishInput): Published
  /**
   * Answers `request` with an event stream: a hub stream by name, replayed from the request's
   * `Last-Event-ID` header (else its `lastEventId` query parameter) and then live; a response by id
   * (`{ response: id }`: from its start or the client's position to its end; 204 once the client has
   * the end, 404 for an unknown id); or the items of an async iterable. The `Response` comes at once
   * (with an asynchronous store, once the client's position is fixed; for a response by id, once its
   * record is read). Rejects with a `RewindError` for a bad stream name or source.
   *
   * @example
   * ```ts
   * app.get('/events', (c) => events.serve(c.req.raw, 'news')) // Hono
   * ```
   */
  serve(request: Request, source: StreamSource, options?: ServeOptions): Promise<Response>
  /**
   * A handler that serves a stream: a Next.js route handler as is (`export const GET = ...`), or
   * Bun's and Deno's `fetch`.
   *
   * @example
   * ```ts
   * export const GET = events.handler('news') // app/events/route.ts
   * ```
   */
  handler(source: StreamSource | SourceResolver, options?: ServeOptions | ServeOptionsResolver): FetchHandler
  /**
   * Ends every open stream (each with a `retry:` hint around `retry` milliseconds, if given) and
   * stops the heartbeat; see `Hub.close`. The hub is closed only if `sse()` created it; with a given
   * `hub`, the streams these handlers served end and the hub stays open (`retry` is then refused:
   * give it to the hub's `close({ retry })`).
   */
  close(options?: { retry?: number }): Promise<void>
}

/**
 * Creates Rewind for a `Request -> Response` runtime.
 *
 * @example
 * ```ts
 * const events = sse({ maxDuration: 300_000 })
 * export const GET = events.handler('news')
 * events.publish('news', { data: { title: 'Hello' } })
 * ```
 */
export function sse(
  options?: FetchSseOptions & { store?: SyncHistoryStore | undefined; hub?: Hub<string> | undefined },
): FetchSse<string>
export function sse(
  options: FetchSseOptions & ({ store: AsyncHistoryStore } | { hub: Hub<Promise<string>> }),
): FetchSse<Promise<string>>
export function sse(options?: FetchSseOptions): FetchSse<string | Promise<string>>
export function sse(options: FetchSseOptions = {}): FetchSse<string | Promise<string>> {
  const { maxDuration, maxDurationMargin, ...hubOptions } = options
  const lifetime = durationLimit(maxDuration, maxDurationMargin)
  const hub = hubFromOptions(hubOptions, { heartbeatInterval: DEFAULT_FETCH_HEARTBEAT_INTERVAL })
  // A given hub is the caller's: close() then ends only the streams served here.
  const served = new ServedStreams(hub, options.hub !== undefined)

  async function serve(request: Request, source: StreamSource, serveOptions: ServeOptions = {}) {
    const headers = eventStreamHeaders()
    // Headers only: a HEAD request must not become a subscriber that never ends.
    if (request.method === 'HEAD') return new Response(null, { status: 200, headers })
    const sink = new BodySink(BODY_HIGH_WATER_MARK)
    const signal = request.signal as AbortSignal | undefined
    const answer = await serveSink(hub, sink, source, {
      lastEventId: readResumeId(headerRecord(request), request.url),
      filter: serveOptions.filter,
      gapPolicy: serveOptions.gapPolicy,
    })
    if (answer.status !== 200) return otherAnswer(answer)
    served.add(answer.subscription)
    // Where the runtime cancels the body when the client leaves, that is enough; where it only aborts
    // the request's signal (or only that fires first), this ends the stream too.
    if (signal !== undefined && !answer.subscription.closed) {
      if (signal.aborted) sink.gone()
      else {
        const onAbort = (): void => sink.gone()
        signal.addEventListener('abort', onAbort, { once: true })
        void answer.subscription.done.then(() => signal.removeEventListener('abort', onAbort))
      }
    }
    if (lifetime !== undefined && !answer.subscription.closed) {
      const timer = setTimeout(() => answer.finish(DURATION_RETRY), lifetime)
      unref(timer)
      void answer.subscription.done.then(() => clearTimeout(timer))
    }
    return new Response(sink.readable, { status: 200, headers })
  }

  function handler(
    source: StreamSource | SourceResolver,
    serveOptions?: ServeOptions | ServeOptionsResolver,
  ): FetchHandler {
    return async function rewindHandler(request: Request): Promise<Response> {
      const resolved = typeof source === 'function' ? source(request) : source
      return serve(
        request,
        resolved,
        typeof serveOptions === 'function' ? serveOptions(request) : serveOptions,
      )
    }
  }

  return {
    hub,
    responses: hub.responses,
    publish: (name: string, input: PublishInput) => hub.publish(name, input),
    serve,
    handler,
    close: (closeOptions = {}) => served.close(closeOptions.retry),
  }
}

/** 204 (the client has the end: an EventSource stops), 404 or 503 with their JSON. */
function otherAnswer(answer: Exclude<SinkAnswer, { status: 200 }>): Response {
  if (answer.status === 204)
    return new Response(null, { status: 204, headers: { 'cache-control': 'no-store' } })
  const headers: Record<string, string> = { 'content-type': 'application/json; charset=utf-8' }
  if (answer.status === 503) headers['retry-after'] = '1'
  else headers['cache-control'] = 'no-store'
  return new Response(answer.body, { status: answer.status, headers })
}

/** The one request header the core reads, in the shape of Node's headers. */
function headerRecord(request: Request): Record<string, string | undefined> {
  return { 'last-event-id': request.headers.get('last-event-id') ?? undefined }
}

/** Milliseconds a stream may run, from `maxDuration` and its margin; checked at once. */
function durationLimit(maxDuration: number | undefined, margin: number | undefined): number | undefined {
  if (maxDuration === undefined) {
    if (margin !== undefined) timerDelay('maxDurationMargin', margin)
    return undefined
  }
  timerDelay('maxDuration', maxDuration)
  const room = timerDelay('maxDurationMargin', margin ?? DEFAULT_MAX_DURATION_MARGIN)
  if (room >= maxDuration) {
    throw new RewindError(
      'ERR_INVALID_ARGUMENT',
      `maxDurationMargin (${room}) must be less than maxDuration (${maxDuration}): streams would end as they start; lower the margin`,
      { field: 'maxDurationMargin' },
    )
  }
  return maxDuration - room
}

/** A timer must not keep a process alive (Node's and Bun's timers have `unref`; Deno's are numbers). */
function unref(timer: unknown): void {
  ;(timer as { unref?: () => void }).unref?.()
}

export type { Hub, HubOptions, PublishInput, ServeOptions, StreamSource, Subscription } from '@rewind/core'
// The error this adapter throws and the core types its own signatures use: the same list in every
// adapter, pinned by test/adapter-exports.test.ts. Anything else, `createHub` included, comes from
// `@rewind/core`, the peer dependency the app installs anyway, so each name has one home.
export { RewindError } from '@rewind/core'
