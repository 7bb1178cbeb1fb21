/**
 * What only the Fetch adapter has: the `Response` itself (its headers, HEAD), the body's pull model
 * (a reader that does not read, `cancel()`), `request.signal`, `maxDuration`, and its options. What
 * every adapter shares is in test/conformance.
 */
import type { AddressInfo } from 'node:net'
import { createAdaptorServer } from '@hono/node-server'
import { createHub } from '@rewind/core'
import { createParser, type EventSourceMessage } from 'eventsource-parser'
import { Hono } from 'hono'
import { afterEach, describe, expect, it } from 'vitest'
import { sleep, waitUntil } from '../../../test/support/wait.js'
import { connect } from '../../express/test/helpers/event-source.js'
import { DEFAULT_FETCH_HEARTBEAT_INTERVAL, type FetchSse, RewindError, sse } from '../src/index.js'

const opened: FetchSse<string | Promise<string>>[] = []
function events(options: Parameters<typeof sse>[0] = {}): FetchSse<string> {
  const made = sse(options) as FetchSse<string>
  opened.push(made)
  return made
}
afterEach(async () => {
  await Promise.all(opened.splice(0).map((made) => made.close()))
})

/** Reads a body as a client would, parsing events as they come. */
function read(response: Response) {
  const parsed: EventSourceMessage[] = []
  const retries: number[] = []
  let text = ''
  let ended = false
  const parser = createParser({ onEvent: (event) => parsed.push(event), onRetry: (ms) => retries.push(ms) })
  const reader = response.body!.getReader()
  const decoder = new TextDecoder()
  const done = (async () => {
    for (;;) {
      const { value, done } = await reader.read()
      if (done) break
      const chunk = decoder.decode(value, { stream: true })
      text += chunk
      parser.feed(chunk)
    }
    ended = true
  })()
  return {
    events: parsed,
    retries,
    reader,
    done,
    get text() {
      return text
    },
    get ended() {
      return ended
    },
  }
}

describe('the Response', () => {
  it('comes with the event-stream headers, and none that belong to the runtime', async () => {
    const live = events()
    const response = await live.serve(new Request('http://localhost/events'), 'news')
    expect(response.status).toBe(200)
    expect(Object.fromEntries(response.headers)).toEqual({
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-store, no-transform',
      'x-accel-buffering': 'no',
    })
    expect(response.headers.has('connection')).toBe(false)
    expect(response.headers.has('transfer-encoding')).toBe(false)
    await response.body!.cancel()
  })

  it('answers HEAD with the headers only, and subscribes nobody', async () => {
    const live = events()
    const response = await live.serve(new Request('http://localhost/events', { method: 'HEAD' }), 'news')
    expect(response.status).toBe(200)
    expect(response.body).toBeNull()
    expect(live.hub.stats().connections).toBe(0)
  })

  it('rejects a bad source with a RewindError before anything is served', async () => {
    const live = events()
    await expect(live.serve(new Request('http://localhost/events'), '')).rejects.toThrow(RewindError)
    await expect(live.serve(new Request('http://localhost/events'), 42 as never)).rejects.toThrow(RewindError)
    await expect(live.serve(new Request('http://localhost/events'), 'rewind:response:x')).rejects.toThrow(
      /belong to responses/,
    )
    expect(live.hub.stats().connections).toBe(0)
  })

  it('reads Last-Event-ID from the header, else from ?lastEventId=', async () => {
    const live = events()
    const [first, second, third] = ['a', 'b', 'c'].map((data) => live.publish('news', { data }))
    const fromHeader = read(
      await live.serve(
        new Request('http://localhost/events', { headers: { 'last-event-id': first! } }),
        'news',
      ),
    )
    const fromQuery = read(
      await live.serve(new Request(`http://localhost/events?lastEventId=${second}`), 'news'),
    )
    await waitUntil(() => fromHeader.events.length === 2 && fromQuery.events.length === 1, 'the replays')
    expect(fromHeader.events.map((event) => event.id)).toEqual([second, third])
    expect(fromQuery.events.map((event) => event.id)).toEqual([third])
    await fromHeader.reader.cancel()
    await fromQuery.reader.cancel()
  })
})

describe('the body', () => {
  it('holds what a reader has not taken, and cuts the client off past maxQueueBytes', async () => {
    const maxQueueBytes = 64 * 1024
    const live = events({ maxQueueBytes, maxEventBytes: 16 * 1024 })
    const response = await live.serve(new Request('http://localhost/events'), 'news')
    // Nobody reads the body: every event waits in the queue the core judges.
    const data = 'x'.repeat(8 * 1024)
    let round = 0
    while (live.hub.stats().slowClosed === 0 && round < 100) {
      for (let i = 0; i < 4; i++) live.publish('news', { data })
      await sleep(1)
      round++
      expect(live.hub.stats().queuedBytes).toBeLessThanOrEqual(maxQueueBytes + 4 * (8 * 1024 + 64))
    }
    expect(live.hub.stats()).toMatchObject({ slowClosed: 1, connections: 0, queuedBytes: 0 })
    // The cut-off errors the body: the runtime drops the connection and the client resumes.
    await expect(response.body!.getReader().read()).rejects.toThrow(/cut off/)
  })

  it('hands a reader everything waiting in one read, and the queue is empty after it', async () => {
    const live = events()
    const response = await live.serve(new Request('http://localhost/events'), 'news')
    for (const data of ['a', 'b', 'c']) live.publish('news', { data })
    await sleep(5)
    expect(live.hub.stats().queuedBytes).toBeGreaterThan(0)
    const reader = response.body!.getReader()
    const { value } = await reader.read()
    const text = new TextDecoder().decode(value)
    expect(text.match(/^data: /gm)).toEqual(['data: ', 'data: ', 'data: '])
    expect(live.hub.stats().queuedBytes).toBe(0)
    await reader.cancel()
  })

  it('ends the subscription when the runtime cancels the body', async () => {
    const live = events()
    const response = await live.serve(new Request('http://localhost/events'), 'news')
    expect(live.hub.stats().connections).toBe(1)
    await response.body!.cancel()
    expect(live.hub.stats().connections).toBe(0)
  })

  it('ends the subscription when only request.signal says the client left', async () => {
    const live = events()
    const controller = new AbortController()
    const response = await live.serve(
      new Request('http://localhost/events', { signal: controller.signal }),
      'news',
    )
    const body = read(response)
    expect(live.hub.stats().connections).toBe(1)
    controller.abort()
    await waitUntil(() => live.hub.stats().connections === 0, 'the subscription to end', 1000)
    body.reader.cancel().catch(() => {})
  })
})

describe('maxDuration', () => {
  it('ends each stream before the limit with retry: 0, and a real client resumes without a gap', async () => {
    const live = events({ maxDuration: 700, maxDurationMargin: 200, retry: 5000 })
    const app = new Hono()
    app.get('/events', (c) => live.serve(c.req.raw, 'news'))
    const server = createAdaptorServer({ fetch: app.fetch })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const port = (server.address() as AddressInfo).port
    try {
      const direct = read(await live.serve(new Request('http://localhost/events'), 'news'))
      const started = Date.now()
      await waitUntil(() => direct.ended, 'the stream to end', 2000)
      expect(Date.now() - started).toBeGreaterThanOrEqual(450)
      expect(Date.now() - started).toBeLessThan(700)
      expect(direct.retries).toEqual([5000, 0])

      const client = connect(`http://127.0.0.1:${port}/events`)
      await client.opened()
      const ids: string[] = []
      // Published across two ends of the stream: the client comes back at once (retry: 0, not the
      // 5 s hint it was given first) and misses nothing.
      for (let i = 0; i < 12; i++) {
        ids.push(live.publish('news', { data: String(i) }))
        await sleep(100)
      }
      const received = await client.take(12, 3000)
      expect(received.map((event) => event.lastEventId)).toEqual(ids)
      expect(client.opens).toBeGreaterThanOrEqual(2)
    } finally {
      ;(server as import('node:http').Server).closeAllConnections()
      await new Promise((resolve) => server.close(resolve))
    }
  })

  it('is checked when the handlers are made', () => {
    expect(() => sse({ maxDuration: 1000, maxDurationMargin: 1000 })).toThrow(/maxDurationMargin/)
    expect(() => sse({ maxDuration: -1 })).toThrow(RewindError)
    expect(() => sse({ maxDuration: 1.5 })).toThrow(/integer/)
  })
})

describe('the heartbeat', () => {
  it('defaults to 4 s on a hub made by sse(): a silent stream is never quiet for 10 s', () => {
    expect(DEFAULT_FETCH_HEARTBEAT_INTERVAL * 2).toBeLessThan(10_000)
  })

  it('comes through the body of a silent stream', async () => {
    const live = events({ heartbeatInterval: 50 })
    const body = read(await live.serve(new Request('http://localhost/events'), 'news'))
    await waitUntil(() => body.text.includes(':\n\n'), 'a heartbeat')
    await body.reader.cancel()
  })
})

describe('shutdown', () => {
  it('closes a hub sse() created', async () => {
    const live = events()
    const body = read(await live.serve(new Request('http://localhost/events'), 'news'))
    await live.close()
    await body.done
    expect(live.hub.closed).toBe(true)
  })

  it('leaves a given hub open: close() ends only the streams these handlers served', async () => {
    const hub = createHub({ heartbeatInterval: 0 })
    const live = events({ hub })
    const other = events({ hub })
    const ours = read(await live.serve(new Request('http://localhost/events'), 'news'))
    const theirs = read(await other.serve(new Request('http://localhost/events'), 'news'))

    // The retry hint goes out when a hub closes: only the hub's owner can send it.
    await expect(live.close({ retry: 1000 })).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' })
    await live.close()
    await ours.done
    expect(hub.closed).toBe(false)
    const id = hub.publish('news', { data: 'still serving' })
    await waitUntil(() => theirs.events.length === 1, 'the other handlers to get the event')
    expect(theirs.events[0]).toMatchObject({ id, data: 'still serving' })
    await hub.close()
    await theirs.done
  })
})
