/**
 * Fastify plugin for Rewind: a thin layer that hands Fastify's raw request and response to a core hub.
 * Everything an event stream does (headers, replay, heartbeats, limits, shutdown) happens in `@rewind/core`.
 */
import {
  type ConnectionInfo,
  type Hub,
  type HubOptions,
  RewindError,
  type ServeOptions,
  type StreamSource,
  throttleErrors,
} from '@rewind/core'
import { hubFromOptions, ServedStreams, timerDelay } from '@rewind/core/adapter'
import type { FastifyPluginAsync, FastifyReply } from 'fastify'
import fp from 'fastify-plugin'

declare module 'fastify' {
  interface FastifyInstance {
    /**
     * The Rewind hub: `await fastify.sse.publish(stream, { data, event? })` from any route,
     * `fastify.sse.responses.start(producer)` for a streamed answer, `fastify.sse.stats()` for metrics. `publish` returns the id, or a promise of it with an
     * asynchronous store such as `@rewind/redis`: `await` covers both.
     */
    sse: Hub<string | Promise<string>>
  }
  interface FastifyReply {
    /**
     * Answers with an event stream: a hub stream by name, replayed from the client's
     * `Last-Event-ID` header (else its `lastEventId` query parameter) and then live; a response by
     * id (`{ response: id }`: from its start or the client's position to its end; 204 once the client
     * has the end, 404 for an unknown id); or the items of an async iterable. The reply is hijacked: Fastify sends nothing else. Throws `RewindError`
     * before anything is written for a bad stream name or source, so Fastify's error handler answers.
     * Returns the reply, so `return reply.sse('news')` works in async handlers.
     *
     * @example
     * ```ts
     * fastify.get('/events', (request, reply) => reply.sse('news'))
     * ```
     */
    sse(source: StreamSource, options?: ServeOptions): FastifyReply
  }
}

/** Options of {@link ssePlugin}: the hub's options, or an existing hub to share. */
export interface SsePluginOptions extends HubOptions {
  /**
   * A hub to use instead of creating one. Giving hub options or `closeRetry` with it throws
   * (`ERR_INVALID_ARGUMENT`): give them to `createHub()` and the hub's `close({ retry })`. It stays
   * the caller's to close: `fastify.close()` ends only the streams this plugin served (see
   * "Ownership" in docs/architecture.md).
   * @defaultValue a new hub built from the other options
   */
  hub?: Hub<string> | Hub<Promise<string>>
  /**
   * Retry hint for clients when `fastify.close()` ends their streams: each waits a random delay
   * between half and one and a half times this many milliseconds before reconnecting. An integer from
   * 0 to `MAX_TIMER_DELAY`; anything else rejects `register()` with `ERR_INVALID_ARGUMENT`.
   * @defaultValue none (clients use their current retry delay)
   */
  closeRetry?: number
}

// Async, so invalid options (createHub throws) or a second registration reject `register()` and
// `ready()`; a callback plugin that throws synchronously escapes avvio as an uncaught exception.
const plugin: FastifyPluginAsync<SsePluginOptions> = async (fastify, options) => {
  const { hub: given, closeRetry, ...hubOptions } = options
  // Checked now with core's check (the bound of the hub's own `close({ retry })`): a bad value would
  // otherwise surface only inside preClose, making fastify.close() reject with the streams still open.
  if (closeRetry !== undefined) timerDelay('closeRetry', closeRetry)
  // The hint goes out when a hub closes, and a given hub is not the plugin's to close.
  if (closeRetry !== undefined && given !== undefined) {
    throw new RewindError(
      'ERR_INVALID_ARGUMENT',
      'closeRetry applies to a hub the plugin creates; a given hub is yours to close: pass retry to hub.close({ retry })',
      { field: 'closeRetry' },
    )
  }
  const hub = hubFromOptions(
    { hub: given, ...hubOptions },
    // Fastify's logger, each kind of failure at most once a minute: an outage of the store hits
    // every client alike.
    {
      onError: throttleErrors((error, suppressed, info: ConnectionInfo) =>
        fastify.log.error({ err: error, suppressed, ...info }, 'event stream failed'),
      ),
    },
  )

  // A given hub is the caller's: preClose then ends only the streams served here.
  const served = new ServedStreams(hub, given !== undefined)

  fastify.decorate('sse', hub)
  fastify.decorateReply(
    'sse',
    function sse(this: FastifyReply, source: StreamSource, serveOptions?: ServeOptions) {
      // Headers set through Fastify (by @fastify/cors, hooks or the route) live on the reply until it
      // is sent; a hijacked reply never sends them, so they move to the raw response first.
      const raw = this.raw
      if (!raw.headersSent) {
        for (const [name, value] of Object.entries(this.getHeaders())) {
          if (value !== undefined) raw.setHeader(name, value)
        }
      }
      const subscription = served.add(hub.serve(this.request.raw, raw, source, serveOptions))
      this.hijack()
      const log = this.request.log
      // Only where debug lines are written (pino says so): waiting on `done` holds a promise and a
      // callback for the life of every stream, which a server without that log level pays for nothing.
      if ((log as { isLevelEnabled?: (level: string) => boolean }).isLevelEnabled?.('debug') === true) {
        log.debug({ stream: subscription.stream }, 'event stream opened')
        void subscription.done.then((reason) =>
          log.debug({ stream: subscription.stream, reason }, 'event stream closed'),
        )
      }
      return this
    },
  )

  // preClose runs before the server stops accepting and waits for in-flight requests; open event
  // streams never finish on their own, so they must end here for fastify.close() to resolve.
  fastify.addHook('preClose', () => served.close(closeRetry))
}

/**
 * The Rewind plugin: decorates `fastify.sse` (the hub) and `reply.sse(source, options?)`, and ends
 * every stream when Fastify closes.
 *
 * @example
 * ```ts
 * await fastify.register(ssePlugin, { history: { maxEvents: 500 } })
 * fastify.get('/events', (request, reply) => reply.sse('news'))
 * fastify.post('/news', async (request) => ({ id: fastify.sse.publish('news', { data: request.body }) }))
 * ```
 */
export const ssePlugin = fp(plugin, { fastify: '5.x', name: '@rewind/fastify' })
export default ssePlugin

export type { Hub, HubOptions, PublishInput, ServeOptions, StreamSource, Subscription } from '@rewind/core'
// The error this adapter throws and the core types its own signatures use: the same list in every
// adapter, pinned by test/adapter-exports.test.ts. Anything else, `createHub` included, comes from
// `@rewind/core`, the peer dependency the app installs anyway, so each name has one home.
export { RewindError } from '@rewind/core'
