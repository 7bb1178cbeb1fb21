/**
 * What finishes, in process with supertest: the headers of an event stream, and every way a request
 * is answered without a stream (auth, errors through `next(err)`, limits, a closed hub).
 */
import { HUB_DEFAULTS } from '@rewind/core'
import express, { type ErrorRequestHandler, type Express, type RequestHandler } from 'express'
import request from 'supertest'
import { describe, expect, it } from 'vitest'
import { listenForTest } from '../../../test/support/listen.js'
import { openStream } from '../../../test/support/raw-client.js'
import { RewindError, type SseMiddleware } from '../src/index.js'
import { useEvents, useEventsApp } from './helpers/events.js'

/** An error handler that records what reached it and answers with the status it chose. */
function errorHandler(seen: unknown[]): ErrorRequestHandler {
  return (error: unknown, _req, res, _next) => {
    seen.push(error)
    if (res.headersSent) {
      res.end(' [error handler]')
      return
    }
    if (error instanceof RewindError) {
      res.status(error.code === 'ERR_INVALID_STREAM' ? 404 : 500).json({ code: error.code })
      return
    }
    res.status(503).json({ message: error instanceof Error ? error.message : String(error) })
  }
}

function expectNoConnections(events: SseMiddleware): void {
  expect(events.hub.stats()).toMatchObject({ connections: 0, subscribers: 0, streams: 0 })
}

/**
 * An app with the routes `route` adds and then `errorHandler`: what GET `path` answers and what
 * reached the handler, once the request left no connection behind.
 */
async function throughErrorHandler(
  route: (app: Express, events: SseMiddleware<string>) => void,
  path = '/events',
): Promise<{ res: request.Response; seen: unknown[] }> {
  const seen: unknown[] = []
  const { events, app } = useEventsApp()
  route(app, events)
  app.use(errorHandler(seen))
  const res = await request(app).get(path)
  expectNoConnections(events)
  return { res, seen }
}

function expectEventStreamHeaders(headers: Record<string, string | string[] | undefined>): void {
  expect(headers['content-type']).toBe('text/event-stream; charset=utf-8')
  const cacheControl = String(headers['cache-control'])
  expect(cacheControl).toMatch(/\bno-cache\b|\bno-store\b/)
  expect(cacheControl).toMatch(/\bno-transform\b/)
  expect(headers['x-accel-buffering']).toBe('no')
  // The clients of these tests open a connection per request and ask to close it: the response must
  // agree (RFC 9112 section 9.6) rather than promise keep-alive.
  expect(headers).toHaveProperty('connection', 'close')
}

describe('event-stream headers', () => {
  it('are sent by a route whose async iterable finishes, followed by its items', async () => {
    const { events, app } = useEventsApp()
    app.get('/count', (_req, res) => {
      res.sse(
        (async function* () {
          yield 'one'
          yield { event: 'last', data: { n: 2 } }
        })(),
      )
    })
    const res = await request(app).get('/count')
    expect(res.status).toBe(200)
    expectEventStreamHeaders(res.headers)
    expect(res.text).toBe(`retry: ${HUB_DEFAULTS.retry}\n\ndata: one\n\nevent: last\ndata: {"n":2}\n\n`)
    expectNoConnections(events)
  })

  it('are sent by a hub stream whose hub was closed, with a retry hint and an ended body', async () => {
    const rejected: unknown[] = []
    const { events, app } = useEventsApp({ onReject: (info) => rejected.push(info) })
    app.get('/events', events.handler('news'))
    await events.close()
    const res = await request(app).get('/events')
    expect(res.status).toBe(200)
    expectEventStreamHeaders(res.headers)
    expect(res.text).toMatch(/^retry: \d+\n\n$/)
    expect(rejected).toEqual([{ stream: 'news', reason: 'closed' }])
  })

  it('are sent on a live stream as soon as it opens, and headers set before are kept', async () => {
    const { events, app } = useEventsApp()
    app.get('/events', (_req, res) => {
      res.setHeader('x-request-id', 'abc')
      res.sse('news')
    })
    const { url } = await listenForTest(app)
    // Nothing is published: the head can only arrive because it was flushed at once.
    const stream = await openStream(`${url}/events`)
    expect(stream.status).toBe(200)
    expectEventStreamHeaders(stream.headers)
    expect(stream.headers['x-request-id']).toBe('abc')
    expect(events.hub.stats().subscribers).toBe(1)
  })

  it('answer a HEAD request with the headers only, and no subscriber stays behind', async () => {
    const { events, app } = useEventsApp()
    app.get('/events', events.handler('news'))
    const res = await request(app).head('/events')
    expect(res.status).toBe(200)
    expectEventStreamHeaders(res.headers)
    expectNoConnections(events)
  })

  it('turn away a client past a connection limit with 200, a retry hint and an ended body', async () => {
    const rejected: unknown[] = []
    const { events, app } = useEventsApp({ maxConnections: 1, onReject: (info) => rejected.push(info) })
    app.get('/events', events.handler('news'))
    const { url } = await listenForTest(app)
    await openStream(`${url}/events`)
    const res = await request(app).get('/events')
    expect(res.status).toBe(200)
    expectEventStreamHeaders(res.headers)
    const [, retry] = /^retry: (\d+)\n\n$/.exec(res.text) ?? []
    // The hint is jittered between half and one and a half times `overloadRetry` (10 s by default).
    expect(Number(retry)).toBeGreaterThanOrEqual(5000)
    expect(Number(retry)).toBeLessThanOrEqual(15000)
    expect(rejected).toEqual([{ stream: 'news', reason: 'limit' }])
    expect(events.hub.stats().connections).toBe(1)
  })
})

describe('events.handler without app.use(events)', () => {
  it('serves the stream: the handler needs only the hub, not res.sse', async () => {
    const events = useEvents()
    const app = express()
    app.get(
      '/count',
      events.handler(async function* () {
        yield 'only'
      }),
    )
    const res = await request(app).get('/count')
    expect(res.status).toBe(200)
    expect(res.text).toBe(`retry: ${HUB_DEFAULTS.retry}\n\ndata: only\n\n`)
  })
})

describe('auth middleware before the stream', () => {
  const requireUser: RequestHandler = (req, res, next) => {
    const authorization = req.get('authorization')
    if (authorization === undefined) {
      res.status(401).json({ error: 'sign in first' })
      return
    }
    if (authorization !== 'Bearer alice') {
      res.status(403).json({ error: 'not allowed' })
      return
    }
    next()
  }

  it.each([
    ['no credentials', {}, 401, { error: 'sign in first' }],
    ['the wrong user', { authorization: 'Bearer mallory' }, 403, { error: 'not allowed' }],
  ])('answers %s with its own status and starts no stream', async (_name, headers, status, body) => {
    const connects: unknown[] = []
    const { events, app } = useEventsApp({ onConnect: (info) => connects.push(info) })
    app.get('/events', requireUser, events.handler('news'))
    const res = await request(app).get('/events').set(headers)
    expect(res.status).toBe(status)
    expect(res.body).toEqual(body)
    expect(res.headers['content-type']).toMatch(/^application\/json/)
    expect(connects).toEqual([])
    expectNoConnections(events)
  })
})

describe('errors before the stream starts go to next(err)', () => {
  it('an error thrown by a source resolver reaches the error handler', async () => {
    const { res, seen } = await throughErrorHandler((app, events) => {
      app.get(
        '/events',
        events.handler(() => {
          throw new Error('no stream for you')
        }),
      )
    })
    expect(res.status).toBe(503)
    expect(res.body).toEqual({ message: 'no stream for you' })
    expect(seen).toHaveLength(1)
  })

  it('an error thrown by an options resolver reaches the error handler', async () => {
    const { res, seen } = await throughErrorHandler((app, events) => {
      app.get(
        '/events',
        events.handler('news', () => {
          throw new Error('no user')
        }),
      )
    })
    expect(res.status).toBe(503)
    expect(res.body).toEqual({ message: 'no user' })
    expect(seen).toHaveLength(1)
  })

  it.each([
    ['an empty stream name', '/empty'],
    ['a stream name longer than 256 characters', `/rooms/${'r'.repeat(300)}`],
  ])('%s is ERR_INVALID_STREAM, answered by the error handler', async (_name, path) => {
    const { res, seen } = await throughErrorHandler((app, events) => {
      app.get(
        '/empty',
        events.handler(() => ''),
      )
      app.get(
        '/rooms/:room',
        events.handler(({ params: { room } }) => `${room}`),
      )
    }, path)
    expect(res.status).toBe(404)
    expect(res.body).toEqual({ code: 'ERR_INVALID_STREAM' })
    expect(seen[0]).toBeInstanceOf(RewindError)
  })

  it('a source that is neither a name nor an async iterable is ERR_INVALID_ARGUMENT', async () => {
    const { res, seen } = await throughErrorHandler((app, events) => {
      // A resolver that returns a promise (an async function) is a common slip.
      app.get('/events', events.handler((async () => 'news') as never))
    })
    expect(res.status).toBe(500)
    expect(res.body).toEqual({ code: 'ERR_INVALID_ARGUMENT' })
    expect(seen).toHaveLength(1)
  })

  it('res.sse with a bad stream name throws, and Express hands the error to the handler', async () => {
    const seen: unknown[] = []
    const { events, app } = useEventsApp()
    app.get('/sync', (_req, res) => {
      res.sse('')
    })
    // Express 5 also forwards a rejected promise from an async handler.
    app.get('/async', async (_req, res) => {
      await Promise.resolve()
      res.sse('')
    })
    app.use(errorHandler(seen))
    for (const path of ['/sync', '/async']) {
      const res = await request(app).get(path)
      expect(res.status).toBe(404)
      expect(res.body).toEqual({ code: 'ERR_INVALID_STREAM' })
    }
    expect(seen).toHaveLength(2)
    expectNoConnections(events)
  })

  it('res.sse on a response that already sent its headers throws before writing anything', async () => {
    const { res, seen } = await throughErrorHandler((app) => {
      app.get('/late', (_req, res) => {
        res.type('text/plain')
        res.write('already started')
        res.sse('news')
      })
    }, '/late')
    expect(res.status).toBe(200)
    expect(res.headers['content-type']).toMatch(/^text\/plain/)
    expect(res.text).toBe('already started [error handler]')
    expect(seen).toHaveLength(1)
    expect(seen[0]).toBeInstanceOf(RewindError)
    expect((seen[0] as RewindError).code).toBe('ERR_INVALID_ARGUMENT')
  })
})
