/**
 * The client against Rewind's own adapters over real sockets: resuming across server-side drops,
 * the head position of a fresh stream, the gap signal, and a POST answer resumed by GET.
 */

import type { Socket } from 'node:net'
import { type SseMiddleware, sse } from '@rewind/express'
import { ssePlugin } from '@rewind/fastify'
import express from 'express'
import Fastify from 'fastify'
import { describe, expect, it, onTestFinished } from 'vitest'
import { sleep, waitUntil } from '../../../test/support/wait.js'
import { listenApp } from './support/server.js'
import { type Recorded, record } from './support/source.js'
import { type MemoryStore, memoryStore } from './support/store.js'

/** Every request the app saw, with the Last-Event-ID it carried and its socket. */
interface Seen {
  method: string
  path: string
  lastEventId: string | undefined
  body: unknown
  socket: Socket
}

function expressApp(options: { history?: { maxEvents: number } } = {}): {
  app: express.Express
  events: SseMiddleware<string>
  seen: Seen[]
} {
  const events = sse({ retry: 10, ...options })
  onTestFinished(() => events.close())
  const seen: Seen[] = []
  const app = express()
  app.use(express.json())
  app.use((req, _res, next) => {
    seen.push({
      method: req.method,
      path: req.path,
      lastEventId: req.get('last-event-id'),
      body: req.body,
      socket: req.socket,
    })
    next()
  })
  app.use(events)
  app.get('/events', events.handler('news'))
  return { app, events, seen }
}

describe('with @rewind/express', () => {
  it('resumes across server-side drops with every event exactly once, in order', async () => {
    const { app, events, seen } = expressApp()
    const server = await listenApp(app)
    const { messages, messagesAtLeast, source } = record(server.url('/events'), { listen: ['note'] })
    await waitUntil(() => source.readyState === source.OPEN, 'open')

    const published: string[] = []
    for (let drop = 0; drop < 4; drop++) {
      for (let n = 0; n < 5; n++) {
        const index = published.length
        published.push(
          events.publish('news', index % 2 ? { event: 'note', data: { index } } : { data: `${index}` }),
        )
      }
      await messagesAtLeast(published.length)
      // Cut the stream from the server's side, then publish while the client is away.
      seen.at(-1)!.socket.destroy()
      for (let n = 0; n < 3; n++) published.push(events.publish('news', { data: `away ${drop} ${n}` }))
    }
    await messagesAtLeast(published.length)
    await sleep(50)
    expect(messages().map(([id]) => id)).toEqual(published)
    const requests = seen.filter((request) => request.path === '/events')
    expect(requests).toHaveLength(5)
    // Each reconnection resumed after the last event received before the drop.
    expect(requests.slice(1).map((request) => request.lastEventId)).toEqual(
      [4, 12, 20, 28].map((index) => published[index]),
    )
  })

  it("adopts a fresh stream's head position, so a drop before the first event loses nothing", async () => {
    const { app, events, seen } = expressApp()
    const before = events.publish('news', { data: 'before the client came' })
    const server = await listenApp(app)
    const { source, messages, messagesAtLeast } = record(server.url('/events'))
    await waitUntil(() => source.lastEventId === before, 'the head position')
    expect(messages()).toEqual([])

    seen.at(-1)!.socket.destroy()
    const missed = events.publish('news', { data: 'published while away' })
    await messagesAtLeast(1)
    expect(messages()).toEqual([[missed, 'published while away']])
    expect(seen.at(-1)!.lastEventId).toBe(before)
  })

  it('fires gap with the reason evicted and resumes from its position, when more was missed than the history keeps', async () => {
    const { app, events } = expressApp({ history: { maxEvents: 3 } })
    const ids = Array.from({ length: 8 }, (_, n) => events.publish('news', { data: `${n}` }))
    const server = await listenApp(app)
    const { log, messagesAtLeast } = record(server.url('/events'), { lastEventId: ids[1]! })
    await messagesAtLeast(3)
    expect(log.slice(1)).toEqual([
      // The signal's id is the position just before the oldest retained event.
      { type: 'gap', reason: 'evicted', lastEventId: ids[4] },
      ...[5, 6, 7].map((n) => ({ type: 'message', data: `${n}`, id: ids[n], lastEventId: ids[n] })),
    ])
  })

  it('fires gap with the reason epoch for an id from before a restart', async () => {
    const { app, events } = expressApp()
    const server = await listenApp(app)
    const { log } = record(server.url('/events'), { lastEventId: 'zzzzzz-3' })
    await waitUntil(() => log.some((entry) => entry.type === 'gap'), 'the gap')
    const head = events.publish('news', { data: 'live' })
    await waitUntil(() => log.length === 3, 'the live event')
    expect(log.slice(1)).toEqual([
      expect.objectContaining({ type: 'gap', reason: 'epoch' }),
      { type: 'message', data: 'live', id: head, lastEventId: head },
    ])
  })

  it('sends a POST body once, resumes the answer by GET to its Location, and stops at its end', async () => {
    const { app, events, seen } = expressApp()
    const tokens = ['Re', 'wind', ' re', 'sumes', ' where', ' you', ' left', ' off']
    let answers = 0
    app.post('/answers', (req, res) => {
      const stream = `answer:${++answers}`
      res.location(`/answers/${answers}`)
      res.sse(stream)
      let n = 0
      const timer = setInterval(() => {
        if (n < tokens.length) {
          events.publish(stream, { event: 'token', data: tokens[n]! })
          // The POST response breaks off after three tokens; the rest is published while away.
          if (++n === 3) req.socket.destroy()
        } else {
          clearInterval(timer)
          events.publish(stream, { event: 'rewind-end', data: 'done' })
        }
      }, 15)
      onTestFinished(() => clearInterval(timer))
    })
    app.get('/answers/:n', (req, res) => res.sse(`answer:${req.params.n}`))
    const server = await listenApp(app)

    const { log, closed } = record(server.url('/answers'), {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ prompt: 'say it' }),
      listen: ['token'],
    })
    await closed()
    const received = log.flatMap((entry) => (entry.type === 'token' && 'data' in entry ? [entry.data] : []))
    expect(received.join('')).toBe(tokens.join(''))
    expect(log.at(-1)).toEqual(expect.objectContaining({ type: 'end', reason: 'done' }))
    await sleep(100)
    expect(seen.map((request) => [request.method, request.path, request.body])).toEqual([
      ['POST', '/answers', { prompt: 'say it' }],
      // Express leaves req.body undefined when a request has no body.
      ['GET', '/answers/1', undefined],
    ])
    expect(seen[1]!.lastEventId).toBeDefined()
  })
})

describe('with Rewind responses (streams that end)', () => {
  it('POST starts an answer and streams it; a cut resumes by GET to its Location, every token once, then the end', async () => {
    const { app, events, seen } = expressApp()
    app.post('/answers', async (req, res) => {
      const { id } = await events.responses.start(async function* (signal) {
        for (let i = 0; i < 40 && !signal.aborted; i++) {
          await sleep(5)
          yield { event: 'token', data: `t${i}` }
        }
      })
      res.location(`/answers/${id}`)
      res.sse({ response: id })
      // The POST response breaks off early; the answer goes on without it.
      setTimeout(() => req.socket.destroy(), 40)
    })
    app.get('/answers/:id', (req, res) => res.sse({ response: req.params.id }))
    const server = await listenApp(app)

    const { log, closed } = record(server.url('/answers'), {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ prompt: 'count' }),
      listen: ['token'],
    })
    await closed()
    const tokens = log.flatMap((entry) => (entry.type === 'token' && 'data' in entry ? [entry.data] : []))
    expect(tokens).toEqual(Array.from({ length: 40 }, (_, i) => `t${i}`))
    expect(log.at(-1)).toEqual(expect.objectContaining({ type: 'end', reason: 'done' }))
    await sleep(100)
    // One POST; the resume went to the Location; nothing after the end.
    expect(seen.filter((request) => request.method === 'POST')).toHaveLength(1)
    expect(seen.filter((request) => request.method === 'GET').length).toBeGreaterThanOrEqual(1)
    expect(seen.every((request) => request.method === 'POST' || request.path.startsWith('/answers/'))).toBe(
      true,
    )
  })

  it('a client that comes back after the end (position from storage) gets 204 and stops: end with no-content', async () => {
    const { app, events, seen } = expressApp()
    app.get('/answers/:id', (req, res) => res.sse({ response: req.params.id }))
    const server = await listenApp(app)
    const { id, done } = await events.responses.start(async function* () {
      yield 'only'
    })
    expect(await done).toBe('done')
    const saved = new Map<string, string>()
    const store = {
      get: (key: string) => saved.get(key),
      set: (key: string, value: string) => void saved.set(key, value),
    }
    const first = record(server.url(`/answers/${id}`), { storageKey: 'answer', store })
    await first.closed()
    expect(first.log.at(-1)).toEqual(expect.objectContaining({ type: 'end', reason: 'done' }))
    // A page that saved the end's id before it could clear it (it crashed, say) comes back with it.
    const endId = first.log.flatMap((entry) => ('lastEventId' in entry ? [entry.lastEventId] : [])).at(-1)!
    const again = record(server.url(`/answers/${id}`), { lastEventId: endId })
    await again.closed()
    expect(again.log.at(-1)).toEqual(expect.objectContaining({ type: 'end', reason: 'no-content' }))
    expect(seen.at(-1)?.lastEventId).toBe(endId)
  })
})

describe('a POST answer across page loads (storageKey)', () => {
  type Token = { event: 'token'; data: string }

  /**
   * POST /answers starts an answer (the n-th gets `answer` n, from 0) and streams it with its
   * Location; GET /answers/:id resumes it. Answers end after `ttl` ms when given.
   */
  function answersApp(
    producer: (answer: number) => AsyncIterable<Token>,
    ttl?: number,
  ): ReturnType<typeof expressApp> & { ids: string[]; done: Promise<string>[] } {
    const served = expressApp()
    const ids: string[] = []
    const done: Promise<string>[] = []
    served.app.post('/answers', async (_req, res) => {
      const started = await served.events.responses.start(
        producer(ids.length),
        ttl === undefined ? {} : { ttl },
      )
      ids.push(started.id)
      done.push(started.done)
      res.location(`/answers/${started.id}`)
      res.sse({ response: started.id })
    })
    served.app.get('/answers/:id', (req, res) => res.sse({ response: req.params.id }))
    return { ...served, ids, done }
  }

  /** What a page runs on every load: the same POST, the position kept in `store`. */
  function pageLoad(url: string, store: MemoryStore): Recorded<Record<string, string>> {
    return record(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ prompt: 'count' }),
      storageKey: 'answer',
      store,
      listen: ['token'],
    })
  }

  const tokensOf = (recorded: Recorded<Record<string, string>>) =>
    recorded.log.flatMap((entry) => (entry.type === 'token' && 'data' in entry ? [entry.data] : []))

  /** A promise the test resolves; resolved anyway when the test ends, so no producer waits past it. */
  function gate(): { opened: Promise<void>; open: () => void } {
    let open!: () => void
    const opened = new Promise<void>((resolve) => (open = resolve))
    onTestFinished(() => open())
    return { opened, open }
  }

  it('a page reloaded before the first token resumes the saved answer by GET: the prompt is posted once', async () => {
    const firstToken = gate()
    const { app, seen, ids } = answersApp(async function* () {
      await firstToken.opened
      for (let i = 0; i < 5; i++) yield { event: 'token', data: `t${i}` }
    })
    const server = await listenApp(app)
    const store = memoryStore()

    const first = pageLoad(server.url('/answers'), store)
    await waitUntil(() => first.log.some((entry) => entry.type === 'open'), 'the POST answered')
    // The POST is answered and the answer's URL saved, but no event came: there is no position.
    expect(Object.fromEntries(store.saved)).toEqual({ 'answer:url': server.url(`/answers/${ids[0]}`) })
    first.source.close()

    const second = pageLoad(server.url('/answers'), store)
    await waitUntil(() => second.log.some((entry) => entry.type === 'open'), 'the reloaded page open')
    firstToken.open()
    await second.closed()
    expect(tokensOf(second)).toEqual(['t0', 't1', 't2', 't3', 't4'])
    expect(second.log.at(-1)).toEqual(expect.objectContaining({ type: 'end', reason: 'done' }))
    // One answer: the reloaded page asked for it from its first event, and posted nothing.
    expect(ids).toHaveLength(1)
    expect(seen.map((request) => [request.method, request.path, request.lastEventId])).toEqual([
      ['POST', '/answers', undefined],
      ['GET', `/answers/${ids[0]}`, undefined],
    ])
    expect(store.saved.size).toBe(0)
  })

  it('a saved answer the server no longer knows (404) is forgotten: that load stops, the next one posts afresh', async () => {
    const rest = gate()
    const { app, events, seen, ids, done } = answersApp(async function* (answer) {
      yield { event: 'token', data: `a${answer} t0` }
      yield { event: 'token', data: `a${answer} t1` }
      if (answer === 0) await rest.opened
      yield { event: 'token', data: `a${answer} t2` }
    }, 20)
    const server = await listenApp(app)
    const store = memoryStore()

    const first = pageLoad(server.url('/answers'), store)
    await first.messagesAtLeast(2)
    first.source.close()
    expect([...store.saved.keys()].sort()).toEqual(['answer', 'answer:url'])
    const position = store.saved.get('answer')
    // The tab stays closed while the answer ends and expires.
    rest.open()
    expect(await done[0]).toBe('done')
    const deadline = Date.now() + 5000
    while ((await events.responses.status(ids[0]!)) !== undefined) {
      if (Date.now() > deadline) throw new Error('the answer did not expire')
      await sleep(10)
    }

    const second = pageLoad(server.url('/answers'), store)
    await second.closed()
    expect(second.log).toEqual([
      { type: 'error', code: 'ERR_HTTP_STATUS', status: 404, reconnectDelay: undefined },
    ])
    expect(store.saved.size).toBe(0)

    const third = pageLoad(server.url('/answers'), store)
    await third.closed()
    expect(tokensOf(third)).toEqual(['a1 t0', 'a1 t1', 'a1 t2'])
    expect(third.log.at(-1)).toEqual(expect.objectContaining({ type: 'end', reason: 'done' }))
    expect(seen.map((request) => [request.method, request.path])).toEqual([
      ['POST', '/answers'],
      ['GET', `/answers/${ids[0]}`],
      ['POST', '/answers'],
    ])
    // The second load asked for the saved answer from the saved position.
    expect(seen[1]!.lastEventId).toBe(position)
  })
})

describe('with @rewind/fastify', () => {
  it('resumes across server-side drops with every event exactly once', async () => {
    const fastify = Fastify()
    await fastify.register(ssePlugin, { retry: 10 })
    const sockets: Socket[] = []
    const lastEventIds: (string | undefined)[] = []
    fastify.get('/events', (request, reply) => {
      sockets.push(request.raw.socket)
      lastEventIds.push(request.headers['last-event-id'] as string | undefined)
      return reply.sse('news')
    })
    await fastify.listen({ port: 0, host: '127.0.0.1' })
    onTestFinished(() => fastify.close())
    const { port } = fastify.server.address() as { port: number }
    const { messages, messagesAtLeast, source } = record(`http://127.0.0.1:${port}/events`)
    await waitUntil(() => source.readyState === source.OPEN, 'open')

    const published: string[] = []
    for (let drop = 0; drop < 3; drop++) {
      for (let n = 0; n < 4; n++)
        published.push(await fastify.sse.publish('news', { data: `${published.length}` }))
      await messagesAtLeast(published.length)
      sockets.at(-1)!.destroy()
      published.push(await fastify.sse.publish('news', { data: `away ${drop}` }))
    }
    await messagesAtLeast(published.length)
    expect(messages().map(([id]) => id)).toEqual(published)
    expect(lastEventIds.slice(1)).toEqual([3, 8, 13].map((index) => published[index]))
  })
})
