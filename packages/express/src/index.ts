/**
 * Express middleware for Rewind: a thin layer that hands Express's `req`/`res` to a core hub.
 * Everything an event stream does (headers, replay, heartbeats, limits, shutdown) happens in `@rewind/core`.
 */
import type { Server } from 'node:http'
import type {
  Hub,
  HubOptions,
  HubResponses,
  PublishInput,
  ServeOptions,
  StreamSource,
  Subscription,
} from '@rewind/core'
import {
  type AsyncHistoryStore,
  hubFromOptions,
  ServedStreams,
  type SyncHistoryStore,
} from '@rewind/core/adapter'
import type { NextFunction, Request, RequestHandler, Response } from 'express'

/** `res.sse(source, options?)`: answers the request with an event stream. */
export type SseResponder = (source: StreamSource, options?: ServeOptions) => Subscription

declare global {
  namespace Express {
    interface Response {
      /**
       * Answers with an event stream (added by `app.use(sse())`): a hub stream by name, replayed
       * from the client's `Last-Event-ID` header (else its `lastEventId` query parameter) and then
       * live; a response by id (`{ response: id }`: from its start or the client's position to its
       * end; 204 once the client has the end, 404 for an unknown id); or the items of an async iterable. Throws `RewindError` before anything is written for
       * a bad stream name or source; Express passes it to your error handler.
       *
       * @example
       * ```ts
       * app.get('/events', (req, res) => res.sse('news'))
       * app.get('/responses/:id', (req, res) => res.sse({ response: req.params.id }))
       * ```
       */
      sse: SseResponder
    }
  }
}

/** Options of {@link sse}: the hub's options, or an existing hub to share. */
export interface SseOptions extends HubOptions {
  /**
   * A hub to use instead of creating one, for example one hub shared by several apps or routers.
   * Giving hub options with it throws (`ERR_INVALID_ARGUMENT`): give them to `createHub()`. It stays
   * the caller's to close: `close()` ends only the streams this middleware served (see "Ownership"
   * in docs/architecture.md).
   * @defaultValue a new hub built from the other options
   */
  hub?: Hub<string> | Hub<Promise<string>>
}

/** Options of {@link SseMiddleware.close}. */
export interface SseCloseOptions {
  /** Tell each client to reconnect after a random delay around this many milliseconds. */
  retry?: number
  /** An HTTP server to close once the streams have ended; `close()` resolves when it has closed. */
  server?: Server
}

/** Works out the source of a stream from the request, e.g. a stream per room from a route parameter. */
export type SourceResolver = (req: Request) => StreamSource
/** Works out the serve options from the request, e.g. a filter for the signed-in user. */
export type ServeOptionsResolver = (req: Request) => ServeOptions

/** The middleware returned by {@link sse}, with the hub's publishing and shutdown at hand. */
export interface SseMiddleware<Published extends string | Promise<string> = string> extends RequestHandler {
  /** The hub behind the middleware. */
  readonly hub: Hub<Published>
  /**
   * Responses (streams that end: a model's answer, a job's progress): `start`, `cancel`, `status`.
   * Serve one with `res.sse({ response: id })`.
   */
  readonly responses: HubResponses
  /**
   * Publishes an event to a stream from anywhere in the app (see `Hub.publish`).
   * @returns the event id (a promise of it with an asynchronous store such as `@rewind/redis`)
   */
  publish(stream: string, input: PublishInput): Published
  /**
   * A route handler that serves a stream in one line; errors from the resolvers or from a bad
   * source go to `next(err)` before the stream starts.
   *
   * @example
   * ```ts
   * app.get('/events', events.handler('news'))
   * app.get('/rooms/:room/events', events.handler((req) => `room:${req.params.room}`))
   * ```
   */
  handler(
    source: StreamSource | SourceResolver,
    options?: ServeOptions | ServeOptionsResolver,
  ): RequestHandler
  /**
   * Ends every open stream (so the server can close), then closes `server` if given. The hub is
   * closed only if the middleware created it; with a given `hub`, the streams this middleware served
   * end and the hub stays open (`retry` is then refused: give it to the hub's `close({ retry })`).
   *
   * @example
   * ```ts
   * process.on('SIGTERM', () => events.close({ server }))
   * ```
   */
  close(options?: SseCloseOptions): Promise<void>
}

/**
 * Creates the Rewind middleware. `app.use(sse())` adds `res.sse()` to every response; the returned
 * function also publishes, builds one-line route handlers, and shuts the streams down.
 *
 * @example
 * ```ts
 * const events = sse()
 * app.use(events)
 * app.get('/events', (req, res) => res.sse('news'))
 * app.post('/news', express.json(), (req, res) => {
 *   res.status(201).json({ id: events.publish('news', { data: req.body }) })
 * })
 * ```
 */
export function sse(
  options?: SseOptions & { store?: SyncHistoryStore | undefined; hub?: Hub<string> | undefined },
): SseMiddleware<string>
export function sse(
  options: SseOptions & ({ store: AsyncHistoryStore } | { hub: Hub<Promise<string>> }),
): SseMiddleware<Promise<string>>
export function sse(options?: SseOptions): SseMiddleware<string | Promise<string>>
export function sse(options: SseOptions = {}): SseMiddleware<string | Promise<string>> {
  const hub = hubFromOptions(options)
  // A given hub is the caller's: close() then ends only the streams served here.
  const served = new ServedStreams(hub, options.hub !== undefined)
  const serve = (req: Request, res: Response, source: StreamSource, serveOptions?: ServeOptions) =>
    served.add(hub.serve(req, res, source, serveOptions))

  // One function for every response (Express sets `res.req`), rather than a closure per request
  // kept alive as long as the stream: event streams are long-lived and numerous.
  const responder: SseResponder = function sse(this: Response, source, serveOptions) {
    return serve(this.req, this, source, serveOptions)
  }

  const middleware = function rewindSse(_req: Request, res: Response, next: NextFunction): void {
    res.sse = responder
    next()
  }

  function handler(
    source: StreamSource | SourceResolver,
    serveOptions?: ServeOptions | ServeOptionsResolver,
  ) {
    return function rewindHandler(req: Request, res: Response, next: NextFunction): void {
      try {
        const resolved = typeof source === 'function' ? source(req) : source
        serve(req, res, resolved, typeof serveOptions === 'function' ? serveOptions(req) : serveOptions)
      } catch (error) {
        next(error)
      }
    }
  }

  async function close(closeOptions: SseCloseOptions = {}): Promise<void> {
    await served.close(closeOptions.retry)
    const server = closeOptions.server
    if (server === undefined || !server.listening) return
    await new Promise<void>((resolve, reject) => {
      server.close((error) => (error === undefined ? resolve() : reject(error)))
      // Keep-alive sockets that carried ordinary requests would otherwise hold the server open.
      server.closeIdleConnections()
    })
  }

  return Object.assign(middleware, {
    hub,
    responses: hub.responses,
    publish: (name: string, input: PublishInput) => hub.publish(name, input),
    handler,
    close,
  })
}

export type { Hub, HubOptions, PublishInput, ServeOptions, StreamSource, Subscription } from '@rewind/core'
// The error this adapter throws and the core types its own signatures use: the same list in every
// adapter, pinned by test/adapter-exports.test.ts. Anything else, `createHub` included, comes from
// `@rewind/core`, the peer dependency the app installs anyway, so each name has one home.
export { RewindError } from '@rewind/core'
