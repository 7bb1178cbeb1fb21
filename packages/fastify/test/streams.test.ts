/** Choosing what a request gets: many clients, a per-request filter, a stream per route parameter, an async iterable. */
import { setTimeout as sleep } from 'node:timers/promises'
import type { StreamItem } from '@rewind/core'
import { describe, expect, it } from 'vitest'
import { waitUntil, within } from '../../../test/support/wait.js'
import { createSseApp, idOf, listen, routeBroken, routeOrdersByUser } from './helpers/app.js'
import { deferred, EventLog, EventSourceClient, FetchStream } from './helpers/clients.js'

/** Once the client has left: waits for the source's cleanup (`what`), then for its connection to be released. */
async function releasedOnClose(
  app: Awaited<ReturnType<typeof createSseApp>>,
  cleanup: Promise<unknown>,
  what: string,
): Promise<void> {
  await within(cleanup, what)
  await waitUntil(() => app.sse.stats().connections === 0, 'the connection to be released')
}

describe('many clients', () => {
  it('200 concurrent EventSources each get every event once, in order', async () => {
    const app = await createSseApp()
    app.get('/events', (_request, reply) => reply.sse('news'))
    const { url } = await listen(app)
    const clients = Array.from({ length: 200 }, () => new EventSourceClient(`${url}/events`))
    await waitUntil(
      () => app.sse.stats().subscribers === 200,
      () => `200 subscribers, got ${app.sse.stats().subscribers}`,
      15_000,
    )

    const ids = ['1', '2', '3', '4', '5'].map((data) => idOf(app.sse.publish('news', { data })))
    for (const client of clients) await client.waitForEvents(5)

    for (const client of clients) {
      expect(client.events.map((event) => event.lastEventId)).toEqual(ids)
    }
    expect(app.sse.stats()).toMatchObject({ subscribers: 200, streams: 1, delivered: 1000, errors: 0 })
  })
})

describe('what each request follows', () => {
  it('a per-request filter sends each client only its events, while ids stay the stream ids', async () => {
    const app = await createSseApp()
    routeOrdersByUser(app)
    const { url } = await listen(app)
    const alice = await FetchStream.open(`${url}/events?user=alice`)
    const bob = await FetchStream.open(`${url}/events?user=bob`)

    const ids = ['alice', 'bob', 'alice', 'carol', 'bob'].map((user, n) =>
      app.sse.publish('orders', { data: { user, n } }),
    )
    await alice.waitForEvents(2, 'alice')
    await bob.waitForEvents(2, 'bob')

    expect(alice.events).toEqual([
      { id: ids[0], event: undefined, data: '{"user":"alice","n":0}' },
      { id: ids[2], event: undefined, data: '{"user":"alice","n":2}' },
    ])
    expect(bob.events).toEqual([
      { id: ids[1], event: undefined, data: '{"user":"bob","n":1}' },
      { id: ids[4], event: undefined, data: '{"user":"bob","n":4}' },
    ])
  })

  it('a filtered client resumes with its filter applied to the replay', async () => {
    const app = await createSseApp()
    routeOrdersByUser(app)
    const { url } = await listen(app)
    const ids = ['alice', 'bob', 'alice', 'bob'].map((user) =>
      idOf(app.sse.publish('orders', { data: { user } })),
    )

    const resumed = await FetchStream.open(`${url}/events?user=bob`, { 'last-event-id': ids[0]! })
    await resumed.waitForEvents(2)

    expect(resumed.events.map((event) => event.id)).toEqual([ids[1], ids[3]])
  })

  it('a route parameter chooses the stream', async () => {
    const app = await createSseApp()
    app.get<{ Params: { room: string } }>('/rooms/:room/events', (request, reply) =>
      reply.sse(`room:${request.params.room}`),
    )
    const { url } = await listen(app)
    const red = await FetchStream.open(`${url}/rooms/red/events`)
    const blue = await FetchStream.open(`${url}/rooms/blue/events`)

    app.sse.publish('room:red', { data: 'r1' })
    app.sse.publish('room:blue', { data: 'b1' })
    app.sse.publish('room:red', { data: 'r2' })
    await red.waitForEvents(2, 'red')
    await blue.waitForEvents(1, 'blue')

    expect(red.messages()).toEqual(['r1', 'r2'])
    expect(blue.messages()).toEqual(['b1'])
    expect(app.sse.stats().streams).toBe(2)
  })
})

describe('async iterable sources', () => {
  it('a finite iterable is sent as events and ends the response', async () => {
    const app = await createSseApp({ retry: null })
    async function* answer(): AsyncGenerator<StreamItem> {
      yield 'Hel'
      yield { data: { token: 'lo' }, event: 'token', id: 't2' }
      yield { data: 'done', event: 'end', retry: 5000 }
    }
    app.get('/answer', (_request, reply) => reply.sse(answer()))

    // The iterable ends the response, so inject resolves.
    const response = await app.inject({ url: '/answer' })

    expect(response.statusCode).toBe(200)
    expect(response.headers['content-type']).toBe('text/event-stream; charset=utf-8')
    const log = new EventLog()
    log.feed(response.body)
    expect(log.events).toEqual([
      { id: undefined, event: undefined, data: 'Hel' },
      { id: 't2', event: 'token', data: '{"token":"lo"}' },
      { id: undefined, event: 'end', data: 'done' },
    ])
    expect(log.retries).toEqual([5000])
    expect(app.sse.stats().connections).toBe(0)
  })

  it("a generator's finally block runs when the client disconnects", async () => {
    const app = await createSseApp()
    const finished = deferred()
    async function* ticks(): AsyncGenerator<StreamItem> {
      try {
        for (let n = 0; ; n++) {
          yield String(n)
          // A generator only runs its finally once its pending await settles: keep awaits short.
          await sleep(10)
        }
      } finally {
        finished.resolve()
      }
    }
    app.get('/ticks', (_request, reply) => reply.sse(ticks()))
    const { url } = await listen(app)

    const stream = await FetchStream.open(`${url}/ticks`)
    await stream.waitForEvents(3)
    stream.close()
    await releasedOnClose(app, finished.promise, "the generator's finally block")
    expect(stream.messages().slice(0, 3)).toEqual(['0', '1', '2'])
  })

  it("an iterator's return() is called when the client disconnects, even while next() is pending", async () => {
    const app = await createSseApp()
    const returned = deferred()
    let pulls = 0
    const source: AsyncIterable<StreamItem> = {
      [Symbol.asyncIterator]: () => ({
        // One item, then a next() that never settles: a feed with nothing new to say.
        next: () =>
          ++pulls === 1 ? Promise.resolve({ value: 'first', done: false }) : new Promise(() => {}),
        return: () => {
          returned.resolve()
          return Promise.resolve({ value: undefined, done: true })
        },
      }),
    }
    app.get('/feed', (_request, reply) => reply.sse(source))
    const { url } = await listen(app)

    const stream = await FetchStream.open(`${url}/feed`)
    await stream.waitForEvents(1)
    stream.close()
    await releasedOnClose(app, returned.promise, "the iterator's return()")
  })

  it('a throwing iterable ends its stream, and onError is told', async () => {
    const errors: unknown[] = []
    const app = await createSseApp({ onError: (error) => errors.push(error) })
    routeBroken(app)

    const response = await app.inject({ url: '/broken' })

    // Headers were sent already: the status stays 200, the body holds what was produced and ends.
    expect(response.statusCode).toBe(200)
    expect(response.body).toContain('data: partial\n\n')
    expect(errors).toHaveLength(1)
    expect((errors[0] as Error).message).toBe('upstream failed')
  })
})
