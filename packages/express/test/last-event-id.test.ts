/**
 * Hostile and broken resume positions. Whatever a client sends as its position, the answer is a
 * 200 event stream that starts with the gap signal: any other status would make a browser's
 * EventSource give up for good. Raw sockets send bytes no HTTP client library would.
 */
import { createServer } from 'node:http'
import express from 'express'
import { describe, expect, it } from 'vitest'
import { listenForTest } from '../../../test/support/listen.js'
import {
  getWithLastEventId,
  openStream,
  type RawHttpClient,
  rawRequest,
} from '../../../test/support/raw-client.js'
import { waitUntil } from '../../../test/support/wait.js'
import { useEvents } from './helpers/events.js'

async function startApp(serverOptions?: { insecureHTTPParser: boolean }) {
  const errors: unknown[] = []
  const events = useEvents({ onError: (error) => errors.push(error) })
  const app = express()
  let handled = 0
  app.use(events)
  app.get(
    '/events',
    (_req, _res, next) => {
      handled++
      next()
    },
    events.handler('news'),
  )
  const listening = await listenForTest(createServer(serverOptions ?? {}, app))
  const ids = ['a', 'b'].map((data) => events.publish('news', { data }))
  return { events, errors, listening, ids, handled: () => handled }
}

/** The position just before `id`'s stream's first event: where a client resumes after a gap. */
function beforeFirst(id: string): string {
  return id.replace(/-\d+$/, '-0')
}

/** Asserts a 200 event stream that opens with the gap signal and then replays every retained event. */
async function expectGapThenReplay(
  exchange: RawHttpClient,
  reasons: readonly string[],
  ids: readonly string[],
): Promise<void> {
  await exchange.waitForHead()
  expect(exchange.status).toBe(200)
  expect(exchange.headers['content-type']).toBe('text/event-stream; charset=utf-8')
  const [gap, ...replayed] = await exchange.waitForEvents(3)
  expect(gap!.event).toBe('rewind-gap')
  expect(reasons).toContain(gap!.data)
  // Every event is still retained, so the client resumes from before the first one.
  expect(gap!.id).toBe(beforeFirst(ids[0]!))
  expect(replayed).toEqual([
    { id: ids[0], event: undefined, data: 'a' },
    { id: ids[1], event: undefined, data: 'b' },
  ])
}

describe('a Last-Event-ID header that is not an id this server issued', () => {
  it.each([
    ['non-ASCII UTF-8 (accents, emoji, CJK)', Buffer.from('é😀中文', 'utf8'), 'malformed'],
    ['a lone latin1 byte', Buffer.from([0xff]), 'malformed'],
    ['8 KB of ASCII', 'a'.repeat(8192), 'malformed'],
    ['129 bytes, one past the limit', 'a'.repeat(129), 'malformed'],
    ['a tab inside', 'abc\tdef', 'malformed'],
    // The request's CRLF ends the header: the value is `x`, the rest becomes a header of its own.
    ['a CRLF that tries to inject a header', 'x\r\nX-Injected: 1', 'unknown'],
    ['a CRLF that tries to inject SSE fields', 'x\r\nevent: evil', 'unknown'],
    ['text that looks like SSE', 'id: 9', 'unknown'],
    ['percent-encoded NUL, as text', '%00', 'unknown'],
    ['an id in the future', 'FUTURE', 'unknown'],
    ['an id from another history (a restart)', 'zzzzzzzz-1', 'epoch'],
  ])('%s: 200, then the gap signal, then the retained events', async (_name, value, reason) => {
    const { listening, ids, errors } = await startApp()
    const lastEventId = value === 'FUTURE' ? ids[1]!.replace(/-\d+$/, '-999') : value
    const exchange = rawRequest(listening.port, getWithLastEventId('/events', lastEventId))
    await expectGapThenReplay(exchange, [reason], ids)
    expect(errors).toEqual([])
  })

  it('a repeated header is a gap too, never an error', async () => {
    const { listening, ids } = await startApp()
    const request = Buffer.from(
      `GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\nLast-Event-ID: ${ids[0]}\r\nLast-Event-ID: ${ids[1]}\r\n\r\n`,
    )
    // node:http joins repeated headers into `a, b`, which reads as an id nobody issued.
    await expectGapThenReplay(rawRequest(listening.port, request), ['unknown', 'malformed'], ids)
  })

  it('an empty header is a fresh connection: no gap, live events only', async () => {
    const { listening, events } = await startApp()
    const exchange = rawRequest(listening.port, getWithLastEventId('/events', ''))
    await exchange.waitForHead()
    expect(exchange.status).toBe(200)
    await waitUntil(() => events.hub.stats().subscribers === 1, 'the subscriber')
    const live = events.publish('news', { data: 'c' })
    expect(await exchange.waitForEvents(1)).toEqual([{ id: live, event: undefined, data: 'c' }])
    expect(events.hub.stats().gaps).toBe(0)
  })

  // Node's HTTP parser refuses NUL, lone CR or LF, and other control bytes in a header value with its
  // own 400 before any middleware runs; neither Express nor Rewind sees the request.
  it.each([
    ['NUL', 'ab\0cd'],
    ['a lone CR', 'ab\rcd'],
    ['a lone LF', 'ab\ncd'],
    ['a control byte', 'a\x01b'],
  ])(
    '%s never reaches the app with the default parser, and the server keeps serving',
    async (_name, value) => {
      const { listening, events, handled } = await startApp()
      const refused = rawRequest(listening.port, getWithLastEventId('/events', value))
      await refused.waitForClose()
      expect(refused.status).toBe(400)
      expect(handled()).toBe(0)
      const stream = await openStream(`${listening.url}/events`)
      expect(stream.status).toBe(200)
      expect(handled()).toBe(1)
      expect(events.hub.stats().subscribers).toBe(1)
    },
  )

  it.each([
    ['NUL', 'ab\0cd'],
    ['a control byte', 'a\x01b'],
  ])('%s that reaches the app (insecureHTTPParser) is a malformed gap', async (_name, value) => {
    const { listening, ids } = await startApp({ insecureHTTPParser: true })
    const exchange = rawRequest(listening.port, getWithLastEventId('/events', value))
    await expectGapThenReplay(exchange, ['malformed'], ids)
  })
})

describe('a lastEventId query parameter that is not an id this server issued', () => {
  it.each([
    ['a NUL', '%00', 'malformed'],
    ['a CRLF and an SSE field', '%0D%0Aid%3A%209', 'malformed'],
    ['an emoji', encodeURIComponent('😀'), 'malformed'],
    ['8 KB', 'a'.repeat(8192), 'malformed'],
    ['a lone surrogate escape', '%ED%A0%80', 'malformed'],
    ['an unknown id', 'nope', 'unknown'],
  ])('%s: 200, then the gap signal, then the retained events', async (_name, query, reason) => {
    const { listening, ids } = await startApp()
    const exchange = rawRequest(
      listening.port,
      Buffer.from(`GET /events?lastEventId=${query} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`),
    )
    await expectGapThenReplay(exchange, [reason], ids)
  })
})

describe('after a barrage of bad positions', () => {
  it('nothing crashed, nothing leaked, and a normal client still streams', async () => {
    const { listening, events, errors } = await startApp()
    const values: (string | Buffer)[] = [
      Buffer.from('😀'),
      'a'.repeat(8192),
      'x\r\nX-Injected: 1',
      'zzzzzzzz-1',
      'ab\0cd',
      'ab\rcd',
    ]
    const exchanges = values.map((value) => rawRequest(listening.port, getWithLastEventId('/events', value)))
    await Promise.all(exchanges.map((exchange) => exchange.waitForHead()))
    for (const exchange of exchanges) exchange.destroy()
    await waitUntil(
      () => events.hub.stats().connections === 0,
      () => `every connection to close: ${JSON.stringify(events.hub.stats())}`,
    )
    const stream = await openStream(`${listening.url}/events`)
    const live = events.publish('news', { data: 'still here' })
    expect(await stream.waitForEvents(1)).toEqual([{ id: live, event: undefined, data: 'still here' }])
    expect(events.hub.stats().gaps).toBe(4)
    expect(errors).toEqual([])
  })
})
