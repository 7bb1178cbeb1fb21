/**
 * What a README fragment (a code block marked `<!-- snippet: fragment -->`) may use without
 * declaring it: the app the surrounding prose has set up, and the app's own functions the prose
 * names. Fragments are type-checked against these declarations (under `strict`) but not run.
 */
import type { SseMiddleware } from '@rewind/express'
import type { ssePlugin as SsePlugin } from '@rewind/fastify'
import type { Express as ExpressApp, RequestHandler } from 'express'
import type { FastifyInstance, FastifyRequest } from 'fastify'

declare global {
  /** The Express app of the README's first example. */
  const app: ExpressApp
  /** `sse()` of the Express README's first example. */
  const events: SseMiddleware
  /** The Fastify instance of the Fastify README's first example, with the plugin registered. */
  const fastify: FastifyInstance
  /** The plugin, as the Fastify README's first example imports it. */
  const ssePlugin: typeof SsePlugin
  /** The browser's `EventSource` of the client example. */
  const source: EventSource
  /** The app's authentication middleware: it sets `req.user`. */
  const requireUser: RequestHandler
  /** The app's authorisation middleware for a room. */
  const requireMember: RequestHandler
  /** The app's authorisation check for a Fastify request. */
  function isAllowed(request: FastifyRequest): Promise<boolean>
  /** The app's async generator of report rows. */
  function rowsOf(id: unknown): AsyncIterable<{ data: unknown }>
  /** The app's way to reload its state after a gap. */
  function refetchState(): void

  namespace Express {
    interface Request {
      /** Set by the app's authentication middleware. */
      user: { id: string }
    }
  }
}

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by the app's authentication hook. */
    user: { id: string }
  }
}
