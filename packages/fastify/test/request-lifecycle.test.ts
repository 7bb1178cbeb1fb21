/**
 * Everything before the stream starts belongs to Fastify: hooks may refuse the request, and errors
 * thrown before `reply.sse` writes anything reach Fastify's error handler. Only responses that end
 * are tested with `inject` (an open event stream would never resolve it).
 */
import { request as httpRequest } from 'node:http'
import { describe, expect, it } from 'vitest'
import { waitUntil, within } from '../../../test/support/wait.js'
import { RewindError } from '../src/index.js'
import { createSseApp, listen } from './helpers/app.js'
import { deferred } from './helpers/clients.js'

describe('hooks run before the stream', () => {
  it('an onRequest hook answering 401 stops the stream before it starts', async () => {
    const app = await createSseApp()
    app.addHook('onRequest', async (request, reply) => {
      if (request.headers.authorization === undefined) {
        return reply.code(401).send({ error: 'unauthorized' })
      }
    })
    app.get('/events', (_request, reply) => reply.sse('news'))

    const response = await app.inject({ url: '/events' })

    expect(response.statusCode).toBe(401)
    expect(response.headers['content-type']).toMatch(/^application\/json/)
    expect(response.json()).toEqual({ error: 'unauthorized' })
    expect(app.sse.stats()).toMatchObject({ connections: 0, subscribers: 0, rejected: 0 })
  })

  it('a preHandler hook throwing a 403 error stops the stream before it starts', async () => {
    const app = await createSseApp()
    app.get(
      '/events',
      {
        preHandler: async () => {
          throw Object.assign(new Error('not a member of this room'), { statusCode: 403 })
        },
      },
      (_request, reply) => reply.sse('news'),
    )

    const response = await app.inject({ url: '/events' })

    expect(response.statusCode).toBe(403)
    expect(response.headers['content-type']).toMatch(/^application\/json/)
    expect(response.json()).toMatchObject({ statusCode: 403, message: 'not a member of this room' })
    expect(app.sse.stats()).toMatchObject({ connections: 0, subscribers: 0 })
  })
})

describe('errors before the stream starts go through the error handler', () => {
  async function appWithErrorHandler() {
    const app = await createSseApp()
    const seen: unknown[] = []
    app.setErrorHandler((error, _request, reply) => {
      seen.push(error)
      const code = error instanceof RewindError ? error.code : 'APP'
      return reply.code(400).send({ code })
    })
    return { app, seen }
  }

  it('an invalid stream name (empty, or longer than 256 characters) is a RewindError the handler sees', async () => {
    const { app, seen } = await appWithErrorHandler()
    app.get('/empty', (_request, reply) => reply.sse(''))
    // A query parameter: Fastify itself refuses path parameters longer than 100 characters.
    app.get<{ Querystring: { name: string } }>('/stream', (request, reply) => reply.sse(request.query.name))

    const empty = await app.inject({ url: '/empty' })
    const long = await app.inject({ url: `/stream?name=${'x'.repeat(257)}` })

    for (const response of [empty, long]) {
      expect(response.statusCode).toBe(400)
      expect(response.headers['content-type']).toMatch(/^application\/json/)
      expect(response.json()).toEqual({ code: 'ERR_INVALID_STREAM' })
    }
    expect(seen).toHaveLength(2)
    for (const error of seen) {
      expect(error).toBeInstanceOf(RewindError)
      expect(error).toMatchObject({ code: 'ERR_INVALID_STREAM', field: 'stream' })
    }
    expect(app.sse.stats().connections).toBe(0)
  })

  it('a source that is neither a name nor an async iterable is ERR_INVALID_ARGUMENT', async () => {
    const { app, seen } = await appWithErrorHandler()
    // The kind of mistake a JavaScript caller makes: passing an array instead of an async iterable.
    app.get('/events', (_request, reply) => reply.sse(['a', 'b'] as unknown as string))

    const response = await app.inject({ url: '/events' })

    expect(response.statusCode).toBe(400)
    expect(response.json()).toEqual({ code: 'ERR_INVALID_ARGUMENT' })
    expect(seen[0]).toMatchObject({ code: 'ERR_INVALID_ARGUMENT', field: 'source' })
  })

  it('a handler that throws before reply.sse reaches the error handler (sync and async)', async () => {
    const { app, seen } = await appWithErrorHandler()
    app.get('/sync', () => {
      throw new Error('no such feed')
    })
    const findFeed = async (): Promise<string> => {
      throw new Error('feed lookup failed')
    }
    app.get('/async', async (_request, reply) => reply.sse(await findFeed()))

    const sync = await app.inject({ url: '/sync' })
    const async = await app.inject({ url: '/async' })

    expect(sync.statusCode).toBe(400)
    expect(async.statusCode).toBe(400)
    expect(seen.map((error) => (error as Error).message)).toEqual(['no such feed', 'feed lookup failed'])
    expect(app.sse.stats().connections).toBe(0)
  })

  it('the error response carries no event-stream header, even when hooks had set reply headers', async () => {
    const { app } = await appWithErrorHandler()
    app.addHook('onRequest', async (_request, reply) => {
      reply.header('x-request-tag', 'abc')
    })
    app.get('/events', (_request, reply) => reply.sse(''))

    const response = await app.inject({ url: '/events' })

    expect(response.statusCode).toBe(400)
    expect(response.headers['content-type']).toMatch(/^application\/json/)
    expect(response.headers['cache-control']).toBeUndefined()
    expect(response.headers['x-accel-buffering']).toBeUndefined()
    expect(response.headers['x-request-tag']).toBe('abc')
  })
})

describe('a stream served after the hub has closed', () => {
  it('answers 200 with the event-stream headers, a retry hint and an ended body', async () => {
    const app = await createSseApp({ overloadRetry: 2000 })
    app.get('/events', (_request, reply) => reply.sse('news'))
    await app.sse.close()

    const response = await app.inject({ url: '/events' })

    expect(response.statusCode).toBe(200)
    expect(response.headers['content-type']).toBe('text/event-stream; charset=utf-8')
    expect(response.headers['cache-control']).toContain('no-cache')
    expect(response.headers['cache-control']).toContain('no-transform')
    expect(response.headers['x-accel-buffering']).toBe('no')
    expect(response.headers.connection).toBe('keep-alive')
    // The hub's own retry hint comes first; the jittered one (half to one and a half of overloadRetry) ends the body.
    const retries = [...response.body.matchAll(/^retry: (\d+)$/gm)].map((match) => Number(match[1]))
    expect(retries.at(-1)).toBeGreaterThanOrEqual(1000)
    expect(retries.at(-1)).toBeLessThanOrEqual(3000)
    expect(response.body).not.toMatch(/^data:/m)
    expect(app.sse.stats()).toMatchObject({ connections: 0, rejected: 1 })
  })
})

describe('HEAD requests', () => {
  it('Fastify answers HEAD on a stream route with the headers and an ended response, no subscriber', async () => {
    const app = await createSseApp()
    app.get('/events', (_request, reply) => reply.sse('news'))

    // exposeHeadRoutes (on by default) runs the GET handler; inject resolves only because it ends.
    const response = await app.inject({ method: 'HEAD', url: '/events' })

    expect(response.statusCode).toBe(200)
    expect(response.headers['content-type']).toBe('text/event-stream; charset=utf-8')
    expect(response.body).toBe('')
    expect(app.sse.stats()).toMatchObject({ connections: 0, subscribers: 0 })
  })
})

describe('a client that leaves before reply.sse is called', () => {
  // A subscriber on a response that has already closed would never hear its 'close' event: it would
  // stay registered, and hub.close() would wait the whole closeGrace for it.
  it('leaves no subscriber behind, and close() does not wait for it', async () => {
    const app = await createSseApp({ closeGrace: 10_000 })
    const handlerReached = deferred()
    const clientGone = deferred()
    const served = deferred()
    app.get('/events', async (request, reply) => {
      handlerReached.resolve()
      // A slow authorisation check, during which the client gives up.
      await clientGone.promise
      await waitUntil(() => request.raw.destroyed, 'the request to be destroyed')
      reply.sse('news')
      served.resolve()
      return reply
    })
    const { port } = await listen(app)

    const request = httpRequest({ port, host: '127.0.0.1', path: '/events', agent: false })
    request.on('error', () => {})
    request.end()
    await within(handlerReached.promise, 'the handler to start')
    request.destroy()
    clientGone.resolve()
    await within(served.promise, 'reply.sse to be called')

    expect(app.sse.stats()).toMatchObject({ connections: 0, subscribers: 0, streams: 0 })
    // With a leaked subscriber this would wait for the 10 s grace.
    await within(app.close(), 'fastify.close()', 2000)
  })
})
