/**
 * The source's edges over real sockets: which ids count as repeats and which move the position,
 * a character split across chunks, when the backoff starts over, what a closed source still does
 * (nothing), and the codes, fields and causes of the errors it reports.
 */
import { getEventListeners } from 'node:events'
import { describe, expect, it, onTestFinished } from 'vitest'
import { sleep, waitUntil } from '../../../test/support/wait.js'
import { createEventSource } from '../src/index.js'
import { listen, openStream } from './support/server.js'
import { raisedBy, record } from './support/source.js'
import { memoryStore } from './support/store.js'

/** Long enough for a reconnection that should not happen to have happened (they are set to ~10 ms). */
const QUIET_MS = 300

/** `fetch`, with the body of each answer starting with an empty chunk (as a proxy's may). */
const fetchWithEmptyChunk: typeof fetch = async (input, init) => {
  const response = await fetch(input, init)
  const reader = response.body!.getReader()
  let first = true
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (first) {
        first = false
        controller.enqueue(new Uint8Array(0))
        return
      }
      const { done, value } = await reader.read()
      if (done) controller.close()
      else controller.enqueue(value)
    },
    cancel: (reason) => reader.cancel(reason),
  })
  // A constructed Response has no url, as some fetch polyfills' answers have none.
  return new Response(body, { status: response.status, headers: response.headers })
}

/** A body the test ends or fills, which records being cancelled. */
interface HeldBody {
  stream: ReadableStream<Uint8Array>
  write(text: string): void
  end(): void
  cancelled: boolean
}

function heldBody(): HeldBody {
  let controller!: ReadableStreamDefaultController<Uint8Array>
  const held: HeldBody = {
    stream: new ReadableStream<Uint8Array>({
      start: (c) => {
        controller = c
      },
      cancel: () => {
        held.cancelled = true
      },
    }),
    write: (text) => controller.enqueue(new TextEncoder().encode(text)),
    end: () => controller.close(),
    cancelled: false,
  }
  return held
}

/**
 * `fetch` with the body of each answer replaced by `body`: one that, as some polyfills' do, goes on
 * after the request is aborted, so only cancelling it ends it.
 */
function fetchWithBody(body: HeldBody): typeof fetch {
  return async (input, init) => {
    const response = await fetch(input, init)
    await response.body?.cancel()
    return new Response(body.stream, { status: response.status, headers: response.headers })
  }
}

describe('repeats and the position', () => {
  it('keeps the ids seen across an eviction gap: a replay after it is still dropped', async () => {
    const server = await listen((_req, res) => {
      openStream(res)
      res.write('id: 1\ndata: one\n\nevent: rewind-gap\nid: 9\ndata: evicted\n\nid: 1\ndata: one again\n\n')
      res.write('id: 10\ndata: ten\n\n')
    })
    const { messages, messagesAtLeast } = record(server.url())
    await messagesAtLeast(2)
    expect(messages()).toEqual([
      ['1', 'one'],
      ['10', 'ten'],
    ])
  })

  it('keeps the position on a gap without an id', async () => {
    const server = await listen((_req, res) => {
      openStream(res)
      res.write('id: 3\ndata: three\n\nevent: rewind-gap\ndata: unknown\n\n')
    })
    const { log } = record(server.url())
    await waitUntil(() => log.length === 3, 'the gap')
    expect(log[2]).toEqual({ type: 'gap', reason: 'unknown', lastEventId: '3' })
  })

  it('never takes events without an id, or with an empty one, for repeats', async () => {
    const server = await listen((_req, res) => {
      openStream(res)
      res.write('data: a\n\ndata: b\n\nid: 1\ndata: c\n\nid\ndata: d\n\nid\ndata: e\n\n')
    })
    const { messages, messagesAtLeast } = record(server.url())
    await messagesAtLeast(5)
    expect(messages()).toEqual([
      [undefined, 'a'],
      [undefined, 'b'],
      ['1', 'c'],
      ['', 'd'],
      ['', 'e'],
    ])
  })

  it('drops the event of the position it started from, which it never saw', async () => {
    const server = await listen((_req, res) => {
      openStream(res)
      // A server that resumes inclusively.
      res.write('id: k5\ndata: five\n\nid: k6\ndata: six\n\n')
    })
    const { messages, messagesAtLeast } = record(server.url(), { lastEventId: 'k5' })
    await messagesAtLeast(1)
    await sleep(50)
    expect(messages()).toEqual([['k6', 'six']])
  })

  it('saves a position once, not again when the same id comes back as a position', async () => {
    const server = await listen((_req, res) => {
      openStream(res)
      res.write('id: 11\ndata: eleven\n\nid: 11\n\nevent: rewind-gap\nid: 11\ndata: evicted\n\nid: 12\n\n')
    })
    const writes: string[] = []
    const store = memoryStore()
    const { source } = record(server.url(), {
      storageKey: 'feed',
      store: { ...store, set: (key, id) => void writes.push(`${key}=${id}`) },
    })
    await waitUntil(() => source.lastEventId === '12', 'the last position')
    expect(writes).toEqual(['feed=11', 'feed=12'])
  })

  it('of a POST answered without a Location, saves the position and no URL', async () => {
    const server = await listen((_req, res) => {
      openStream(res)
      res.write('id: 1\ndata: one\n\n')
    })
    const store = memoryStore()
    const { messagesAtLeast } = record(server.url(), { method: 'POST', body: 'x', storageKey: 'k', store })
    await messagesAtLeast(1)
    expect([...store.saved.keys()]).toEqual(['k'])
  })

  it('of a GET stream, reads no saved URL: only a POST is resumed from one', async () => {
    const server = await listen((_req, res) => openStream(res))
    const read: string[] = []
    const store = memoryStore([['k:url', server.url('/elsewhere')]])
    const { log } = record(server.url(), {
      storageKey: 'k',
      store: {
        ...store,
        get: (key) => {
          read.push(key)
          return store.get(key)
        },
      },
    })
    await waitUntil(() => log.length === 1, 'open')
    expect(read).toEqual(['k'])
  })
  it('of a GET stream the resume option turned into a POST, has no URL to resume it by but one an answer named', async () => {
    const server = await listen((_req, res) => {
      openStream(res)
      res.end('retry: 10\nid: 1\ndata: one\n\n')
    })
    const source = createEventSource(server.url('/ask'), {
      resume: ({ attempt }) => (attempt === 1 ? { method: 'POST', body: 'again' } : undefined),
    })
    const errors = raisedBy(source)
    await waitUntil(() => source.readyState === source.CLOSED, 'the stop')
    expect(server.requests.map((request) => request.method)).toEqual(['GET', 'POST'])
    expect(errors.at(-1)).toMatchObject({ code: 'ERR_NOT_RESUMABLE' })
  })
})

describe('the body', () => {
  it('decodes a character whose bytes are split across chunks', async () => {
    const bytes = Buffer.from('data: café ☕\n\n')
    const server = await listen((_req, res) => {
      openStream(res)
      // Splits the two bytes of é, then the three of ☕.
      res.write(bytes.subarray(0, 10))
      setTimeout(() => res.write(bytes.subarray(10, 14)), 30)
      setTimeout(() => res.write(bytes.subarray(14)), 60)
    })
    const { messages, messagesAtLeast } = record(server.url())
    await messagesAtLeast(1)
    expect(messages()).toEqual([[undefined, 'café ☕']])
  })

  it('of a non-event-stream answer is cancelled, so the connection is not left open', async () => {
    let firstClosed = false
    const server = await listen((_req, res, index) => {
      if (index > 0) return openStream(res)
      res.on('close', () => (firstClosed = true))
      res.writeHead(503, { 'content-type': 'text/plain' })
      res.write('busy, and this body never ends')
    })
    const { log } = record(server.url(), { retry: 10 })
    await waitUntil(() => log.some((entry) => entry.type === 'open'), 'the second answer')
    await waitUntil(() => firstClosed, 'the first answer to be closed', 2_000)
  })
})

describe('the backoff', () => {
  it('starts over once bytes flow: a stream that delivers, then drops, is retried beyond maxRetries', async () => {
    const server = await listen((_req, res, index) => {
      openStream(res)
      res.end(`retry: 10\nid: ${index}\ndata: ${index}\n\n`)
    })
    const { log, messagesAtLeast, source } = record(server.url(), { maxRetries: 2, backoffFactor: 1 })
    await messagesAtLeast(5)
    expect(source.readyState).not.toBe(source.CLOSED)
    expect(log.filter((entry) => entry.type === 'error').every((entry) => 'reconnectDelay' in entry)).toBe(
      true,
    )
  })

  it('does not start over on an empty chunk: a stream that ends at once stops after maxRetries', async () => {
    const server = await listen((_req, res) => {
      openStream(res)
      res.end()
    })
    const { source, closed } = record(server.url(), {
      maxRetries: 2,
      retry: 10,
      fetch: fetchWithEmptyChunk,
    })
    const errors = raisedBy(source)
    await closed()
    expect(server.requests).toHaveLength(3)
    // An answer without a url is named by the URL asked for.
    expect(errors.map((error) => [error.code, error.message])).toEqual(
      Array(3).fill(['ERR_NETWORK', `${server.url()} ended the stream`]),
    )
  })
})

describe('a closed source', () => {
  it('closed by the resume option, neither reports the drop nor reconnects', async () => {
    const server = await listen((_req, res) => {
      openStream(res)
      res.end('retry: 10\nid: 1\ndata: one\n\n')
    })
    const { source, log } = record(server.url(), {
      resume: () => {
        source.close()
        return undefined
      },
    })
    await waitUntil(() => source.readyState === source.CLOSED, 'the close')
    await sleep(QUIET_MS)
    expect(log.map((entry) => entry.type)).toEqual(['open', 'message'])
    expect(server.requests).toHaveLength(1)
    expect(source.readyState).toBe(source.CLOSED)
  })

  it('closed by the resume option on a reloaded page, keeps the saved position even if resume throws', async () => {
    const server = await listen((_req, res) => openStream(res))
    const store = memoryStore([['answer', '41']])
    const { source, log } = record(server.url('/answers'), {
      method: 'POST',
      body: 'prompt',
      storageKey: 'answer',
      store,
      resume: () => {
        source.close()
        throw new Error('gone')
      },
    })
    await waitUntil(() => source.readyState === source.CLOSED, 'the close')
    await sleep(50)
    expect(log).toEqual([])
    expect(Object.fromEntries(store.saved)).toEqual({ answer: '41' })
  })

  it('closed by the headers function, sends no request', async () => {
    const server = await listen((_req, res) => openStream(res))
    const fetched: string[] = []
    const { source } = record(server.url(), {
      headers: () => {
        source.close()
        return {}
      },
      fetch: (input, init) => {
        fetched.push(String(input))
        return fetch(input, init)
      },
    })
    await sleep(50)
    expect(fetched).toEqual([])
    expect(server.requests).toHaveLength(0)
  })

  it('closed while fetch answers, opens nothing', async () => {
    const server = await listen((_req, res) => {
      openStream(res)
      res.write('data: one\n\n')
    })
    const { source, log } = record(server.url(), {
      fetch: async (input, init) => {
        const response = await fetch(input, init)
        source.close()
        return response
      },
    })
    await waitUntil(() => server.requests.length === 1, 'the request')
    await sleep(50)
    expect(log).toEqual([])
    expect(source.readyState).toBe(source.CLOSED)
  })

  it('closed by a listener, dispatches none of the other events of the same chunk', async () => {
    const server = await listen((_req, res) => {
      openStream(res)
      res.write('id: 1\ndata: 1\n\nid: 2\ndata: 2\n\nid: 3\ndata: 3\n\n')
    })
    const { source, log } = record(server.url())
    source.addEventListener('message', () => source.close())
    await waitUntil(() => source.readyState === source.CLOSED, 'the close')
    await sleep(50)
    expect(log).toEqual([{ type: 'open' }, { type: 'message', data: '1', id: '1', lastEventId: '1' }])
  })

  it('that ended or was closed, never asks the resume option', async () => {
    const server = await listen((_req, res, index) => {
      if (index === 0) res.writeHead(204).end()
      else openStream(res)
    })
    const asked: number[] = []
    const resume = ({ attempt }: { attempt: number }) => void asked.push(attempt)
    const ended = record(server.url(), { resume })
    await ended.closed()
    const closed = record(server.url(), { resume })
    await waitUntil(() => closed.log.length === 1, 'open')
    closed.source.close()
    await sleep(50)
    expect(asked).toEqual([])
  })

  it('whose body ends after the close, never asks the resume option', async () => {
    const server = await listen((_req, res) => openStream(res))
    const body = heldBody()
    const asked: number[] = []
    const { source, messagesAtLeast } = record(server.url(), {
      fetch: fetchWithBody(body),
      resume: ({ attempt }) => void asked.push(attempt),
    })
    body.write('id: 1\ndata: one\n\n')
    await messagesAtLeast(1)
    source.close()
    body.end()
    await sleep(50)
    expect(asked).toEqual([])
  })

  it('cancels the body when a listener closes it, even a body the abort does not end', async () => {
    const server = await listen((_req, res) => openStream(res))
    const onOpen = heldBody()
    const opened = createEventSource(server.url(), { fetch: fetchWithBody(onOpen) })
    opened.onopen = () => opened.close()
    await waitUntil(() => onOpen.cancelled, 'the body closed on open to be cancelled')

    const onMessage = heldBody()
    const messaged = createEventSource(server.url(), { fetch: fetchWithBody(onMessage) })
    messaged.onmessage = () => messaged.close()
    onMessage.write('data: one\n\ndata: two\n\n')
    await waitUntil(() => onMessage.cancelled, 'the body closed on a message to be cancelled')
  })

  it('closed by shouldRetry, reports no error', async () => {
    const server = await listen((_req, res) => res.writeHead(503).end())
    const { source, log } = record(server.url(), {
      shouldRetry: () => {
        source.close()
        return false
      },
    })
    await waitUntil(() => server.requests.length === 1, 'the request')
    await sleep(50)
    expect(log).toEqual([])
  })

  it('closed by its error listener, arms no timer to reconnect', async () => {
    const server = await listen((_req, res) => res.writeHead(503).end())
    const timers = () => process.getActiveResourcesInfo().filter((type) => type === 'Timeout').length
    const source = createEventSource(server.url(), { retry: 60_000, maxRetryDelay: 60_000 })
    onTestFinished(() => source.close())
    const [atClose, after] = await new Promise<number[]>((resolve) => {
      source.onerror = () => {
        source.close()
        const atClose = timers()
        setImmediate(() => resolve([atClose, timers()]))
      }
    })
    expect(after).toBe(atClose)
  })

  it('leaves no listener on its signal', async () => {
    const server = await listen((_req, res) => openStream(res))
    const controller = new AbortController()
    const { source, log } = record(server.url(), { signal: controller.signal })
    await waitUntil(() => log.length === 1, 'open')
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(1)
    source.close()
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0)
  })

  it('ends a for await loop begun after it closed, and throws the error it stopped on', async () => {
    const server = await listen((_req, res) => res.writeHead(410).end())
    const closed = createEventSource(server.url())
    closed.close()
    const items = []
    for await (const item of closed) items.push(item)
    expect(items).toEqual([])

    const failed = createEventSource(server.url())
    await waitUntil(() => failed.readyState === failed.CLOSED, 'the stop')
    const loop = async () => {
      for await (const _item of failed) {
        // nothing arrives
      }
    }
    await expect(loop()).rejects.toMatchObject({ code: 'ERR_HTTP_STATUS', status: 410 })
  })
})

describe('leaving a for await loop', () => {
  it('lets the listeners have the rest of the stream', async () => {
    const server = await listen((_req, res) => {
      openStream(res)
      res.write('id: 1\ndata: 1\n\nid: 2\ndata: 2\n\nid: 3\ndata: 3\n\n')
    })
    const { source, messagesAtLeast } = record(server.url())
    for await (const item of source) {
      await sleep(10)
      if (item.kind === 'message') break
    }
    await messagesAtLeast(3)
  })
})

describe('the onX handlers and listeners', () => {
  it('read back each handler set, and call ongap with the gap', async () => {
    const server = await listen((_req, res) => {
      openStream(res)
      res.write('event: rewind-gap\nid: 4\ndata: evicted\n\n')
    })
    const source = createEventSource(server.url())
    onTestFinished(() => source.close())
    const handlers = {
      onopen: () => {},
      onerror: () => {},
      ongap: (event: { reason: string; lastEventId: string }) => gaps.push([event.reason, event.lastEventId]),
      onend: () => {},
    }
    const gaps: [string, string][] = []
    source.onopen = handlers.onopen
    source.onerror = handlers.onerror
    source.ongap = handlers.ongap
    source.onend = handlers.onend
    expect([source.onopen, source.onerror, source.ongap, source.onend]).toEqual([
      handlers.onopen,
      handlers.onerror,
      handlers.ongap,
      handlers.onend,
    ])
    await waitUntil(() => gaps.length > 0, 'the gap')
    expect(gaps).toEqual([['evicted', '4']])
  })

  it('removeEventListener removes a listener', async () => {
    const server = await listen((_req, res) => {
      openStream(res)
      res.write('data: one\n\n')
    })
    const { source, messagesAtLeast } = record(server.url())
    const removed: string[] = []
    const listener = () => removed.push('called')
    source.addEventListener('message', listener)
    source.removeEventListener('message', listener)
    await messagesAtLeast(1)
    expect(removed).toEqual([])
  })
})

describe('the errors', () => {
  it('of a too-large event and of data that is not JSON name their option and cause', async () => {
    const server = await listen((req, res) => {
      if (req.url === '/moved') {
        res.writeHead(307, { location: '/events' }).end()
        return
      }
      openStream(res)
      res.write(`data: {\n\ndata: ${'x'.repeat(50)}\n\n`)
    })
    const source = createEventSource(server.url('/moved'), { json: true, maxEventSize: 40 })
    const errors = raisedBy(source)
    await waitUntil(() => source.readyState === source.CLOSED, 'the stop')
    expect(errors[0]).toMatchObject({
      code: 'ERR_INVALID_JSON',
      field: 'json',
      cause: expect.any(SyntaxError),
    })
    // Named by the URL that answered, after the redirect.
    expect(errors[1]).toMatchObject({
      code: 'ERR_EVENT_TOO_LARGE',
      field: 'maxEventSize',
      message: expect.stringMatching(new RegExp(`^an event from ${server.url('/events')} is larger`)),
    })
  })

  it('of an answer without a Content-Type quote it as empty', async () => {
    const server = await listen((_req, res) => res.writeHead(200).end('hello'))
    const source = createEventSource(server.url())
    const errors = raisedBy(source)
    await waitUntil(() => errors.length > 0, 'the stop')
    expect(errors[0]!.message).toMatch(/answered with Content-Type '', not text\/event-stream/)
  })

  it('of an event stream answered without a body is retried as a network error', async () => {
    const server = await listen((_req, res) => {
      openStream(res)
      res.end()
    })
    const source = createEventSource(server.url(), {
      retry: 10,
      fetch: async (input, init) => {
        const response = await fetch(input, init)
        await response.body?.cancel()
        return new Response(null, { status: 200, headers: response.headers })
      },
    })
    onTestFinished(() => source.close())
    const errors = raisedBy(source)
    await waitUntil(() => errors.length >= 2, 'two retries')
    source.close()
    expect(errors[0]).toMatchObject({
      code: 'ERR_NETWORK',
      message: `${server.url()} answered without a body`,
    })
  })

  it('of a POST that cannot be resumed, say why it reconnected and keep the drop as the cause', async () => {
    const server = await listen((_req, res) => {
      openStream(res)
      res.end('retry: 10\nid: 1\ndata: one\n\n')
    })
    const dropped = createEventSource(server.url('/ask'), { method: 'POST', body: 'x' })
    const errors = raisedBy(dropped)
    await waitUntil(() => dropped.readyState === dropped.CLOSED, 'the stop')
    expect(errors[0]).toMatchObject({
      code: 'ERR_NOT_RESUMABLE',
      message: expect.stringMatching(/^POST \S+\/ask: the stream dropped, and a body is never sent twice/),
      cause: { code: 'ERR_NETWORK' },
    })

    const reloaded = createEventSource(server.url('/ask'), {
      method: 'POST',
      body: 'x',
      storageKey: 'k',
      store: memoryStore([['k', '1']]),
    })
    const reloadErrors = raisedBy(reloaded)
    await waitUntil(() => reloaded.readyState === reloaded.CLOSED, 'the stop')
    expect(reloadErrors[0]!.message).toMatch(/: a saved position was found, and a body is never sent twice/)
  })

  it('of a shouldRetry that throws, stop the source with it as the cause', async () => {
    const server = await listen((_req, res) => res.writeHead(503).end())
    const thrown = new Error('cannot decide')
    const source = createEventSource(server.url(), {
      shouldRetry: () => {
        throw thrown
      },
    })
    const errors = raisedBy(source)
    await waitUntil(() => source.readyState === source.CLOSED, 'the stop')
    expect(errors).toEqual([expect.objectContaining({ code: 'ERR_NETWORK', cause: thrown })])
    expect(errors[0]!.message).toBe('the source failed: cannot decide')
  })

  it('of a resume option that throws, stop the source with it as the cause', async () => {
    const server = await listen((_req, res) => {
      openStream(res)
      res.end('retry: 10\nid: 1\ndata: one\n\n')
    })
    const thrown = new Error('no resume today')
    const attempts: number[] = []
    const source = createEventSource(server.url(), {
      resume: ({ attempt }) => {
        attempts.push(attempt)
        if (attempt === 2) throw thrown
        return undefined
      },
    })
    const errors = raisedBy(source)
    await waitUntil(() => source.readyState === source.CLOSED, 'the stop')
    expect(attempts).toEqual([1, 2])
    expect(errors.at(-1)).toMatchObject({
      code: 'ERR_NOT_RESUMABLE',
      message: 'the resume option threw: no resume today',
      cause: thrown,
    })
  })
})

describe('a URL on a page', () => {
  it('is resolved against the page, and an empty one is refused', async () => {
    const server = await listen((_req, res) => openStream(res))
    const global = globalThis as { location?: { href: string } }
    global.location = { href: server.url('/app/page') }
    onTestFinished(() => {
      delete global.location
    })
    const source = createEventSource('events')
    source.close()
    expect(source.url).toBe(server.url('/app/events'))
    expect(() => createEventSource('')).toThrow(/got ''/)
    // Only a string or a URL: not whatever turns into one.
    expect(() => createEventSource({ toString: () => server.url() } as unknown as string)).toThrow(
      /^url must be a URL/,
    )
  })
})
