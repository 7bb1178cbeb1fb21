/**
 * Resuming through Fastify with real clients on a real listener: the `eventsource` package reconnects
 * by itself and sends `Last-Event-ID`, exactly as a browser does.
 */
import type { Socket } from 'node:net'
import { describe, expect, it, onTestFinished } from 'vitest'
import { rawResponse } from '../../../test/support/raw-client.js'
import { waitUntil } from '../../../test/support/wait.js'
import { createSseApp, idOf, listen } from './helpers/app.js'
import { deferred, EventLog, EventSourceClient, FetchStream } from './helpers/clients.js'

describe('receiving and reconnecting', () => {
  it('an EventSource receives published events with their ids, in order', async () => {
    const app = await createSseApp()
    app.get('/events', (_request, reply) => reply.sse('news'))
    const { url } = await listen(app)
    const client = new EventSourceClient(`${url}/events`)
    await client.waitForOpen()

    const ids = ['one', 'two', 'three'].map((data) => idOf(app.sse.publish('news', { data })))
    await client.waitForEvents(3)

    expect(client.events).toEqual([
      { type: 'message', data: 'one', lastEventId: ids[0] },
      { type: 'message', data: 'two', lastEventId: ids[1] },
      { type: 'message', data: 'three', lastEventId: ids[2] },
    ])
  })

  it('a client dropped by the server reconnects with Last-Event-ID and gets exactly what it missed, in order', async () => {
    const app = await createSseApp({ retry: 50 })
    const sockets: Socket[] = []
    const resumeHeaders: (string | undefined)[] = []
    // Holds the reconnection until the events are published, so they are missed, not received live.
    const reconnect = deferred()
    onTestFinished(() => reconnect.resolve())
    app.get('/events', async (request, reply) => {
      resumeHeaders.push(request.headers['last-event-id'] as string | undefined)
      if (resumeHeaders.length > 1) await reconnect.promise
      sockets.push(request.raw.socket)
      return reply.sse('news')
    })
    const { url } = await listen(app)
    const client = new EventSourceClient(`${url}/events`)
    await client.waitForOpen()

    const before = ['a', 'b'].map((data) => idOf(app.sse.publish('news', { data })))
    await client.waitForEvents(2)
    sockets[0]!.destroy()
    await waitUntil(() => app.sse.stats().subscribers === 0, 'the server to see the connection drop')
    await waitUntil(() => resumeHeaders.length === 2, 'the client to reconnect')
    const missed = ['c', 'd', 'e'].map((data) => idOf(app.sse.publish('news', { data })))
    reconnect.resolve()
    await client.waitForOpen(2)
    const live = app.sse.publish('news', { data: 'f' })
    // One connection is ordered: once the live event is in, any duplicate of a missed one would be too.
    await client.waitForEvents(6)

    expect(resumeHeaders).toEqual([undefined, before[1]])
    expect(client.events.map((event) => [event.data, event.lastEventId])).toEqual([
      ['a', before[0]],
      ['b', before[1]],
      ['c', missed[0]],
      ['d', missed[1]],
      ['e', missed[2]],
      ['f', live],
    ])
  })

  it('a client that cannot set headers resumes with the lastEventId query parameter', async () => {
    const app = await createSseApp()
    app.get('/events', (_request, reply) => reply.sse('news'))
    const { url } = await listen(app)
    const ids = ['a', 'b', 'c'].map((data) => idOf(app.sse.publish('news', { data })))

    const stream = await FetchStream.open(`${url}/events?lastEventId=${encodeURIComponent(ids[0]!)}`)
    await stream.waitForEvents(2)
    const live = app.sse.publish('news', { data: 'd' })
    await stream.waitForEvents(3)

    expect(stream.response.status).toBe(200)
    expect(stream.events).toEqual([
      { id: ids[1], data: 'b', event: undefined },
      { id: ids[2], data: 'c', event: undefined },
      { id: live, data: 'd', event: undefined },
    ])
  })

  it('the Last-Event-ID header wins over the query parameter (a reconnecting EventSource keeps its first URL)', async () => {
    const app = await createSseApp()
    app.get('/events', (_request, reply) => reply.sse('news'))
    const { url } = await listen(app)
    const ids = ['a', 'b', 'c'].map((data) => idOf(app.sse.publish('news', { data })))

    const stream = await FetchStream.open(`${url}/events?lastEventId=${encodeURIComponent(ids[0]!)}`, {
      'last-event-id': ids[1]!,
    })
    await stream.waitForEvents(1)
    const live = app.sse.publish('news', { data: 'd' })
    await stream.waitForEvents(2)

    expect(stream.events.map((event) => event.data)).toEqual(['c', 'd'])
    expect(live).toBe(stream.events[1]!.id)
  })
})

describe('gaps', () => {
  it('an EventSource that missed more than history holds gets the gap signal, then what is retained', async () => {
    const app = await createSseApp({ retry: 50, history: { maxEvents: 3 } })
    const sockets: Socket[] = []
    let requests = 0
    const reconnect = deferred()
    onTestFinished(() => reconnect.resolve())
    app.get('/events', async (request, reply) => {
      if (++requests > 1) await reconnect.promise
      sockets.push(request.raw.socket)
      return reply.sse('news')
    })
    const { url } = await listen(app)
    const client = new EventSourceClient(`${url}/events`)
    await client.waitForOpen()
    const first = app.sse.publish('news', { data: '1' })
    await client.waitForEvents(1)

    sockets[0]!.destroy()
    await waitUntil(() => app.sse.stats().subscribers === 0, 'the server to see the connection drop')
    const missed = ['2', '3', '4', '5', '6'].map((data) => idOf(app.sse.publish('news', { data })))
    reconnect.resolve()
    await client.waitForEvents(5)

    // Events 2 and 3 were evicted: the signal, then everything retained, then live.
    const [, gap, ...rest] = client.events
    expect(client.events[0]).toEqual({ type: 'message', data: '1', lastEventId: first })
    expect(gap).toEqual({ type: 'rewind-gap', data: 'evicted', lastEventId: missed[1] })
    expect(rest).toEqual([
      { type: 'message', data: '4', lastEventId: missed[2] },
      { type: 'message', data: '5', lastEventId: missed[3] },
      { type: 'message', data: '6', lastEventId: missed[4] },
    ])
    expect(app.sse.stats().gaps).toBe(1)
  })

  it.each([
    ['unknown', () => 'not-an-id-of-ours'],
    ['epoch', () => 'zzzzzzzz-1'],
  ])('an id the history cannot place is a gap with reason %s, answered 200', async (reason, id) => {
    const app = await createSseApp({ history: { maxEvents: 2 } })
    app.get('/events', (_request, reply) => reply.sse('news'))
    const { url } = await listen(app)
    const ids = ['a', 'b', 'c'].map((data) => idOf(app.sse.publish('news', { data })))

    const stream = await FetchStream.open(`${url}/events`, { 'last-event-id': id() })
    await stream.waitForEvents(3)

    expect(stream.response.status).toBe(200)
    expect(stream.response.headers.get('content-type')).toBe('text/event-stream; charset=utf-8')
    // 'a' is evicted, yet still the position just before 'b', the oldest retained event.
    expect(stream.events).toEqual([
      { id: ids[0], event: 'rewind-gap', data: reason },
      { id: ids[1], event: undefined, data: 'b' },
      { id: ids[2], event: undefined, data: 'c' },
    ])
  })

  it('a client that drops right after the signal resumes from its id without loss and without a second gap', async () => {
    const app = await createSseApp({ history: { maxEvents: 2 } })
    app.get('/events', (_request, reply) => reply.sse('news'))
    const { url } = await listen(app)
    const ids = ['a', 'b', 'c', 'd'].map((data) => idOf(app.sse.publish('news', { data })))

    const first = await FetchStream.open(`${url}/events`, { 'last-event-id': ids[0]! })
    await first.waitForEvents(1)
    first.close()
    // 'b' is evicted, yet still the position just before 'c', the oldest retained event.
    expect(first.events[0]).toEqual({ id: ids[1], event: 'rewind-gap', data: 'evicted' })

    const again = await FetchStream.open(`${url}/events`, { 'last-event-id': first.events[0]!.id! })
    await again.waitForEvents(2)
    expect(again.events).toEqual([
      { id: ids[2], event: undefined, data: 'c' },
      { id: ids[3], event: undefined, data: 'd' },
    ])
  })
})

describe('hostile Last-Event-ID values are a gap, never an HTTP error', () => {
  function request(path: string, lastEventId?: Buffer): Buffer {
    const header =
      lastEventId === undefined
        ? Buffer.alloc(0)
        : Buffer.concat([Buffer.from('Last-Event-ID: '), lastEventId, Buffer.from('\r\n')])
    return Buffer.concat([
      Buffer.from(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n`),
      header,
      Buffer.from('\r\n'),
    ])
  }

  /** Asserts the answer is 200, the gap signal and then the retained event `kept`. */
  async function expectGap(port: number, bytes: Buffer, reason = 'malformed') {
    const response = await rawResponse(port, bytes, (body) => body.includes('data: kept\n\n'))
    expect(response.status).toBe(200)
    expect(response.headers['content-type']).toBe('text/event-stream; charset=utf-8')
    const log = new EventLog()
    log.feed(response.body)
    expect(log.events).toHaveLength(2)
    expect(log.events[0]).toMatchObject({ event: 'rewind-gap', data: reason })
    expect(log.events[1]).toMatchObject({ event: undefined, data: 'kept' })
  }

  it.each([
    ['UTF-8 bytes (read by Node as latin1)', Buffer.from('résumé-😀-42', 'utf8')],
    ['8 KiB', Buffer.from('7'.repeat(8192))],
    ['129 characters, one past the limit', Buffer.from('a'.repeat(129))],
    ['a tab inside', Buffer.from('abc\tdef')],
    ['obsolete latin1 bytes', Buffer.from([0x61, 0xff, 0xfe, 0x62])],
  ])('%s', async (_name, value) => {
    const app = await createSseApp()
    app.get('/events', (_request, reply) => reply.sse('news'))
    const { port } = await listen(app)
    app.sse.publish('news', { data: 'kept' })

    await expectGap(port, request('/events', value))

    expect(app.sse.stats()).toMatchObject({ gaps: 1, errors: 0 })
  })

  it('a NUL in the lastEventId query parameter', async () => {
    const app = await createSseApp()
    app.get('/events', (_request, reply) => reply.sse('news'))
    const { port } = await listen(app)
    app.sse.publish('news', { data: 'kept' })

    await expectGap(port, request('/events?lastEventId=ab%00cd'))
  })

  it('a NUL in the header, when the HTTP parser lets it through', async () => {
    // Node's strict parser refuses control characters in header values before Fastify runs (next test);
    // with insecureHTTPParser the value reaches the hub, which must still answer with a gap.
    const app = await createSseApp({}, { http: { insecureHTTPParser: true } })
    app.get('/events', (_request, reply) => reply.sse('news'))
    const { port } = await listen(app)
    app.sse.publish('news', { data: 'kept' })

    await expectGap(port, request('/events', Buffer.from([0x61, 0x00, 0x62])))
  })

  it('a NUL in the header never reaches the app with the default parser (Node answers 400 itself)', async () => {
    const app = await createSseApp()
    let handled = 0
    app.get('/events', (_request, reply) => {
      handled++
      return reply.sse('news')
    })
    const { port } = await listen(app)

    const response = await rawResponse(port, request('/events', Buffer.from([0x61, 0x00, 0x62])))

    expect(response.status).toBe(400)
    expect(handled).toBe(0)
    expect(app.sse.stats().connections).toBe(0)
  })

  it('a repeated Last-Event-ID header', async () => {
    const app = await createSseApp()
    app.get('/events', (_request, reply) => reply.sse('news'))
    const { port } = await listen(app)
    const id = app.sse.publish('news', { data: 'kept' })

    const bytes = Buffer.concat([
      Buffer.from(`GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\nLast-Event-ID: ${id}\r\n`),
      Buffer.from(`Last-Event-ID: ${id}\r\n\r\n`),
    ])
    // Node joins repeated unknown headers with ', ', which no history issued.
    await expectGap(port, bytes, 'unknown')
  })
})
