/**
 * `fastify.close()` must finish while event streams are open: the plugin's preClose hook closes the
 * hub, which ends every stream and closes its connection, so the server can stop.
 */
import { get } from 'node:http'
import { describe, expect, it } from 'vitest'
import { waitUntil, within } from '../../../test/support/wait.js'
import { ssePlugin } from '../src/index.js'
import { createApp, createSseApp, listen } from './helpers/app.js'
import { deferred, EventSourceClient, FetchStream } from './helpers/clients.js'

/** Generous for a shared machine, yet far below the keep-alive and grace timeouts a hang would hit. */
const PROMPT_MS = 2000
/** Fastify's default: only idle keep-alive connections are closed for us; the rest is up to the hub. */
const DEFAULT_CLOSE = { forceCloseConnections: 'idle' } as const

describe('fastify.close() with open streams', () => {
  it('resolves promptly, and every client sees its stream end after the last event', async () => {
    const app = await createSseApp({ retry: 60_000 }, DEFAULT_CLOSE)
    app.get('/events', (_request, reply) => reply.sse('news'))
    const { url } = await listen(app)
    const streams = [await FetchStream.open(`${url}/events`), await FetchStream.open(`${url}/events`)]
    const source = new EventSourceClient(`${url}/events`)
    await source.waitForOpen()
    await waitUntil(() => app.sse.stats().subscribers === 3, 'three subscribers')

    // Published in the same turn as close(): it must still be sent before the streams end.
    const last = app.sse.publish('news', { data: 'last' })
    await within(app.close(), 'fastify.close() with three open streams', PROMPT_MS)

    for (const stream of streams) {
      await within(stream.ended, 'the fetch client to see the end', PROMPT_MS)
      expect(stream.events).toEqual([{ id: last, event: undefined, data: 'last' }])
    }
    await source.waitForEvents(1)
    // The EventSource saw the end and is waiting to reconnect (after the 60 s retry it was given).
    await waitUntil(
      () => source.source.readyState === source.source.CONNECTING,
      'the EventSource to reconnect',
    )
    expect(app.sse.closed).toBe(true)
  })

  it('with closeRetry, each client is told to wait a jittered delay before reconnecting', async () => {
    const app = await createSseApp({ closeRetry: 4000 }, DEFAULT_CLOSE)
    app.get('/events', (_request, reply) => reply.sse('news'))
    const { url } = await listen(app)
    const stream = await FetchStream.open(`${url}/events`)
    await waitUntil(() => app.sse.stats().subscribers === 1, 'the subscriber')

    await within(app.close(), 'fastify.close()', PROMPT_MS)
    await within(stream.ended, 'the stream to end', PROMPT_MS)

    // The first hint is the hub's retry option (3000 by default); the last one is the shutdown's.
    expect(stream.retries[0]).toBe(3000)
    expect(stream.retries).toHaveLength(2)
    expect(stream.retries[1]).toBeGreaterThanOrEqual(2000)
    expect(stream.retries[1]).toBeLessThanOrEqual(6000)
  })

  it('leaves no server, socket or timer behind', async () => {
    const counts = () => {
      const resources = process.getActiveResourcesInfo()
      const count = (type: string) => resources.filter((resource) => resource === type).length
      return { servers: count('TCPServerWrap'), sockets: count('TCPSocketWrap'), timers: count('Timeout') }
    }
    const before = counts()
    // A real heartbeat, so its timer exists while the streams are open.
    const app = createApp(DEFAULT_CLOSE)
    await app.register(ssePlugin, { heartbeatInterval: 1000 })
    app.get('/events', (_request, reply) => reply.sse('news'))
    const { port } = await listen(app)
    // Plain node:http clients without an agent: no pooled socket outlives its response.
    const ended = Array.from(
      { length: 3 },
      () =>
        new Promise<void>((resolve, reject) => {
          get({ port, host: '127.0.0.1', path: '/events', agent: false }, (response) => {
            response.resume()
            response.on('close', resolve)
          }).on('error', reject)
        }),
    )
    await waitUntil(() => app.sse.stats().subscribers === 3, 'three subscribers')
    app.sse.publish('news', { data: 'x' })
    expect(counts().servers).toBe(before.servers + 1)

    await within(app.close(), 'fastify.close()', PROMPT_MS)
    await within(Promise.all(ended), 'the clients to see the end', PROMPT_MS)

    await waitUntil(
      () => {
        const now = counts()
        return now.servers === before.servers && now.sockets <= before.sockets && now.timers <= before.timers
      },
      () => `resources back to ${JSON.stringify(before)}, got ${JSON.stringify(counts())}`,
      PROMPT_MS,
    )
  })
})

describe('clients arriving while fastify.close() runs', () => {
  /** An app whose close() stops in a later preClose hook until `proceed` resolves. */
  async function closingApp(options: { return503OnClosing?: boolean } = {}) {
    const app = await createSseApp({ overloadRetry: 8000 }, { ...DEFAULT_CLOSE, ...options })
    app.get('/events', (_request, reply) => reply.sse('news'))
    const closing = deferred()
    const proceed = deferred()
    // Registered after the plugin, so it runs once the hub is closed.
    app.addHook('preClose', async () => {
      closing.resolve()
      await proceed.promise
    })
    const { url } = await listen(app)
    const closed = app.close()
    await within(closing.promise, 'the preClose hooks to start')
    return { app, url, proceed, closed }
  }

  it('with return503OnClosing: false, get 200, a retry hint and an ended body', async () => {
    const { app, url, proceed, closed } = await closingApp({ return503OnClosing: false })

    const stream = await FetchStream.open(`${url}/events`)
    await within(stream.ended, 'the refused stream to end', PROMPT_MS)
    proceed.resolve()
    await within(closed, 'fastify.close()', PROMPT_MS)

    expect(stream.response.status).toBe(200)
    expect(stream.response.headers.get('content-type')).toBe('text/event-stream; charset=utf-8')
    // The overload hint (half to one and a half of overloadRetry) comes last and wins.
    expect(stream.retries.at(-1)).toBeGreaterThanOrEqual(4000)
    expect(stream.retries.at(-1)).toBeLessThanOrEqual(12_000)
    expect(app.sse.stats()).toMatchObject({ rejected: 1, connections: 0 })
  })

  it("by default get Fastify's 503, which makes an EventSource give up (documented caveat)", async () => {
    const { app, url, proceed, closed } = await closingApp()

    const response = await fetch(`${url}/events`)
    await response.arrayBuffer()
    proceed.resolve()
    await within(closed, 'fastify.close()', PROMPT_MS)

    expect(response.status).toBe(503)
    expect(app.sse.stats().rejected).toBe(0)
  })
})
