/**
 * What a README fragment (a code block marked `<!-- snippet: fragment -->`) may use without
 * declaring it: the app the surrounding prose has set up, and the app's own functions the prose
 * names. Fragments are type-checked against these declarations (under `strict`) but not run.
 * Programs are checked against them too, and then run, which catches a program that leans on them.
 * Browser blocks have their own, in page.d.ts.
 */
import type { SseMiddleware } from '@rewind/express'
import type { ssePlugin as SsePlugin } from '@rewind/fastify'
import type ExpressModule from 'express'
import type { Express as ExpressApp, Request, RequestHandler } from 'express'
import type { FastifyInstance, FastifyRequest } from 'fastify'

declare global {
  /** `import express from 'express'` of the README's first example. */
  const express: typeof ExpressModule
  /** The Express app of the README's first example. */
  const app: ExpressApp
  /** `sse()` of the Express README's first example. */
  const events: SseMiddleware
  /** The Fastify instance of the Fastify README's first example, with the plugin registered. */
  const fastify: FastifyInstance
  /** The plugin, as the Fastify README's first example imports it. */
  const ssePlugin: typeof SsePlugin
  /** The app's authentication middleware: it sets `req.user`. */
  const requireUser: RequestHandler
  /** The app's authorisation middleware for a room. */
  const requireMember: RequestHandler
  /** The app's authorisation check for a Fastify request. */
  function isAllowed(request: FastifyRequest): Promise<boolean>
  /**
   * The app's check of the credentials (a bearer token or the sign-in cookie): the signed-in
   * user's id, or undefined (examples/recipes/private-streams.js has one, given its token check).
   */
  function userFrom(req: Request): string | undefined
  /** A finished job of the app, and the id of the page that asked for it. */
  const job: { id: number; client: string }
  /** The typed-payloads recipe's functions, as examples/recipes/typed-events.ts exports them. */
  const typedPublisher: typeof import('../../examples/recipes/typed-events.js').typedPublisher
  const on: typeof import('../../examples/recipes/typed-events.js').on
  const isShipped: typeof import('../../examples/recipes/typed-events.js').isShipped
  /** The page's `EventSource` in the typed-payloads recipe (the `eventsource` package's in Node). */
  const source: import('eventsource').EventSource
  /** The app's language model (an AI SDK provider's, e.g. `openai('gpt-5')`). */
  const model: import('ai').LanguageModel
  /** The app's async generator of report rows. */
  function rowsOf(id: unknown): AsyncIterable<{ data: unknown }>

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
