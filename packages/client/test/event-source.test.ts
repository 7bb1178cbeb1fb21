/**
 * The source against a hand-written node:http server over real sockets: what it sends, what it
 * delivers, when it reconnects and when it stops for good.
 */
import { describe, expect, it } from 'vitest'
import { createEventSource, type PositionStore, RewindClientError } from '../src/index.js'
import { listen, openStream } from './support/server.js'
import { record } from './support/source.js'
import { memoryStore } from './support/store.js'
import { sleep, waitUntil } from './support/wait.js'

/** Long enough for a reconnection that should not happen to have happened (they are set to ~10 ms). */
const QUIET_MS = 300

describe('a stream', () => {
  it('delivers events and named events, asks for an event stream, and sends no position at first', async () => {
    const server = await listen((_req, res) => {
      openStream(res)
      res.write(
        'id: 1\ndata: one\n\n: a comment\n\nevent: note\nid: 2\ndata: two\ndata: lines\n\ndata: no id\n\n',
      )
    })
    const { source, log, messagesAtLeast } = record(server.url('/events'), { listen: ['note'] })
    await messagesAtLeast(3)
    expect(log).toEqual([
      { type: 'open' },
      { type: 'message', data: 'one', id: '1', lastEventId: '1' },
      { type: 'note', data: 'two\nlines', id: '2', lastEventId: '2' },
      // An event without an id keeps the position, as the spec says.
      { type: 'message', data: 'no id', id: undefined, lastEventId: '2' },
    ])
    expect(source.readyState).toBe(source.OPEN)
    expect(source.lastEventId).toBe('2')
    expect(source.url).toBe(server.url('/events'))
    expect(server.requests).toHaveLength(1)
    expect(server.requests[0]!.headers.accept).toBe('text/event-stream')
    expect(server.requests[0]!.lastEventId).toBeUndefined()
  })

  it("calls fetch unbound, as a browser's fetch requires (it throws 'Illegal invocation' otherwise)", async () => {
    const server = await listen((_req, res) => {
      openStream(res)
      res.write('id: 1\ndata: fetched\n\n')
    })
    const strictFetch = function (this: unknown, input: string | URL | Request, init?: RequestInit) {
      if (this !== undefined && this !== globalThis) throw new TypeError('Illegal invocation')
      return fetch(input, init)
    }
    const { messages, messagesAtLeast } = record(server.url(), { fetch: strictFetch as typeof fetch })
    await messagesAtLeast(1)
    expect(messages()).toEqual([['1', 'fetched']])
  })

  it('sends the lastEventId option on the first request', async () => {
    const server = await listen((_req, res) => openStream(res))
    const { log } = record(server.url(), { lastEventId: 'k3f9x-42' })
    await waitUntil(() => log.length > 0, 'open')
    expect(server.requests[0]!.lastEventId).toBe('k3f9x-42')
  })

  it('reconnects with the last id after the server ends the response, and adopts an id-only block', async () => {
    const server = await listen((_req, res, index) => {
      openStream(res)
      // The first response is a position without an event, as Rewind starts a fresh stream.
      if (index === 0) res.end('retry: 10\nid: head\n\n')
      else if (index === 1) res.end('id: 7\ndata: seven\n\nid: 8\n\n')
      else res.write('data: after\n\n')
    })
    const { messagesAtLeast, source } = record(server.url())
    await messagesAtLeast(2)
    expect(server.requests.map((request) => request.lastEventId)).toEqual([undefined, 'head', '8'])
    expect(source.lastEventId).toBe('8')
  })

  it('calls the headers function before every connection attempt, so each carries a fresh token', async () => {
    const server = await listen((_req, res, index) => {
      openStream(res)
      if (index < 3) res.end(`retry: 10\nid: ${index}\ndata: event ${index}\n\n`)
    })
    const calls: { attempt: number; lastEventId: string }[] = []
    const { messagesAtLeast } = record(server.url(), {
      headers: async (context) => {
        calls.push(context)
        await sleep(1)
        return { authorization: `Bearer token-${calls.length}` }
      },
    })
    await messagesAtLeast(3)
    await waitUntil(() => server.requests.length === 4, 'the fourth request')
    expect(server.requests.map((request) => request.headers.authorization)).toEqual([
      'Bearer token-1',
      'Bearer token-2',
      'Bearer token-3',
      'Bearer token-4',
    ])
    expect(calls).toEqual([
      { attempt: 0, lastEventId: '' },
      { attempt: 1, lastEventId: '0' },
      { attempt: 2, lastEventId: '1' },
      { attempt: 3, lastEventId: '2' },
    ])
  })

  it('never delivers an id twice, however much a reconnection replays', async () => {
    const server = await listen((_req, res, index) => {
      openStream(res)
      if (index === 0) res.end('retry: 10\nid: 1\ndata: 1\n\nid: 2\ndata: 2\n\nid: 3\ndata: 3\n\n')
      // A server that replays too much: ids already delivered, the last one included.
      else
        res.write(
          'id: 2\ndata: 2 again\n\nid: 3\ndata: 3 again\n\nid: 4\ndata: 4\n\nid: 1\ndata: 1 again\n\n',
        )
    })
    const { messages, messagesAtLeast } = record(server.url())
    await messagesAtLeast(4)
    await sleep(50)
    expect(messages()).toEqual([
      ['1', '1'],
      ['2', '2'],
      ['3', '3'],
      ['4', '4'],
    ])
  })

  it('delivers repeated ids when dedupeWindow is 0, for servers that reuse ids', async () => {
    const server = await listen((_req, res) => {
      openStream(res)
      res.write('id: same\ndata: a\n\nid: same\ndata: b\n\n')
    })
    const { messages, messagesAtLeast } = record(server.url(), { dedupeWindow: 0 })
    await messagesAtLeast(2)
    expect(messages()).toEqual([
      ['same', 'a'],
      ['same', 'b'],
    ])
  })

  it("honours the server's retry: as the base of its delays", async () => {
    const server = await listen((_req, res, index) => {
      openStream(res)
      if (index < 6) res.end(`retry: 400\nid: ${index}\ndata: ${index}\n\n`)
    })
    const { log, messagesAtLeast } = record(server.url(), { retry: 5, backoffFactor: 1 })
    await messagesAtLeast(6)
    const delays = log.flatMap((entry) => ('code' in entry ? [entry.reconnectDelay!] : []))
    expect(delays.length).toBeGreaterThanOrEqual(5)
    for (const delay of delays) expect(delay).toBeLessThan(400)
    // With the option's 5 ms base every delay would be under 5 ms; the chance that five delays drawn
    // up to 400 ms all are is (5/400)^5.
    expect(Math.max(...delays)).toBeGreaterThanOrEqual(5)
  })
})

describe('stopping for good', () => {
  it('stops on 204 No Content, forgets the saved position, and makes no more requests', async () => {
    const server = await listen((_req, res, index) => {
      if (index === 0) {
        openStream(res)
        res.end('retry: 10\nid: 5\ndata: last\n\n')
      } else {
        res.writeHead(204).end()
      }
    })
    const saved = new Map<string, string>()
    const store: PositionStore = {
      get: (key) => saved.get(key),
      set: (key, id) => void saved.set(key, id),
      delete: (key) => void saved.delete(key),
    }
    const { source, log, closed } = record(server.url(), { storageKey: 'answer', store })
    await closed()
    expect(log.at(-1)).toEqual({ type: 'end', reason: 'no-content', lastEventId: '5' })
    expect(saved.has('answer')).toBe(false)
    await sleep(QUIET_MS)
    expect(server.requests).toHaveLength(2)
    expect(source.readyState).toBe(source.CLOSED)
  })

  it('stops on 404 and forgets the saved position, which names what the server no longer knows; another 4xx keeps it', async () => {
    const gone = await listen((_req, res) => res.writeHead(404).end())
    const store = memoryStore([['answer', '7']])
    const forgotten = record(gone.url('/answers/1'), { storageKey: 'answer', store })
    await forgotten.closed()
    expect(forgotten.log).toEqual([
      { type: 'error', code: 'ERR_HTTP_STATUS', status: 404, reconnectDelay: undefined },
    ])
    expect(gone.requests.map((request) => request.lastEventId)).toEqual(['7'])
    expect(store.saved.size).toBe(0)

    // A 401 says nothing about the stream: the next load (signed in) still resumes from the position.
    const refusing = await listen((_req, res) => res.writeHead(401).end())
    const kept = memoryStore([['answer', '7']])
    const stopped = record(refusing.url('/answers/1'), { storageKey: 'answer', store: kept })
    await stopped.closed()
    expect(Object.fromEntries(kept.saved)).toEqual({ answer: '7' })
  })

  it('stops on the end event, with its reason, even though the server then closes the response', async () => {
    const server = await listen((_req, res) => {
      openStream(res)
      res.end('retry: 10\nid: a-1\ndata: token\n\nevent: rewind-end\nid: a-2\ndata: cancelled\n\n')
    })
    const { log, closed } = record(server.url())
    await closed()
    expect(log).toEqual([
      { type: 'open' },
      { type: 'message', data: 'token', id: 'a-1', lastEventId: 'a-1' },
      { type: 'end', reason: 'cancelled', lastEventId: 'a-2' },
    ])
    await sleep(QUIET_MS)
    expect(server.requests).toHaveLength(1)
  })

  it('uses the configured names of the gap and end events', async () => {
    const server = await listen((_req, res) => {
      openStream(res)
      res.end('event: hole\nid: 3\ndata: evicted\n\nevent: rewind-end\ndata: x\n\nevent: fin\ndata: done\n\n')
    })
    const { log, closed } = record(server.url(), {
      gapEvent: 'hole',
      endEvent: 'fin',
      listen: ['rewind-end'],
    })
    await closed()
    expect(log.slice(1)).toEqual([
      { type: 'gap', reason: 'evicted', lastEventId: '3' },
      { type: 'rewind-end', data: 'x', id: undefined, lastEventId: '3' },
      { type: 'end', reason: 'done', lastEventId: '3' },
    ])
  })

  it('stops on a 4xx by default, and retries it when shouldRetry says so', async () => {
    const refusing = await listen((_req, res) => res.writeHead(401).end('sign in'))
    const stopped = record(refusing.url())
    await stopped.closed()
    expect(stopped.log).toEqual([
      { type: 'error', code: 'ERR_HTTP_STATUS', status: 401, reconnectDelay: undefined },
    ])
    await sleep(QUIET_MS)
    expect(refusing.requests).toHaveLength(1)

    const flaky = await listen((_req, res, index) => {
      if (index < 2) res.writeHead(401).end()
      else openStream(res)
    })
    const retried = record(flaky.url(), { retry: 10, shouldRetry: (status) => status === 401 })
    await waitUntil(() => retried.source.readyState === retried.source.OPEN, 'open after two 401s')
    expect(flaky.requests).toHaveLength(3)
  })

  it('retries a 5xx and a refused connection, then opens', async () => {
    const server = await listen((_req, res, index) => {
      if (index < 2) res.writeHead(503).end()
      else {
        openStream(res)
        res.write('id: 1\ndata: up\n\n')
      }
    })
    const { log, messagesAtLeast } = record(server.url(), { retry: 10 })
    await messagesAtLeast(1)
    expect(log.map((entry) => ('code' in entry ? `${entry.code} ${entry.status}` : entry.type))).toEqual([
      'ERR_HTTP_STATUS 503',
      'ERR_HTTP_STATUS 503',
      'open',
      'message',
    ])

    // A port nobody listens on (the server above is closed first).
    const closedPort = await listen(() => {})
    const url = closedPort.url()
    await new Promise<void>((resolve) => closedPort.server.close(() => resolve()))
    const refused = record(url, { retry: 10, maxRetries: 2 })
    await refused.closed()
    expect(
      refused.log.map((entry) =>
        'code' in entry ? [entry.code, entry.reconnectDelay === undefined] : entry,
      ),
    ).toEqual([
      ['ERR_NETWORK', false],
      ['ERR_NETWORK', false],
      ['ERR_NETWORK', true],
    ])
  })

  it('stops on a 200 that is not an event stream', async () => {
    const server = await listen((_req, res) =>
      res.writeHead(200, { 'content-type': 'text/html' }).end('<p>login</p>'),
    )
    const { log, closed } = record(server.url(), { retry: 10 })
    await closed()
    expect(log).toEqual([{ type: 'error', code: 'ERR_CONTENT_TYPE', status: 200, reconnectDelay: undefined }])
    await sleep(QUIET_MS)
    expect(server.requests).toHaveLength(1)
  })

  it('stops on an event larger than maxEventSize instead of receiving it again and again', async () => {
    const server = await listen((_req, res) => {
      openStream(res)
      res.end(`retry: 10\nid: 1\ndata: small\n\nid: 2\ndata: ${'x'.repeat(2000)}\n\n`)
    })
    const { log, closed } = record(server.url(), { maxEventSize: 1000 })
    await closed()
    expect(log.slice(1)).toEqual([
      { type: 'message', data: 'small', id: '1', lastEventId: '1' },
      { type: 'error', code: 'ERR_EVENT_TOO_LARGE', status: undefined, reconnectDelay: undefined },
    ])
    await sleep(QUIET_MS)
    expect(server.requests).toHaveLength(1)
  })
})

describe('a stream opened with POST', () => {
  it('is not sent again without a Location or a resume option: it stops and says how to fix it', async () => {
    const server = await listen((_req, res) => {
      openStream(res)
      res.end('retry: 10\nid: 1\ndata: partial answer\n\n')
    })
    const { source, log, closed } = record(server.url('/ask'), { method: 'POST', body: 'prompt' })
    const errors: unknown[] = []
    source.addEventListener('error', (event) => errors.push(event.error))
    await closed()
    expect(log.at(-1)).toEqual({
      type: 'error',
      code: 'ERR_NOT_RESUMABLE',
      status: undefined,
      reconnectDelay: undefined,
    })
    expect(String(errors[0])).toMatch(/Location header .* or pass the resume option/)
    await sleep(QUIET_MS)
    expect(server.requests.map((request) => [request.method, request.body])).toEqual([['POST', 'prompt']])
  })

  it('is resumed as the resume option says, told the response headers and the position', async () => {
    const server = await listen((req, res, index) => {
      openStream(res, { 'x-answer': 'a7' })
      if (index === 0) res.end(`retry: 10\nid: 1\ndata: first\n\n`)
      else res.write(`id: 2\ndata: resumed with ${req.method} ${req.url} ${req.body}\n\n`)
    })
    const contexts: {
      lastEventId: string
      url: string
      method: string
      answer: string | null | undefined
    }[] = []
    const { messagesAtLeast, messages } = record(server.url('/ask'), {
      method: 'POST',
      body: 'prompt',
      resume: ({ lastEventId, url, method, response }) => {
        contexts.push({ lastEventId, url, method, answer: response?.headers.get('x-answer') })
        return {
          url: server.url(`/answers/${response?.headers.get('x-answer')}/resume`),
          method: 'POST',
          body: lastEventId,
        }
      },
    })
    await messagesAtLeast(2)
    expect(messages()[1]).toEqual(['2', 'resumed with POST /answers/a7/resume 1'])
    expect(contexts).toEqual([{ lastEventId: '1', url: server.url('/ask'), method: 'POST', answer: 'a7' }])
    expect(server.requests[1]!.lastEventId).toBe('1')
  })
})

describe('a POST stream with a saved position (a reloaded page)', () => {
  it('saves the Location next to the position, and on the next load resumes by GET without posting', async () => {
    const server = await listen((req, res) => {
      openStream(res, req.method === 'POST' ? { location: '/answers/7' } : {})
      if (req.method === 'POST') res.write('id: 1\ndata: first\n\n')
      else res.end('id: 2\ndata: second\n\nevent: rewind-end\ndata: done\n\n')
    })
    const store = memoryStore([])
    const first = record(server.url('/answers'), {
      method: 'POST',
      body: 'prompt',
      storageKey: 'answer',
      store,
    })
    await first.messagesAtLeast(1)
    expect(Object.fromEntries(store.saved)).toEqual({ answer: '1', 'answer:url': server.url('/answers/7') })
    // The page reloads: the same code runs again, with the same body.
    first.source.close()
    const second = record(server.url('/answers'), {
      method: 'POST',
      body: 'prompt',
      storageKey: 'answer',
      store,
    })
    await second.closed()
    expect(second.messages()).toEqual([['2', 'second']])
    expect(
      server.requests.map((request) => [request.method, request.url, request.body, request.lastEventId]),
    ).toEqual([
      ['POST', '/answers', 'prompt', undefined],
      ['GET', '/answers/7', '', '1'],
    ])
    expect(store.saved.size).toBe(0)
  })

  it('without a saved URL or a resume option, stops with ERR_NOT_RESUMABLE and forgets the position', async () => {
    const server = await listen((_req, res) => openStream(res))
    const store = memoryStore([['answer', '41']])
    const { log, closed } = record(server.url('/answers'), {
      method: 'POST',
      body: 'prompt',
      storageKey: 'answer',
      store,
    })
    await closed()
    expect(log).toEqual([
      { type: 'error', code: 'ERR_NOT_RESUMABLE', status: undefined, reconnectDelay: undefined },
    ])
    expect(server.requests).toHaveLength(0)
    expect(store.saved.size).toBe(0)
  })
})

describe('the gap signal', () => {
  it('is its own event with the reason and the position, and the next request resumes from it', async () => {
    const server = await listen((_req, res, index) => {
      openStream(res)
      if (index === 0)
        res.end(
          'retry: 10\nid: 2\ndata: two\n\nevent: rewind-gap\nid: 40\ndata: evicted\n\nid: 41\ndata: x\n\n',
        )
    })
    const { log, messagesAtLeast } = record(server.url())
    await messagesAtLeast(2)
    await waitUntil(() => server.requests.length === 2, 'the reconnection')
    expect(log.slice(1, 4)).toEqual([
      { type: 'message', data: 'two', id: '2', lastEventId: '2' },
      { type: 'gap', reason: 'evicted', lastEventId: '40' },
      { type: 'message', data: 'x', id: '41', lastEventId: '41' },
    ])
    expect(server.requests[1]!.lastEventId).toBe('41')
  })

  it('forgets the ids seen when the ids start over (a new epoch), so the new ones are delivered', async () => {
    const server = await listen((_req, res, index) => {
      openStream(res)
      if (index === 0) res.end('retry: 10\nid: 1\ndata: old one\n\nid: 2\ndata: old two\n\n')
      // The server restarted and counts from 1 again.
      else
        res.write('event: rewind-gap\nid: 0\ndata: epoch\n\nid: 1\ndata: new one\n\nid: 2\ndata: new two\n\n')
    })
    const { messages, messagesAtLeast } = record(server.url())
    await messagesAtLeast(4)
    expect(messages().map(([, data]) => data)).toEqual(['old one', 'old two', 'new one', 'new two'])
  })
})

describe('options', () => {
  it('parses JSON with json: true, and skips an event that is not JSON with an error event', async () => {
    const server = await listen((_req, res) => {
      openStream(res)
      res.write('id: 1\ndata: {"n":1}\n\nid: 2\ndata: not json\n\nid: 3\ndata: [3]\n\n')
    })
    const { log, messagesAtLeast, source } = record<{ message: { n: number } | number[] }>(server.url(), {
      json: true,
    })
    await messagesAtLeast(2)
    expect(log.slice(1)).toEqual([
      { type: 'message', data: { n: 1 }, id: '1', lastEventId: '1' },
      { type: 'error', code: 'ERR_INVALID_JSON', status: undefined, reconnectDelay: undefined },
      { type: 'message', data: [3], id: '3', lastEventId: '3' },
    ])
    expect(source.readyState).toBe(source.OPEN)
  })

  it('reconnects when no byte arrives for stallTimeout', async () => {
    const server = await listen((_req, res, index) => {
      openStream(res)
      res.write(`retry: 10\nid: ${index}\ndata: then silence\n\n`)
    })
    const { log } = record(server.url(), { stallTimeout: 150 })
    await waitUntil(() => server.requests.length >= 2, 'a reconnection after the stall')
    expect(log).toContainEqual(expect.objectContaining({ type: 'error', code: 'ERR_STALLED' }))
    expect(server.requests[1]!.lastEventId).toBe('0')
  })

  it('resumes from a saved position and saves each new one', async () => {
    const server = await listen((_req, res) => {
      openStream(res)
      res.write('id: 11\ndata: eleven\n\nid: 12\n\n')
    })
    const saved = new Map([['feed', '10']])
    const writes: string[] = []
    const store: PositionStore = {
      get: async (key) => saved.get(key),
      set: (key, id) => {
        writes.push(id)
        saved.set(key, id)
      },
    }
    const asked: number[] = []
    const { messagesAtLeast } = record(server.url(), {
      storageKey: 'feed',
      store,
      lastEventId: 'ignored',
      // Starting a GET stream from a saved position is no reconnection: resume is not asked.
      resume: ({ attempt }) => void asked.push(attempt),
    })
    await messagesAtLeast(1)
    expect(asked).toEqual([])
    await waitUntil(() => writes.length === 2, 'two writes')
    expect(server.requests[0]!.lastEventId).toBe('10')
    expect(writes).toEqual(['11', '12'])
  })

  it('refuses misuse with ERR_INVALID_ARGUMENT and a message that says how to fix it', () => {
    const attempts: [string, () => unknown][] = [
      ['body', () => createEventSource('http://127.0.0.1:9/', { body: 'x' })],
      ['store', () => createEventSource('http://127.0.0.1:9/', { storageKey: 'k' })],
      ['retry', () => createEventSource('http://127.0.0.1:9/', { retry: -1 })],
      ['maxRetries', () => createEventSource('http://127.0.0.1:9/', { maxRetries: 1.5 })],
      ['backoffFactor', () => createEventSource('http://127.0.0.1:9/', { backoffFactor: 0.5 })],
      ['gapEvent', () => createEventSource('http://127.0.0.1:9/', { gapEvent: 'a\nb' })],
      ['lastEventId', () => createEventSource('http://127.0.0.1:9/', { lastEventId: 'a\nb' })],
      ['url', () => createEventSource('')],
      // Node has no page to resolve a relative URL against.
      ['url', () => createEventSource('/events')],
    ]
    for (const [field, attempt] of attempts) {
      let thrown: unknown
      try {
        attempt()
      } catch (error) {
        thrown = error
      }
      expect(thrown, field).toBeInstanceOf(RewindClientError)
      expect((thrown as RewindClientError).code, field).toBe('ERR_INVALID_ARGUMENT')
      expect((thrown as RewindClientError).field, field).toBe(field)
    }
    expect(() => createEventSource('http://127.0.0.1:9/', { body: 'x' })).toThrow(/method: 'POST'/)
    expect(() => createEventSource('http://127.0.0.1:9/', { storageKey: 'k' })).toThrow(/pass a store/)
  })
})

describe('closing', () => {
  it('close() aborts the request: the server sees the connection go', async () => {
    const server = await listen((_req, res) => openStream(res))
    const { source, log } = record(server.url())
    await waitUntil(() => log.length === 1 && server.sockets.size === 1, 'open')
    const [socket] = server.sockets
    source.close()
    await waitUntil(() => socket!.closed, 'the socket to close')
    expect(source.readyState).toBe(source.CLOSED)
    await sleep(QUIET_MS)
    expect(server.requests).toHaveLength(1)
  })

  it('an AbortSignal closes it, even one aborted before it was created', async () => {
    const server = await listen((_req, res) => openStream(res))
    const controller = new AbortController()
    const { source, log } = record(server.url(), { signal: controller.signal })
    await waitUntil(() => log.length === 1, 'open')
    controller.abort()
    expect(source.readyState).toBe(source.CLOSED)

    const early = record(server.url(), { signal: AbortSignal.abort() })
    expect(early.source.readyState).toBe(early.source.CLOSED)
    await sleep(QUIET_MS)
    expect(server.requests).toHaveLength(1)
  })
})

describe('for await', () => {
  it('yields events and gaps, and ends with the stream', async () => {
    const server = await listen((_req, res) => {
      openStream(res)
      res.end(
        'id: 1\ndata: a\n\nevent: rewind-gap\nid: 5\ndata: unknown\n\nevent: note\nid: 6\ndata: b\n\nevent: rewind-end\ndata: done\n\n',
      )
    })
    const source = createEventSource(server.url())
    const items = []
    for await (const item of source) items.push(item)
    expect(items).toEqual([
      { kind: 'message', type: 'message', data: 'a', id: '1', lastEventId: '1' },
      { kind: 'gap', reason: 'unknown', lastEventId: '5' },
      { kind: 'message', type: 'note', data: 'b', id: '6', lastEventId: '6' },
    ])
  })

  it('throws the error that stopped the source', async () => {
    const server = await listen((_req, res) => res.writeHead(403).end())
    const source = createEventSource(server.url())
    const loop = async () => {
      for await (const _item of source) {
        // nothing arrives
      }
    }
    await expect(loop()).rejects.toMatchObject({ code: 'ERR_HTTP_STATUS', status: 403 })
  })

  it('reads no further than the loop has taken: an event waits until the previous one is taken', async () => {
    const server = await listen((_req, res) => {
      openStream(res)
      res.write('id: 1\ndata: 1\n\nid: 2\ndata: 2\n\nid: 3\ndata: 3\n\n')
    })
    const source = createEventSource(server.url())
    const order: string[] = []
    source.addEventListener('message', (event) => order.push(`dispatched ${event.data}`))
    for await (const item of source) {
      order.push(`taken ${item.kind === 'message' ? item.data : ''}`)
      await sleep(30)
      if (item.kind === 'message' && item.data === '3') break
    }
    expect(order).toEqual(['dispatched 1', 'taken 1', 'dispatched 2', 'taken 2', 'dispatched 3', 'taken 3'])
    // Leaving the loop does not close the source: listeners may still want events.
    expect(source.readyState).toBe(source.OPEN)
    source.close()
  })
})
