/**
 * A hijacked reply must not make Fastify complain (no "reply already sent", no "request errored"),
 * and the plugin logs per stream at debug level, never per event.
 */
import type { Socket } from 'node:net'
import { describe, expect, it } from 'vitest'
import { waitUntil, within } from '../../../test/support/wait.js'
import { createLogCollector, createSseApp, LEVEL, listen, routeBroken } from './helpers/app.js'
import { EventSourceClient, FetchStream } from './helpers/clients.js'

describe('a normal stream lifecycle logs no warning and no error', () => {
  it('open, events, a client that leaves, a server-side drop, then close', async () => {
    const logs = createLogCollector()
    const app = await createSseApp({ retry: 50 }, { logger: { level: 'warn', stream: logs.stream } })
    const sockets: Socket[] = []
    app.addHook('onRequest', async (request) => {
      sockets.push(request.raw.socket)
    })
    app.get('/sync', (_request, reply) => reply.sse('news'))
    app.get('/async', async (_request, reply) => reply.sse('news'))
    app.get('/returned-promise', (_request, reply) => Promise.resolve(reply.sse('news')))
    const { url } = await listen(app)

    const streams = await Promise.all(
      ['/sync', '/async', '/returned-promise'].map((path) => FetchStream.open(`${url}${path}`)),
    )
    const source = new EventSourceClient(`${url}/sync`)
    await source.waitForOpen()
    for (let n = 0; n < 10; n++) app.sse.publish('news', { data: String(n) })
    for (const stream of streams) await stream.waitForEvents(10)
    await source.waitForEvents(10)

    // A client that leaves, and a connection the server loses (the EventSource, which comes back).
    streams[0]!.close()
    await waitUntil(() => app.sse.stats().subscribers === 3, 'the closed client to be released')
    sockets[3]!.destroy()
    await source.waitForOpen(2)
    app.sse.publish('news', { data: 'after the drop' })
    await source.waitForEvents(11)
    await within(app.close(), 'fastify.close()')

    expect(logs.records.filter((record) => record.level >= LEVEL.warn)).toEqual([])
  })
})

describe('what the plugin logs', () => {
  it('one debug line when a stream opens and one when it closes, nothing per event', async () => {
    const logs = createLogCollector()
    const app = await createSseApp({}, { logger: { level: 'trace', stream: logs.stream } })
    app.get('/events', (_request, reply) => reply.sse('news'))
    const { url } = await listen(app)
    const stream = await FetchStream.open(`${url}/events`)
    await waitUntil(
      () => logs.records.some((record) => record.msg === 'event stream opened'),
      'the open line',
    )
    const before = logs.records.length

    for (let n = 0; n < 100; n++) app.sse.publish('news', { data: String(n) })
    await stream.waitForEvents(100)

    expect(logs.records.slice(before)).toEqual([])
    stream.close()
    await waitUntil(
      () => logs.records.some((record) => record.msg === 'event stream closed'),
      'the close line',
    )
    const plugin = logs.records.filter((record) => record.msg?.startsWith('event stream'))
    expect(plugin).toEqual([
      expect.objectContaining({ level: LEVEL.debug, msg: 'event stream opened', stream: 'news' }),
      expect.objectContaining({
        level: LEVEL.debug,
        msg: 'event stream closed',
        stream: 'news',
        reason: 'client',
      }),
    ])
    // Both through request.log, so they carry the request id.
    expect(plugin[0]!.reqId).toBeDefined()
    expect(plugin[1]!.reqId).toBe(plugin[0]!.reqId)
  })

  it('without onError, a failing stream is logged at error level through fastify.log', async () => {
    const logs = createLogCollector()
    const app = await createSseApp({}, { logger: { level: 'warn', stream: logs.stream } })
    routeBroken(app)

    const response = await app.inject({ url: '/broken' })

    expect(response.statusCode).toBe(200)
    expect(logs.records).toEqual([
      expect.objectContaining({
        level: LEVEL.error,
        msg: 'event stream failed',
        err: expect.objectContaining({ message: 'upstream failed' }),
      }),
    ])
  })
})
