/**
 * HTTP/2 (cleartext h2c) with `node:http2` as the client: the same streams, without the headers that
 * HTTP/2 forbids, and a shutdown that does not wait for the session's idle timeout.
 */
import Fastify from 'fastify'
import { describe, expect, it, onTestFinished } from 'vitest'
import { connectH2, Http2Stream } from '../../../test/support/h2-client.js'
import { waitUntil, within } from '../../../test/support/wait.js'
import { type SsePluginOptions, ssePlugin } from '../src/index.js'
import { createLogCollector, idOf, LEVEL, listen } from './helpers/app.js'

async function createHttp2App(options: SsePluginOptions = {}, logger: false | object = false) {
  const app = Fastify({ http2: true, logger })
  onTestFinished(() => app.close())
  await app.register(ssePlugin, { heartbeatInterval: 0, ...options })
  app.get('/events', (_request, reply) => reply.sse('news'))
  const { url } = await listen(app)
  return { app, session: connectH2(url) }
}

describe('over HTTP/2', () => {
  it('answers 200 with the event-stream headers and no connection-specific header', async () => {
    const { session } = await createHttp2App()

    const headers = await new Http2Stream(session, '/events').response

    expect(headers[':status']).toBe(200)
    expect(headers['content-type']).toBe('text/event-stream; charset=utf-8')
    expect(headers['cache-control']).toContain('no-transform')
    for (const name of ['connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'proxy-connection']) {
      expect(headers[name], name).toBeUndefined()
    }
  })

  it('delivers events in order', async () => {
    const { app, session } = await createHttp2App()
    const stream = new Http2Stream(session, '/events')
    await stream.response
    await waitUntil(() => app.sse.stats().subscribers === 1, 'the subscriber')

    const ids = Array.from({ length: 20 }, (_, n) => app.sse.publish('news', { data: `event ${n}` }))
    await stream.waitForEvents(20)

    expect(stream.events.map((event) => event.id)).toEqual(ids)
    expect(stream.messages()).toEqual(ids.map((_, n) => `event ${n}`))
  })

  it('resumes from the last-event-id header', async () => {
    const { app, session } = await createHttp2App()
    const ids = ['a', 'b', 'c', 'd'].map((data) => idOf(app.sse.publish('news', { data })))

    const stream = new Http2Stream(session, '/events', { 'last-event-id': ids[1]! })
    await stream.waitForEvents(2)
    const live = app.sse.publish('news', { data: 'e' })
    await stream.waitForEvents(3)

    expect(stream.events.map((event) => [event.id, event.data])).toEqual([
      [ids[2], 'c'],
      [ids[3], 'd'],
      [live, 'e'],
    ])
  })

  it('fastify.close() completes promptly with open streams, and the client sees them end', async () => {
    const { app, session } = await createHttp2App()
    const streams = [new Http2Stream(session, '/events'), new Http2Stream(session, '/events')]
    await Promise.all(streams.map((stream) => stream.response))
    await waitUntil(() => app.sse.stats().subscribers === 2, 'two subscribers')
    const sessionClosed = new Promise<void>((resolve) => session.once('close', resolve))

    await within(app.close(), 'fastify.close() with open HTTP/2 streams', 2000)

    for (const stream of streams) await within(stream.ended, 'the HTTP/2 stream to end', 2000)
    // The session is closed too (by Fastify's closeHttp2Sessions and by the hub's own session.close()),
    // rather than idling until http2SessionTimeout.
    await within(sessionClosed, 'the HTTP/2 session to close', 2000)
  })

  it('logs no warning or error through open, events, client cancel, session loss and close', async () => {
    const logs = createLogCollector()
    const { app, session } = await createHttp2App({}, { level: 'warn', stream: logs.stream })
    const cancelled = new Http2Stream(session, '/events')
    const kept = new Http2Stream(session, '/events')
    await waitUntil(() => app.sse.stats().subscribers === 2, 'two subscribers')
    app.sse.publish('news', { data: 'x' })
    await cancelled.waitForEvents(1)
    await kept.waitForEvents(1)

    cancelled.close()
    await waitUntil(() => app.sse.stats().subscribers === 1, 'the cancelled stream to be released')
    session.destroy()
    await waitUntil(() => app.sse.stats().subscribers === 0, 'the lost session to be released')
    await within(app.close(), 'fastify.close()')

    expect(logs.records.filter((record) => record.level >= LEVEL.warn)).toEqual([])
  })
})
