/**
 * The source's surface besides the stream itself, over real sockets: the `onX` handlers, the
 * `readyState` constants, the origin of its events, and what each error it reports says.
 */
import { describe, expect, it } from 'vitest'
import { waitUntil } from '../../../test/support/wait.js'
import { createEventSource, RewindEventSource, type SourceErrorEvent } from '../src/index.js'
import { listen, openStream } from './support/server.js'
import { raisedBy } from './support/source.js'
import { memoryStore } from './support/store.js'

/** The messages of the errors `source` reports, with the delay before the next attempt. */
function errorsOf(source: RewindEventSource): [string, number | undefined][] {
  const errors: [string, number | undefined][] = []
  source.addEventListener('error', (event: SourceErrorEvent) =>
    errors.push([event.error.message, event.reconnectDelay]),
  )
  return errors
}

describe('the onX handlers', () => {
  it('call the handler set last, none once it is set to null, and read back what was set', async () => {
    const server = await listen((_req, res) => {
      openStream(res)
      res.end(
        'event: rewind-gap\nid: 0\ndata: evicted\n\nid: 1\ndata: one\n\nevent: rewind-end\ndata: done\n\n',
      )
    })
    const seen: string[] = []
    const source = createEventSource(server.url())
    expect([source.onopen, source.onmessage, source.onerror, source.ongap, source.onend]).toEqual([
      null,
      null,
      null,
      null,
      null,
    ])
    const replaced = () => seen.push('replaced message')
    source.onmessage = replaced
    expect(source.onmessage).toBe(replaced)
    const onmessage = (event: { data: string }) => seen.push(`message ${event.data}`)
    source.onmessage = onmessage
    expect(source.onmessage).toBe(onmessage)
    source.onopen = () => seen.push('open')
    source.ongap = (event) => seen.push(`gap ${event.reason}`)
    source.onend = (event) => seen.push(`end ${event.reason}`)
    source.onerror = () => seen.push('error')
    source.onerror = null
    expect(source.onerror).toBeNull()
    source.ongap = 'not a function' as unknown as null
    expect(source.ongap).toBeNull()
    await waitUntil(() => source.readyState === source.CLOSED, 'the end')
    expect(seen).toEqual(['open', 'message one', 'end done'])
  })

  it('call onerror with the error', async () => {
    const server = await listen((_req, res) => res.writeHead(404).end())
    const source = createEventSource(server.url())
    const codes: string[] = []
    source.onerror = (event) => codes.push(event.error.code)
    await waitUntil(() => codes.length > 0, 'the error')
    expect(codes).toEqual(['ERR_HTTP_STATUS'])
  })
})

describe('readyState', () => {
  it('is CONNECTING (0), OPEN (1) or CLOSED (2), as for EventSource', async () => {
    expect([RewindEventSource.CONNECTING, RewindEventSource.OPEN, RewindEventSource.CLOSED]).toEqual([
      0, 1, 2,
    ])
    const server = await listen((_req, res) => openStream(res))
    const source = createEventSource(server.url())
    expect([source.CONNECTING, source.OPEN, source.CLOSED, source.readyState]).toEqual([0, 1, 2, 0])
    await waitUntil(() => source.readyState === 1, 'open')
    source.close()
    expect(source.readyState).toBe(2)
  })
})

describe('the events of a stream', () => {
  it('carry the origin of the URL that answered', async () => {
    const server = await listen((_req, res) => {
      openStream(res)
      res.write('data: one\n\n')
    })
    const source = createEventSource(server.url('/events?x=1'))
    const origins: string[] = []
    source.addEventListener('message', (event) => origins.push(event.origin))
    await waitUntil(() => origins.length > 0, 'an event')
    source.close()
    expect(origins).toEqual([new URL(server.url()).origin])
  })

  it('of a GET stream save no URL to resume, whatever Location the answer names', async () => {
    const server = await listen((_req, res) => {
      openStream(res, { location: '/elsewhere' })
      res.write('id: 1\ndata: one\n\n')
    })
    const store = memoryStore()
    const source = createEventSource(server.url(), { storageKey: 'k', store })
    await waitUntil(() => source.lastEventId === '1', 'an event')
    source.close()
    expect(Object.fromEntries(store.saved)).toEqual({ k: '1' })
  })
})

describe('the errors a source reports', () => {
  it('say that a URL must be absolute in Node', () => {
    expect(() => createEventSource('/events')).toThrow(
      "url must be a URL, absolute where there is no page to resolve it against (Node); got '/events'",
    )
    expect(() => createEventSource(42 as unknown as string)).toThrow(/got '42'/)
  })

  it('say which request failed, and that a stream ended or broke off', async () => {
    const server = await listen((_req, res, index) => {
      openStream(res)
      if (index === 0) res.end('retry: 10\ndata: one\n\n')
      else {
        res.write('data: two\n\n')
        setTimeout(() => res.destroy(), 20)
      }
    })
    const source = createEventSource(server.url())
    const errors = errorsOf(source)
    const raised = raisedBy(source)
    await waitUntil(() => errors.length >= 2, 'two drops')
    source.close()
    expect(errors[0]).toEqual([`${server.url()} ended the stream`, expect.any(Number)])
    expect(errors[1]![0]).toMatch(new RegExp(`^the stream from ${server.url()} broke off: .+`))
    expect(raised.slice(0, 2).map((error) => [error.code, error.cause])).toEqual([
      ['ERR_NETWORK', undefined],
      ['ERR_NETWORK', expect.any(Error)],
    ])

    const refused = createEventSource('http://127.0.0.1:9/', { retry: 10 })
    const refusals = errorsOf(refused)
    const refusedWith = raisedBy(refused)
    await waitUntil(() => refusals.length > 0, 'a refused connection')
    refused.close()
    expect(refusals[0]![0]).toMatch(/^GET http:\/\/127\.0\.0\.1:9\/ failed: .+/)
    expect(refusedWith[0]).toMatchObject({ code: 'ERR_NETWORK', cause: expect.any(TypeError) })
  })

  it('say how long a stalled stream was quiet', async () => {
    const server = await listen((_req, res) => openStream(res))
    const source = createEventSource(server.url(), { stallTimeout: 100 })
    const errors = errorsOf(source)
    await waitUntil(() => errors.length > 0, 'the stall')
    source.close()
    expect(errors[0]![0]).toBe(`no data from ${server.url()} for 100 ms`)
  })

  it('say which event is too large or no JSON, and what to do', async () => {
    const server = await listen((_req, res) => {
      openStream(res)
      res.write(`event: note\ndata: {\n\nid: 2\ndata: }\n\ndata: ${'x'.repeat(50)}\n\n`)
    })
    const source = createEventSource(server.url(), { json: true, maxEventSize: 40 })
    const errors = errorsOf(source)
    await waitUntil(() => source.readyState === source.CLOSED, 'the stop')
    expect(errors).toEqual([
      ["the data of a 'note' event is not JSON: the event was skipped", undefined],
      ["the data of a 'message' event (id 2) is not JSON: the event was skipped", undefined],
      [
        `an event from ${server.url()} is larger than maxEventSize (40 characters): raise the option if such events are expected`,
        undefined,
      ],
    ])
  })
})
