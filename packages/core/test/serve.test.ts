import http2 from 'node:http2'
import net from 'node:net'
import { EventSource } from 'eventsource'
import { describe, expect, it } from 'vitest'
import { listen } from '../../../test/support/listen.js'
import { RawHttpClient } from '../../../test/support/raw-client.js'
import { waitUntil } from '../../../test/support/wait.js'
import { createHub, type Hub, RewindError, type Subscription } from '../src/index.js'
import { closesAfterEach, serveHub } from './helpers/http.js'
import { ManualStore } from './helpers/manual-store.js'
import { unreadableResponses } from './helpers/unreadable-responses.js'

const { cleanups, hubFor, started } = closesAfterEach()

/** A raw client at `/` that resumes from `lastEventId`, keeping its transcript; closed after the test. */
function resuming(port: number, lastEventId: string): RawHttpClient {
  const client = new RawHttpClient(port, {
    transcript: true,
    path: '/',
    headers: [`last-event-id: ${lastEventId}`],
  })
  cleanups.push(() => client.destroy())
  return client
}

function eventSource(url: string): EventSource {
  const source = new EventSource(url)
  cleanups.push(() => source.close())
  return source
}

describe('serve over HTTP/1.1', () => {
  it('answers 200 with the event-stream headers at once, keeping headers set before', async () => {
    const hub = hubFor()
    const server = await started(
      listen((req, res) => {
        res.setHeader('access-control-allow-origin', 'https://app.example')
        hub.serve(req, res, 'news')
      }),
    )
    const client = new RawHttpClient(server.port, { transcript: true, path: '/' })
    cleanups.push(() => client.destroy())
    // The retry hint is the first body byte: headers and body were flushed before any event.
    await client.until(() => client.retries.length === 1)
    const head = client.transcript().split('\r\n\r\n')[0]!.toLowerCase()
    expect(head).toMatch(/^http\/1\.1 200/)
    expect(head).toContain('content-type: text/event-stream; charset=utf-8')
    expect(head).toMatch(/cache-control: [^\r\n]*no-cache/)
    expect(head).toMatch(/cache-control: [^\r\n]*no-store/)
    expect(head).toMatch(/cache-control: [^\r\n]*no-transform/)
    expect(head).toContain('x-accel-buffering: no')
    expect(head).toContain('connection: keep-alive')
    expect(head).toContain('access-control-allow-origin: https://app.example')
    expect(client.events).toEqual([])
  })

  it('opens an EventSource before the first event and delivers live events', async () => {
    const hub = hubFor()
    const server = await started(serveHub(hub, 'news'))
    const source = eventSource(`${server.url}/events`)
    const received: string[] = []
    source.onmessage = (event) => received.push(event.data)
    await new Promise<void>((resolve) => {
      source.onopen = () => resolve()
    })
    hub.publish('news', { data: 'one' })
    hub.publish('news', { data: { two: 2 } })
    await waitUntil(() => received.length === 2, 'received.length === 2', 5000)
    expect(received).toEqual(['one', '{"two":2}'])
  })

  it('resumes a dropped EventSource with exactly the events it missed', async () => {
    const hub = hubFor()
    const server = await started(serveHub(hub, 'news'))
    const source = eventSource(`${server.url}/events`)
    const received: { id: string; data: string }[] = []
    source.onmessage = (event) => received.push({ id: event.lastEventId, data: event.data })
    let opens = 0
    source.onopen = () => opens++
    await waitUntil(() => opens === 1, 'opens === 1', 5000)
    for (let i = 0; i < 5; i++) hub.publish('news', { data: `before ${i}` })
    await waitUntil(() => received.length === 5, 'received.length === 5', 5000)
    server.server.closeAllConnections()
    await waitUntil(() => hub.stats().subscribers === 0, 'hub.stats().subscribers === 0', 5000)
    const missed = [0, 1, 2].map((i) => hub.publish('news', { data: `missed ${i}` }))
    await waitUntil(() => received.length === 8, 'received.length === 8', 5000)
    hub.publish('news', { data: 'after' })
    await waitUntil(() => received.length === 9, 'received.length === 9', 5000)
    expect(opens).toBe(2)
    expect(received.slice(5).map((event) => event.id)).toEqual([...missed, expect.any(String)])
    expect(received.map((event) => event.data)).toEqual([
      'before 0',
      'before 1',
      'before 2',
      'before 3',
      'before 4',
      'missed 0',
      'missed 1',
      'missed 2',
      'after',
    ])
    expect(hub.stats().replayed).toBe(3)
  })

  it('resumes from the lastEventId query parameter when there is no header', async () => {
    const hub = hubFor()
    const server = await started(serveHub(hub, 'news'))
    const ids = ['a', 'b', 'c'].map((data) => hub.publish('news', { data }))
    const client = new RawHttpClient(server.port, {
      path: `/events?lastEventId=${encodeURIComponent(ids[0]!)}`,
    })
    cleanups.push(() => client.destroy())
    await client.until(() => client.events.length === 2)
    expect(client.events.map((event) => [event.id, event.data])).toEqual([
      [ids[1], 'b'],
      [ids[2], 'c'],
    ])
  })

  it('prefers the header over the query parameter, as a reconnecting EventSource needs', async () => {
    const hub = hubFor()
    const server = await started(serveHub(hub, 'news'))
    const ids = ['a', 'b', 'c'].map((data) => hub.publish('news', { data }))
    const client = new RawHttpClient(server.port, {
      path: `/events?lastEventId=${ids[0]}`,
      headers: [`last-event-id: ${ids[1]!}`],
    })
    cleanups.push(() => client.destroy())
    await client.until(() => client.events.length === 1)
    await new Promise((resolve) => setTimeout(resolve, 50))
    expect(client.events.map((event) => event.data)).toEqual(['c'])
  })

  it('answers a hostile Last-Event-ID with 200 and the gap signal, and other clients go on', async () => {
    const hub = hubFor()
    const server = await started(serveHub(hub, 'news'))
    hub.publish('news', { data: 'kept' })
    const bystander = new RawHttpClient(server.port, { path: '/' })
    cleanups.push(() => bystander.destroy())
    await bystander.until(() => bystander.retries.length === 1)
    // UTF-8 bytes (read as latin1 by Node), an 8 KB value, and a foreign id.
    const hostile = [Buffer.from('ünïcödé').toString('latin1'), 'x'.repeat(8 * 1024), 'zzzzzzzz-1']
    for (const value of hostile) {
      const client = resuming(server.port, value)
      await client.until(() => client.events.length === 2)
      expect(client.transcript()).toMatch(/^HTTP\/1\.1 200/)
      expect(client.events[0]).toMatchObject({ event: 'rewind-gap' })
      expect(['malformed', 'epoch']).toContain(client.events[0]!.data)
      expect(client.events[1]!.data).toBe('kept')
    }
    hub.publish('news', { data: 'still flowing' })
    await bystander.until(() => bystander.events.some((event) => event.data === 'still flowing'))
  })

  it('cuts off a client that stops reading once its queue passes the limit, and only it', async () => {
    const maxQueueBytes = 256 * 1024
    const hub = hubFor({ maxQueueBytes, maxEventBytes: 64 * 1024, heartbeatInterval: 0 })
    const server = await started(serveHub(hub, 'feed'))
    const stalled = new RawHttpClient(server.port, { path: '/' })
    const reader = new RawHttpClient(server.port, { path: '/' })
    cleanups.push(
      () => stalled.destroy(),
      () => reader.destroy(),
    )
    await stalled.until(() => stalled.retries.length === 1)
    await reader.until(() => reader.retries.length === 1)
    stalled.socket.pause()
    const data = 'x'.repeat(60 * 1024)
    let published = 0
    let maxQueued = 0
    // Publish up to 48 MB, a batch per turn, until the stalled client is cut off.
    while (hub.stats().slowClosed === 0 && published < 800) {
      for (let i = 0; i < 8; i++, published++) hub.publish('feed', { data })
      await new Promise((resolve) => setImmediate(resolve))
      maxQueued = Math.max(maxQueued, hub.stats().queuedBytes)
      await reader.until(() => reader.events.length === published, 10_000)
    }
    expect(hub.stats().slowClosed).toBe(1)
    // What waits for clients never exceeded the limit plus the batch that crossed it (and the reader's share).
    expect(maxQueued).toBeLessThan(maxQueueBytes + 2 * 8 * 61 * 1024)
    // Once it reads again it finds its connection closed by the server.
    stalled.socket.resume()
    await stalled.whenClosed
    expect(reader.events).toHaveLength(published)
    expect(hub.stats().connections).toBe(1)
  })

  it('sends heartbeat comments without ids while a stream is idle', async () => {
    const hub = hubFor({ heartbeatInterval: 30 })
    const server = await started(serveHub(hub, 'quiet'))
    const client = new RawHttpClient(server.port, { transcript: true, path: '/' })
    cleanups.push(() => client.destroy())
    await client.until(() => client.comments.length >= 3)
    expect(client.events).toEqual([])
    expect(client.transcript()).not.toMatch(/\nid: [^\n]*\n\n:/)
  })

  it('turns clients away past maxConnections with 200, a retry hint and the end of the body', async () => {
    const hub = hubFor({ maxConnections: 1, overloadRetry: 4000 })
    const server = await started(serveHub(hub, 'news'))
    const first = new RawHttpClient(server.port, { path: '/' })
    cleanups.push(() => first.destroy())
    await first.until(() => first.retries.length === 1)
    const second = new RawHttpClient(server.port, { transcript: true, path: '/' })
    cleanups.push(() => second.destroy())
    await second.until(() => second.transcript().endsWith('0\r\n\r\n'))
    expect(second.transcript()).toMatch(/^HTTP\/1\.1 200/)
    // Only the overload hint: the usual opening hint is not sent to a client that is turned away.
    expect(second.retries).toHaveLength(1)
    expect(second.retries[0]).toBeGreaterThanOrEqual(2000)
    expect(second.retries[0]).toBeLessThanOrEqual(6000)
    expect(hub.stats()).toMatchObject({ rejected: 1, connections: 1 })
  })

  it('streams an async iterable and calls its return() when the client leaves', async () => {
    const hub = hubFor()
    let finalized = false
    async function* tokens() {
      try {
        yield 'hello'
        yield { event: 'token', data: { text: 'world' } }
        await new Promise(() => {}) // a model that never finishes
      } finally {
        finalized = true
      }
    }
    const server = await started(listen((req, res) => hub.serve(req, res, tokens())))
    const client = new RawHttpClient(server.port, { path: '/' })
    await client.until(() => client.events.length === 2)
    expect(client.events.map((event) => [event.event, event.data])).toEqual([
      [undefined, 'hello'],
      ['token', '{"text":"world"}'],
    ])
    client.destroy()
    await waitUntil(() => hub.stats().connections === 0, 'hub.stats().connections === 0', 5000)
    // The generator is suspended in an await that never settles, so return() only queues; a finite
    // producer is the case that matters: see the next test.
    expect(finalized).toBe(false)
  })

  it('ends the response when a finite iterable ends, and stops one whose client left', async () => {
    const hub = hubFor()
    let produced = 0
    let finalized = false
    async function* counter() {
      try {
        for (;;) {
          produced++
          yield String(produced)
          await new Promise((resolve) => setTimeout(resolve, 5))
        }
      } finally {
        finalized = true
      }
    }
    async function* three() {
      yield* ['1', '2', '3']
    }
    const server = await started(
      listen((req, res) => hub.serve(req, res, req.url === '/three' ? three() : counter())),
    )
    const finite = new RawHttpClient(server.port, { transcript: true, path: '/three' })
    cleanups.push(() => finite.destroy())
    await finite.until(() => finite.transcript().endsWith('0\r\n\r\n'))
    expect(finite.events.map((event) => event.data)).toEqual(['1', '2', '3'])
    const endless = new RawHttpClient(server.port, { path: '/endless' })
    await endless.until(() => endless.events.length >= 3)
    endless.destroy()
    await waitUntil(() => finalized, 'finalized', 5000)
    const stoppedAt = produced
    await new Promise((resolve) => setTimeout(resolve, 50))
    expect(produced).toBe(stoppedAt)
  })

  it('refuses iterable items larger than maxEventBytes, strings and { data } objects alike', async () => {
    for (const big of ['x'.repeat(2000), { data: 'x'.repeat(2000) }]) {
      const errors: unknown[] = []
      const hub = hubFor({ maxEventBytes: 1024, onError: (error) => errors.push(error) })
      const server = await started(
        listen((req, res) => {
          hub.serve(
            req,
            res,
            (async function* () {
              yield 'small'
              yield big
              yield 'after'
            })(),
          )
        }),
      )
      const client = new RawHttpClient(server.port, { transcript: true, path: '/' })
      cleanups.push(() => client.destroy())
      // The response ends (its terminating chunk) once the item is refused.
      await client.until(() => client.transcript().endsWith('\r\n0\r\n\r\n'))
      expect(client.events.map((event) => event.data)).toEqual(['small'])
      expect(errors).toHaveLength(1)
      expect(errors[0]).toBeInstanceOf(RewindError)
      expect((errors[0] as RewindError).code).toBe('ERR_EVENT_TOO_LARGE')
    }
  })

  it('lets server.close() finish promptly after hub.close(), with clients told to come back', async () => {
    const hub = createHub({ retry: 20 })
    const server = await listen((req, res) => hub.serve(req, res, 'news'))
    const clients = Array.from({ length: 20 }, () => new RawHttpClient(server.port, { path: '/' }))
    cleanups.push(() => {
      for (const client of clients) client.destroy()
    })
    await waitUntil(() => hub.stats().subscribers === 20, 'hub.stats().subscribers === 20', 5000)
    hub.publish('news', { data: 'last words' })
    const closed = new Promise<void>((resolve) => server.server.close(() => resolve()))
    await hub.close({ retry: 1000 })
    await closed
    for (const client of clients) {
      await client.whenClosed
      expect(client.events.map((event) => event.data)).toEqual(['last words'])
      expect(client.retries.at(-1)).toBeGreaterThanOrEqual(500)
      expect(client.retries.at(-1)).toBeLessThanOrEqual(1500)
    }
    expect(hub.stats()).toMatchObject({ connections: 0, subscribers: 0, streams: 0 })
    expect(() => hub.publish('news', { data: 'late' })).toThrow(
      expect.objectContaining({ code: 'ERR_CLOSED' }),
    )
  })
})

describe('serve with an asynchronous store', () => {
  it('sends the head and retry hint to an up-to-date resuming client once its position is fixed', async () => {
    // Reads wait for the test to answer them; no heartbeat could send the head instead.
    const store = new ManualStore()
    const hub = createHub({ store, heartbeatInterval: 0, retry: 20 })
    cleanups.push(() => hub.close())
    await hub.publish('news', { data: 'one' })
    const newest = await hub.publish('news', { data: 'two' })
    const server = await started(serveHub(hub as Hub<string | Promise<string>>, 'news'))
    const client = resuming(server.port, newest)
    await waitUntil(() => store.reads.length === 1, 'store.reads.length === 1', 5000)
    store.answer()
    const answered = Date.now()
    await client.until(() => client.retries.length === 1, 2000)
    expect(Date.now() - answered).toBeLessThan(1000)
    expect(client.transcript()).toMatch(/^HTTP\/1\.1 200/)
    expect(client.events).toEqual([])
  })

  it('sends the head to a resuming client whose whole replay is filtered out', async () => {
    const store = new ManualStore()
    const hub = createHub({ store, heartbeatInterval: 0, retry: 20 })
    cleanups.push(() => hub.close())
    const first = await hub.publish('news', { data: 'one' })
    await hub.publish('news', { data: 'two' })
    const server = await started(
      listen((req, res) => hub.serve(req, res, 'news', { filter: (event) => event.data === 'mine' })),
    )
    const client = resuming(server.port, first)
    await waitUntil(() => store.reads.length === 1, 'store.reads.length === 1', 5000)
    store.answer()
    await client.until(() => client.retries.length === 1, 2000)
    expect(client.transcript()).toMatch(/^HTTP\/1\.1 200/)
    expect(client.events).toEqual([])
    // Its position is fixed: an event published now reaches it.
    await hub.publish('news', { data: 'mine' })
    store.deliver('news')
    await client.until(() => client.events.length === 1)
    expect(client.events[0]!.data).toBe('mine')
  })
})

describe('the Connection header', () => {
  /** Sends `request` on a raw socket; resolves with what came back once the server closed it. */
  function exchange(port: number, request: string, afterHead: () => void) {
    const socket = net.connect(port, '127.0.0.1')
    cleanups.push(() => socket.destroy())
    let raw = ''
    socket.setEncoding('latin1').on('data', (chunk: string) => {
      const first = !raw.includes('\r\n\r\n')
      raw += chunk
      if (first && raw.includes('\r\n\r\n')) afterHead()
    })
    socket.on('error', () => {})
    socket.write(request)
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()))
    return {
      head: () => raw.split('\r\n\r\n')[0]!.toLowerCase(),
      closed: () => Promise.race([closed.then(() => true), sleep(2000).then(() => false)]),
    }
  }

  function sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms)
      cleanups.push(() => clearTimeout(timer))
    })
  }

  it('honours a request that asks to close: Connection: close, and the socket closes after the stream', async () => {
    const hub = hubFor({ heartbeatInterval: 0 })
    const subscriptions: { close(): void }[] = []
    const server = await started(listen((req, res) => subscriptions.push(hub.serve(req, res, 'news'))))
    const client = exchange(server.port, 'GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n', () =>
      subscriptions[0]!.close(),
    )
    expect(await client.closed()).toBe(true)
    expect(client.head()).toContain('connection: close')
    expect(client.head()).not.toContain('keep-alive')
  })

  it('sends no keep-alive to an HTTP/1.0 client and closes its close-delimited response', async () => {
    const hub = hubFor({ heartbeatInterval: 0 })
    const subscriptions: { close(): void }[] = []
    const server = await started(listen((req, res) => subscriptions.push(hub.serve(req, res, 'news'))))
    const client = exchange(server.port, 'GET / HTTP/1.0\r\n\r\n', () => subscriptions[0]!.close())
    expect(await client.closed()).toBe(true)
    expect(client.head()).not.toContain('keep-alive')
    expect(client.head()).not.toContain('transfer-encoding')
  })

  it('says Connection: close once the request budget of the socket (maxRequestsPerSocket) is used', async () => {
    const hub = hubFor({ heartbeatInterval: 0 })
    const subscriptions: { close(): void }[] = []
    const server = await started(listen((req, res) => subscriptions.push(hub.serve(req, res, 'news'))))
    // Node then answers `Connection: close` (and 503 to any later request on the socket).
    server.server.maxRequestsPerSocket = 1
    const client = exchange(server.port, 'GET / HTTP/1.1\r\nhost: x\r\n\r\n', () => {})
    await waitUntil(() => client.head().includes('\r\n'), "client.head().includes('\\r\\n')", 5000)
    expect(client.head()).toContain('connection: close')
    expect(client.head()).not.toContain('keep-alive')
    subscriptions[0]!.close()
  })

  it('closes the keep-alive connection of a stream that hub.close() ended, once its body has ended', async () => {
    const hub = hubFor({ heartbeatInterval: 0 })
    const server = await started(listen((req, res) => hub.serve(req, res, 'news')))
    let closing: Promise<void> | undefined
    const client = exchange(server.port, 'GET / HTTP/1.1\r\nhost: x\r\n\r\n', () => {
      closing = hub.close()
    })
    // Left open, the idle keep-alive socket would hold the server until its keep-alive timeout.
    expect(await client.closed()).toBe(true)
    expect(client.head()).toContain('connection: keep-alive')
    await closing
  })

  it('keeps the keep-alive connection of a stream that ended while the hub stays open', async () => {
    const hub = hubFor({ heartbeatInterval: 0 })
    const subscriptions: { close(): void }[] = []
    const server = await started(listen((req, res) => subscriptions.push(hub.serve(req, res, 'news'))))
    const client = exchange(server.port, 'GET / HTTP/1.1\r\nhost: x\r\n\r\n', () => subscriptions[0]!.close())
    expect(await client.closed()).toBe(false)
  })

  it('keeps an ordinary HTTP/1.1 connection alive', async () => {
    const hub = hubFor({ heartbeatInterval: 0 })
    const subscriptions: { close(): void }[] = []
    const server = await started(listen((req, res) => subscriptions.push(hub.serve(req, res, 'news'))))
    const client = exchange(server.port, 'GET / HTTP/1.1\r\nhost: x\r\n\r\n', () => subscriptions[0]!.close())
    await waitUntil(() => client.head().includes('\r\n'), "client.head().includes('\\r\\n')", 5000)
    expect(client.head()).toContain('connection: keep-alive')
  })
})

describe('serve over HTTP/2', () => {
  it('sends no connection-specific headers and delivers frames in order', async () => {
    const hub = hubFor()
    const server = await listen(http2.createServer((req, res) => hub.serve(req, res, 'news')))
    cleanups.push(() => server.close())
    const session = http2.connect(server.url)
    cleanups.push(() => session.destroy())
    const ids = ['a', 'b'].map((data) => hub.publish('news', { data }))
    const request = session.request({ ':path': '/events', 'last-event-id': ids[0]! })
    const headers = await new Promise<http2.IncomingHttpHeaders>((resolve) =>
      request.once('response', resolve),
    )
    expect(headers[':status']).toBe(200)
    expect(headers['content-type']).toBe('text/event-stream; charset=utf-8')
    expect(headers.connection).toBeUndefined()
    expect(headers['keep-alive']).toBeUndefined()
    expect(headers['transfer-encoding']).toBeUndefined()
    let body = ''
    request.setEncoding('utf8')
    request.on('data', (chunk: string) => {
      body += chunk
    })
    hub.publish('news', { data: 'c' })
    await waitUntil(
      () => body.includes('data: c'),
      () => body,
      5000,
    )
    expect(body.indexOf('data: b')).toBeLessThan(body.indexOf('data: c'))
    expect(body).not.toContain('data: a')
    // Shutting down closes the session gracefully, so the server can close.
    const closed = new Promise<void>((resolve) => server.server.close(() => resolve()))
    await hub.close()
    await closed
  })
})

describe('serve of a response whose record cannot be read', () => {
  it('answers 503 with a retry-after, reports the error, and ends the subscription', async () => {
    const errors: unknown[] = []
    const { store, failure } = unreadableResponses()
    const hub = hubFor({ store, onError: (error) => errors.push(error) })
    const subscriptions: Subscription[] = []
    const server = await started(
      listen((req, res) => subscriptions.push(hub.serve(req, res, { response: 'r1' }))),
    )
    const response = await fetch(server.url)
    expect(response.status).toBe(503)
    expect(response.headers.get('retry-after')).toBe('1')
    expect(await response.json()).toEqual({ error: 'the store is unavailable; try again' })
    expect(errors).toEqual([failure])
    await waitUntil(() => subscriptions[0]?.closed === true, 'the subscription closed')
  })
})
