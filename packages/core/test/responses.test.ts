/** Responses (streams that end) on the in-memory store, over real sockets. */
import { EventSource } from 'eventsource'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { type Listening, listen } from '../../../test/support/listen.js'
import { RawHttpClient } from '../../../test/support/raw-client.js'
import { waitUntil } from '../../../test/support/wait.js'
import { createHub, createMemoryStore, type Hub, type HubOptions, RewindError } from '../src/index.js'
import { closesAfterEach } from './helpers/http.js'

const { cleanups, hubFor: socketHub } = closesAfterEach()

function hubFor(options: HubOptions = {}): Hub<string> {
  return socketHub({ heartbeatInterval: 0, ...options })
}

/** Serves `GET /responses/:id` from `hub`, and counts the requests. */
async function serveResponses(hub: Hub<string>): Promise<Listening & { counted: { requests: number } }> {
  const counted = { requests: 0 }
  const server = await listen((req, res) => {
    counted.requests++
    const id = decodeURIComponent((req.url ?? '').split('?')[0]!.split('/')[2] ?? '')
    hub.serve(req, res, { response: id })
  })
  // The raw clients below wait for the socket to close: don't keep ended responses' sockets idle for long.
  server.server.keepAliveTimeout = 20
  cleanups.push(() => server.close())
  return Object.assign(server, { counted })
}

function client(port: number, id: string, lastEventId?: string): RawHttpClient {
  const c = new RawHttpClient(port, {
    transcript: true,
    path: `/responses/${id}`,
    headers: lastEventId === undefined ? [] : [`last-event-id: ${lastEventId}`],
  })
  cleanups.push(() => c.destroy())
  return c
}

/** An async generator of `n` tokens `t0`…, one every `interval` ms (0: as fast as it can), that records its end. */
function tokens(n: number, interval = 0, record: { finished?: boolean; aborted?: boolean } = {}) {
  return async function* (signal: AbortSignal) {
    try {
      for (let i = 0; i < n; i++) {
        if (interval > 0) await new Promise((resolve) => setTimeout(resolve, interval))
        else if (i % 64 === 0) await new Promise((resolve) => setImmediate(resolve))
        yield `t${i}`
      }
    } finally {
      record.finished = true
      record.aborted = signal.aborted
    }
  }
}

const dataOf = (c: RawHttpClient) => c.events.filter((e) => e.event === undefined).map((e) => e.data)
const endOf = (c: RawHttpClient) => c.events.find((e) => e.event === 'rewind-end')
/** The data of `tokens(...)` from t`from` on, `n` of them. */
const tokenData = (n: number, from = 0) => Array.from({ length: n }, (_, i) => `t${from + i}`)

/** A served hub on which a response producing `tokens(...args)` has started. */
async function servedTokens(...args: Parameters<typeof tokens>) {
  const hub = hubFor()
  const server = await serveResponses(hub)
  const { id, done } = await hub.responses.start(tokens(...args))
  return { hub, server, id, done }
}

/** A client of response `id` that leaves once it has seen `n` events. */
async function clientCutAfter(port: number, id: string, n: number): Promise<RawHttpClient> {
  const cut = client(port, id)
  await cut.until(() => cut.events.length >= n)
  cut.destroy()
  return cut
}

/** Resumes `first`, a client cut early, after its last event, and returns the new client once it has ended. */
async function resumeToEnd(port: number, id: string, first: RawHttpClient): Promise<RawHttpClient> {
  const rest = client(port, id, first.events.at(-1)!.id!)
  await rest.whenClosed
  return rest
}

describe('a response', () => {
  it('gives a client without a position the answer from its start, then live tokens, then the end, and ends the body', async () => {
    const { server, id, done } = await servedTokens(30, 5)
    await new Promise((resolve) => setTimeout(resolve, 60))
    const late = client(server.port, id)
    await late.whenClosed
    expect(dataOf(late)).toEqual(tokenData(30))
    expect(endOf(late)?.data).toBe('done')
    expect(await done).toBe('done')
    expect(late.transcript()).toContain('content-type: text/event-stream')
  })

  it('answers 204 to a client that comes back with the id of the end, and the eventsource client stops for good', async () => {
    const { server, id, done } = await servedTokens(5)
    await done
    const source = new EventSource(`${server.url}/responses/${id}`)
    cleanups.push(() => source.close())
    const seen: string[] = []
    source.onmessage = (event) => seen.push(event.data)
    let ended = ''
    source.addEventListener('rewind-end', (event) => {
      ended = event.data
    })
    await waitUntil(
      () => source.readyState === EventSource.CLOSED,
      'source.readyState === EventSource.CLOSED',
      5000,
    )
    expect(seen).toEqual(['t0', 't1', 't2', 't3', 't4'])
    expect(ended).toBe('done')
    // Two requests: the stream, then the reconnect that got 204. No third one ever comes.
    expect(server.counted.requests).toBe(2)
    await new Promise((resolve) => setTimeout(resolve, 100))
    expect(server.counted.requests).toBe(2)
  })

  it('resumes a client cut mid-answer exactly after its last event', async () => {
    const { server, id } = await servedTokens(200, 1)
    const first = await clientCutAfter(server.port, id, 20)
    const second = await resumeToEnd(server.port, id, first)
    expect([...dataOf(first), ...dataOf(second)]).toEqual(tokenData(200))
    expect(endOf(second)?.data).toBe('done')
  })

  it('keeps producing when every client has gone; a client that comes back after the end gets the rest, then the end', async () => {
    const record: { finished?: boolean } = {}
    const { server, id, done } = await servedTokens(50, 2, record)
    const first = await clientCutAfter(server.port, id, 5)
    expect(await done).toBe('done')
    expect(record.finished).toBe(true)
    const back = await resumeToEnd(server.port, id, first)
    expect([...dataOf(first), ...dataOf(back)]).toEqual(tokenData(50))
    expect(endOf(back)?.data).toBe('done')
  })

  it('cancel stops the producer (its signal aborts, its finally runs) and ends every client with `cancelled`', async () => {
    const record: { finished?: boolean; aborted?: boolean } = {}
    const { hub, server, id, done } = await servedTokens(100_000, 5, record)
    const a = client(server.port, id)
    const b = client(server.port, id)
    await Promise.all([a.until(() => a.events.length >= 3), b.until(() => b.events.length >= 3)])
    expect(await hub.responses.cancel(id)).toBe('cancelled')
    await Promise.all([a.whenClosed, b.whenClosed])
    expect(endOf(a)?.data).toBe('cancelled')
    expect(endOf(b)?.data).toBe('cancelled')
    expect(await done).toBe('cancelled')
    await waitUntil(() => record.finished === true, 'record.finished === true', 2000)
    expect(record.aborted).toBe(true)
    expect(await hub.responses.status(id)).toBe('cancelled')
    // Cancelling again changes nothing; an unknown id is undefined.
    expect(await hub.responses.cancel(id)).toBe('cancelled')
    expect(await hub.responses.cancel('nope')).toBeUndefined()
  })

  it('a producer that throws ends the response with `failed`, told to clients and reported once', async () => {
    const errors: unknown[] = []
    const hub = hubFor({ onError: (error) => errors.push(error) })
    const server = await serveResponses(hub)
    const { id, done } = await hub.responses.start(
      (async function* () {
        yield 'a'
        await new Promise((resolve) => setTimeout(resolve, 20))
        throw new Error('model crashed')
      })(),
    )
    const c = client(server.port, id)
    await c.whenClosed
    expect(dataOf(c)).toEqual(['a'])
    expect(endOf(c)?.data).toBe('failed')
    expect(await done).toBe('failed')
    expect(errors).toHaveLength(1)
    expect((errors[0] as Error).message).toBe('model crashed')
  })

  it('refuses a second producer on an existing id with ERR_RESPONSE_EXISTS', async () => {
    const hub = hubFor()
    await hub.responses.start(tokens(3, 50), { id: 'answer-1' })
    await expect(hub.responses.start(tokens(3), { id: 'answer-1' })).rejects.toMatchObject({
      code: 'ERR_RESPONSE_EXISTS',
    })
    await expect(hub.responses.start(tokens(3), { id: 'bad id' })).rejects.toBeInstanceOf(RewindError)
    await expect(hub.responses.start({} as never)).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' })
  })

  it('answers 404 with a JSON body for an unknown id, and 404 again once an ended response has expired', async () => {
    const hub = hubFor({ responses: { ttl: 50 } })
    const server = await serveResponses(hub)
    const unknown = await fetch(`${server.url}/responses/nope`)
    expect(unknown.status).toBe(404)
    expect(await unknown.json()).toMatchObject({ error: expect.stringContaining('unknown response') })
    const { id, done } = await hub.responses.start(tokens(2))
    await done
    expect((await fetch(`${server.url}/responses/${id}`)).status).toBe(200)
    await new Promise((resolve) => setTimeout(resolve, 120))
    expect((await fetch(`${server.url}/responses/${id}`)).status).toBe(404)
    expect(await hub.responses.status(id)).toBeUndefined()
  })

  it('holds 20,000 tokens with the default bounds: a client from the start gets every one', async () => {
    const { server, id, done } = await servedTokens(20_000)
    await done
    const c = client(server.port, id)
    await c.whenClosed
    const data = dataOf(c)
    expect(data).toHaveLength(20_000)
    expect(data[0]).toBe('t0')
    expect(data[19_999]).toBe('t19999')
    expect(c.events.some((e) => e.event === 'rewind-gap')).toBe(false)
  })

  it('past maxEvents says so with the gap signal, then sends what it holds: never a silent hole', async () => {
    const hub = hubFor({ responses: { maxEvents: 10 } })
    const server = await serveResponses(hub)
    const { id, done } = await hub.responses.start(tokens(25))
    await done
    const c = client(server.port, id)
    await c.whenClosed
    const gap = c.events.find((e) => e.event === 'rewind-gap')
    expect(gap?.data).toBe('evicted')
    // The history keeps the newest 10 events: the last 9 tokens and the end.
    expect(dataOf(c)).toEqual(tokenData(9, 16))
    expect(endOf(c)?.data).toBe('done')
  })

  it('ends a response that outlives maxLifetime with `failed` and stops its producer', async () => {
    const hub = hubFor({ responses: { maxLifetime: 80 } })
    const record: { finished?: boolean; aborted?: boolean } = {}
    const { done } = await hub.responses.start(tokens(100_000, 10, record))
    expect(await done).toBe('failed')
    await waitUntil(() => record.finished === true, 'record.finished === true', 2000)
    expect(record.aborted).toBe(true)
  })

  it('closing the hub ends running producers with `failed`, sent to their clients before the streams close', async () => {
    const hub = createHub({ retry: 20, heartbeatInterval: 0 }) as Hub<string>
    const server = await serveResponses(hub)
    const { id, done } = await hub.responses.start(tokens(100_000, 5))
    const c = client(server.port, id)
    await c.until(() => c.events.length >= 2)
    await hub.close()
    await c.whenClosed
    expect(endOf(c)?.data).toBe('failed')
    expect(await done).toBe('failed')
  })

  it('refuses bounds a timer cannot wait for (over MAX_TIMER_DELAY, or under 1 ms)', async () => {
    for (const responses of [{ lease: 2 ** 31 }, { maxLifetime: 2 ** 31 }, { lease: 0 }]) {
      expect(() => createHub({ responses })).toThrow(
        expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT' }),
      )
    }
    await expect(hubFor().responses.start(tokens(1), { ttl: 2 ** 31 })).rejects.toMatchObject({
      code: 'ERR_INVALID_ARGUMENT',
      field: 'ttl',
    })
  })

  it('keeps responses apart from the streams applications publish to', () => {
    const hub = hubFor()
    expect(() => hub.publish('rewind:response:x', { data: 1 })).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_STREAM' }),
    )
  })

  it('resumes exactly across any sequence of cuts (property)', async () => {
    const hub = hubFor()
    const server = await serveResponses(hub)
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 120 }),
        fc.array(fc.integer({ min: 1, max: 40 }), { maxLength: 4 }),
        async (n, cuts) => {
          const { id } = await hub.responses.start(tokens(n, 0))
          const received: string[] = []
          let last: string | undefined
          for (const cut of [...cuts, Number.POSITIVE_INFINITY]) {
            const c = client(server.port, id, last)
            await Promise.race([c.whenClosed, c.until(() => c.events.length >= cut, 5000).catch(() => {})])
            c.destroy()
            for (const event of c.events) {
              if (event.id !== undefined) last = event.id
              received.push(event.event === undefined ? event.data : `<${event.data}>`)
            }
            if (endOf(c) !== undefined) break
          }
          expect(received).toEqual([...tokenData(n), '<done>'])
        },
      ),
      { numRuns: 15 },
    )
  })
})

describe('a client of a response ends when the response does, whatever path it took', () => {
  /** Resolves with how a plain GET for response `id` from `lastEventId` is answered. */
  async function statusOf(port: number, id: string, lastEventId: string | undefined): Promise<number> {
    const res = await fetch(`http://127.0.0.1:${port}/responses/${id}`, {
      headers: lastEventId === undefined ? {} : { 'last-event-id': lastEventId },
    })
    await res.body?.cancel()
    return res.status
  }

  it.each([
    ['a fresh client of an answer longer than maxEvents', undefined],
    ['a client from another lifetime of the history (epoch)', 'zzzz-3'],
    ['a client from before what is kept (evicted)', 'origin'],
  ] as const)(
    'with gapPolicy reset, %s of an ended answer gets the gap signal, then the end of the body, then 204',
    async (_, from) => {
      const store = createMemoryStore()
      const hub = hubFor({ store, gapPolicy: 'reset', responses: { maxEvents: 10 } })
      const server = await serveResponses(hub)
      const { id, done } = await hub.responses.start(tokens(30))
      await done
      // An id from the start of this answer, since evicted by maxEvents.
      const epoch = store.history(`rewind:response:${id}`)!.epoch
      const c = client(server.port, id, from === 'origin' ? `${epoch}-2` : from)
      await waitUntil(
        () => c.events.some((e) => e.event === 'rewind-gap'),
        "c.events.some((e) => e.event === 'rewind-gap')",
        2000,
      )
      await Promise.race([
        c.whenClosed,
        new Promise((_, reject) => setTimeout(() => reject(new Error('never ended')), 2000)),
      ])
      const gap = c.events.find((e) => e.event === 'rewind-gap')!
      expect(await statusOf(server.port, id, gap.id)).toBe(204)
    },
  )

  it('a response dropped (its TTL) while a client replays it slowly ends that client, which then gets 404', async () => {
    const hub = hubFor({ responses: { ttl: 300 } })
    const server = await serveResponses(hub)
    const payload = 'x'.repeat(1000)
    const { id, done } = await hub.responses.start(
      async function* () {
        for (let i = 0; i < 12_000; i++) yield `${i}:${payload}`
      },
      { maxBytes: 64 * 1024 * 1024 },
    )
    await done
    const c = client(server.port, id)
    c.socket.pause()
    await waitUntil(
      () => hub.stats().queuedBytes >= 256 * 1024,
      'hub.stats().queuedBytes >= 256 * 1024',
      5000,
    )
    while ((await hub.responses.status(id)) !== undefined)
      await new Promise((resolve) => setTimeout(resolve, 50))
    c.socket.resume()
    await Promise.race([
      c.whenClosed,
      new Promise((_, reject) => setTimeout(() => reject(new Error('never ended')), 3000)),
    ])
    expect(c.events.some((e) => e.event === 'rewind-end')).toBe(false)
    expect(await statusOf(server.port, id, c.events.at(-1)?.id)).toBe(404)
  })

  it('close() on the subscription before the record is read ends the request at once', async () => {
    const hub = hubFor()
    const { id, done } = await hub.responses.start(tokens(3))
    await done
    const server = await listen((req, res) => hub.serve(req, res, { response: id }).close())
    cleanups.push(() => server.close())
    const started = Date.now()
    const res = await fetch(server.url, { signal: AbortSignal.timeout(2000) })
    expect(res.status).toBe(200)
    expect(await res.text()).toBe('')
    expect(Date.now() - started).toBeLessThan(1000)
  })

  it('a producer that stops without a stored end ends every client here with `failed`, with no id', async () => {
    const store = createMemoryStore()
    const records = store.responses
    const end = records.end.bind(records)
    // The store refuses the terminal event, as a shared store that is down would.
    records.end = () => {
      throw new RewindError('ERR_STORE_UNAVAILABLE', 'down')
    }
    const hub = hubFor({ store })
    const server = await serveResponses(hub)
    let fail: (error: Error) => void = () => {}
    const { id, done } = await hub.responses.start(async function* () {
      yield 't0'
      await new Promise((_, reject) => {
        fail = reject
      })
    })
    const c = client(server.port, id)
    await c.until(() => dataOf(c).length === 1)
    fail(new Error('model went away'))
    await c.whenClosed
    expect(await done).toBe('failed')
    const last = c.events.at(-1)!
    expect([last.event, last.data, last.id]).toEqual(['rewind-end', 'failed', undefined])
    records.end = end
  })
})

describe('appends of a response', () => {
  it('are stored only in order: an append whose predecessor is missing is refused with ERR_HISTORY_LOST', () => {
    const store = createMemoryStore()
    const limits = { maxEvents: 10, maxBytes: 1 << 20, maxLifetime: 1000, ttl: 1000, lease: 1000 }
    store.responses.create('r', 'rewind:response:r', limits)
    const event = { event: undefined, data: 'x', value: 'x' }
    expect(store.responses.append('r', 'rewind:response:r', event, limits, 1)).toBeDefined()
    expect(() => store.responses.append('r', 'rewind:response:r', event, limits, 3)).toThrow(
      expect.objectContaining({ code: 'ERR_HISTORY_LOST' }),
    )
    expect(store.responses.append('r', 'rewind:response:r', event, limits, 2)).toBeDefined()
    expect(store.size('rewind:response:r')).toBe(2)
  })
})
