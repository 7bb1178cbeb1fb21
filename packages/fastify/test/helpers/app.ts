import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { StreamItem } from '@rewind/core'
import Fastify, { type FastifyHttpOptions, type FastifyInstance } from 'fastify'
import { onTestFinished } from 'vitest'
import { type SsePluginOptions, ssePlugin } from '../../src/index.js'

/** Options of an HTTP/1.1 Fastify server. */
export type ServerOptions = FastifyHttpOptions<Server>

/** One line of Fastify's (pino's) JSON log. */
export interface LogRecord {
  level: number
  msg?: string
  reqId?: string
  [key: string]: unknown
}

/** pino's numeric levels, for readable assertions. */
export const LEVEL = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60 } as const

/** A pino destination that keeps every line, parsed, so a test can assert on what was logged. */
export function createLogCollector(): { stream: { write(line: string): void }; records: LogRecord[] } {
  const records: LogRecord[] = []
  return {
    records,
    stream: {
      write(line: string) {
        records.push(JSON.parse(line) as LogRecord)
      },
    },
  }
}

/**
 * A Fastify app that is closed when the test finishes (after the test's clients, which register
 * their cleanup later and so run first).
 *
 * `forceCloseConnections: true` unless a test chooses otherwise: when a streaming `fetch` is aborted,
 * undici opens a spare connection that never sends a request, and Node's `server.close()` waits for
 * such connections (here for undici's 4 s idle timeout). Fastify closes them after preClose, that is
 * after the hub has ended every stream. Shutdown tests pass Fastify's default to test the real path.
 */
export function createApp(options: ServerOptions = {}): FastifyInstance {
  const app = Fastify({ logger: false, forceCloseConnections: true, ...options })
  onTestFinished(() => app.close())
  return app
}

/** An app with the plugin registered, for the common case. */
export async function createSseApp(
  pluginOptions: SsePluginOptions = {},
  serverOptions: ServerOptions = {},
): Promise<FastifyInstance> {
  const app = createApp(serverOptions)
  // No heartbeat unless a test asks for one: it only adds comments to compare against.
  await app.register(ssePlugin, { heartbeatInterval: 0, ...pluginOptions })
  return app
}

/** Listens on an ephemeral port of the loopback interface; returns the base URL and the port. */
export async function listen(app: {
  listen(options: { port: number; host: string }): Promise<string>
  server: { address(): AddressInfo | string | null }
}): Promise<{ url: string; port: number }> {
  await app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = app.server.address() as AddressInfo
  return { url: `http://127.0.0.1:${port}`, port }
}

/**
 * The id `publish` returned. `fastify.sse` is typed for any store (`string | Promise<string>`); the
 * default in-memory store returns the id at once, which the tests rely on.
 */
export function idOf(published: string | Promise<string>): string {
  if (typeof published !== 'string')
    throw new TypeError('expected the in-memory store to return the id at once')
  return published
}

/** Serves `GET /broken`: an iterable that yields `partial`, then throws `upstream failed`. */
export function routeBroken(app: FastifyInstance): void {
  async function* broken(): AsyncGenerator<StreamItem> {
    yield 'partial'
    throw new Error('upstream failed')
  }
  app.get('/broken', (_request, reply) => reply.sse(broken()))
}

/** Serves `GET /events?user=<user>`: stream `orders`, filtered to the events of that user. */
export function routeOrdersByUser(app: FastifyInstance): void {
  app.get<{ Querystring: { user: string } }>('/events', (request, reply) =>
    reply.sse('orders', {
      filter: (event) => (event.value as { user: string }).user === request.query.user,
    }),
  )
}
