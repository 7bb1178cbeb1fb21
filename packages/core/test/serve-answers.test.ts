/**
 * What `hub.serve` answers over real `node:http` sockets, and why its subscription says it ended:
 * refusals (a response already started, a responses' stream name, no source), a client already
 * gone, HEAD, a response's 404, 204 and 503, a request closed or left before the response's record
 * arrives, and where a stream's bytes go (the socket, or a `res.write` that middleware wraps). The
 * stream itself (events, resume, limits) is in serve.test.ts.
 */
import type { ServerResponse } from 'node:http'
import { describe, expect, it } from 'vitest'
import { type Listening, listen } from '../../../test/support/listen.js'
import { RawHttpClient } from '../../../test/support/raw-client.js'
import { waitUntil, within } from '../../../test/support/wait.js'
import {
  type CloseReason,
  type Hub,
  RewindError,
  type StreamSource,
  type Subscription,
} from '../src/index.js'
import { MemoryStore } from '../src/memory-store.js'
import { UNAVAILABLE_BODY, UNKNOWN_RESPONSE_BODY } from '../src/serve.js'
import { closesAfterEach } from './helpers/http.js'
import { heldResponses, unreadableResponses } from './helpers/unreadable-responses.js'

const { cleanups, hubFor, started } = closesAfterEach()

/** What the handler of a served request kept: its subscription (or error) and its response. */
interface Served {
  subscription?: Subscription
  error?: unknown
  res: ServerResponse
}

/** A raw client of `path` on `port`, keeping its transcript; destroyed after the test. */
function rawClient(port: number, path = '/', headers: string[] = []): RawHttpClient {
  const client = new RawHttpClient(port, { transcript: true, path, headers })
  cleanups.push(() => client.destroy())
  return client
}

/** The head of a transcript, lowercased. */
function headOf(client: RawHttpClient): string {
  return client.transcript().split('\r\n\r\n')[0]!.toLowerCase()
}

function doneOf(served: Served | undefined): Promise<CloseReason> {
  if (served?.subscription === undefined) throw new Error('nothing was served')
  return within(served.subscription.done, 'the subscription to end', 2000)
}

/** A response that has yielded `first` and then waits until the test ends. */
async function liveResponse(hub: ReturnType<typeof hubFor>, first = 'first'): Promise<string> {
  let stop = () => {}
  const stopped = new Promise<void>((resolve) => {
    stop = resolve
  })
  cleanups.push(() => stop())
  const { id } = await hub.responses.start(async function* () {
    yield first
    await stopped
  })
  return id
}

describe('serve before any subscription', () => {
  it('refuses a response whose headers were sent, with ERR_INVALID_ARGUMENT, and writes nothing to it', async () => {
    const hub = hubFor()
    const served: Served[] = []
    const server = await started(
      listen((req, res) => {
        res.writeHead(200, { 'content-type': 'text/plain' })
        res.write('mine')
        try {
          served.push({ subscription: hub.serve(req, res, 'news'), res })
        } catch (error) {
          served.push({ error, res })
        }
        res.end(', all of it')
      }),
    )
    const response = await fetch(server.url)
    expect(response.headers.get('content-type')).toBe('text/plain')
    expect(await response.text()).toBe('mine, all of it')
    const error = served[0]?.error
    expect(error).toBeInstanceOf(RewindError)
    expect(error).toMatchObject({
      code: 'ERR_INVALID_ARGUMENT',
      message:
        'the response has already started; serve the event stream before writing anything to the response',
    })
    expect(hub.stats()).toMatchObject({ connections: 0, subscribers: 0 })
  })

  it("refuses a responses' stream name and a null source, saying why, before writing anything", async () => {
    const hub = hubFor()
    const refusals: unknown[] = []
    const server = await started(
      listen((req, res) => {
        for (const source of ['rewind:response:r1', null]) {
          try {
            hub.serve(req, res, source as string)
          } catch (error) {
            const { code, field, message } = error as RewindError
            refusals.push({ code, field, message })
          }
        }
        res.end('refused')
      }),
    )
    const response = await fetch(server.url)
    expect(response.status).toBe(200)
    expect(await response.text()).toBe('refused')
    expect(refusals).toEqual([
      {
        code: 'ERR_INVALID_STREAM',
        field: 'stream',
        message:
          'stream names starting with "rewind:response:" belong to responses (got "rewind:response:r1"); serve a response with { response: id } and name your streams otherwise',
      },
      {
        code: 'ERR_INVALID_ARGUMENT',
        field: 'source',
        message: 'the source of an event stream must be a stream name, { response: id } or an async iterable',
      },
    ])
  })

  it('answers a response destroyed already with closed subscriptions that say client, whatever the source', async () => {
    const connects: unknown[] = []
    const records = heldResponses()
    const hub = hubFor({ store: records.store, onConnect: (info) => connects.push(info) })
    const served: Served[] = []
    async function* never() {}
    const server = await started(
      listen((req, res) => {
        res.destroy()
        for (const source of ['news', { response: 'r1' }, never()]) {
          served.push({ subscription: hub.serve(req, res, source), res })
        }
      }),
    )
    const client = rawClient(server.port)
    await client.waitForClose()
    expect(client.transcript()).toBe('')
    expect(served.map((s) => s.subscription?.closed)).toEqual([true, true, true])
    expect(await Promise.all(served.map(doneOf))).toEqual(['client', 'client', 'client'])
    // Not even the response's record was read: the answer was known already.
    expect(records.reads()).toBe(0)
    expect(connects).toEqual([])
    expect(hub.stats()).toMatchObject({ connections: 0, subscribers: 0 })
  })

  it('answers HEAD with the event-stream head and no body, and keeps no subscriber', async () => {
    const hub = hubFor()
    const served: Served[] = []
    const server = await started(
      listen((req, res) => {
        served.push({ subscription: hub.serve(req, res, 'news'), res })
      }),
    )
    const client = new RawHttpClient(server.port, {
      transcript: true,
      request: 'HEAD / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n',
    })
    cleanups.push(() => client.destroy())
    await client.waitForHead()
    expect(headOf(client)).toMatch(/^http\/1\.1 200/)
    expect(headOf(client)).toContain('content-type: text/event-stream; charset=utf-8')
    expect(headOf(client)).toMatch(/cache-control: [^\r\n]*no-store/)
    expect(served[0]?.subscription?.closed).toBe(true)
    expect(await doneOf(served[0])).toBe('end')
    expect(served[0]?.res.writableEnded).toBe(true)
    hub.publish('news', { data: 'not for a HEAD' })
    await new Promise((resolve) => setTimeout(resolve, 50))
    expect(client.transcript().endsWith('\r\n\r\n')).toBe(true)
    expect(client.transcript().split('\r\n\r\n')[1]).toBe('')
    expect(hub.stats()).toMatchObject({ connections: 0, subscribers: 0 })
  })
})

/** Serves `source` at every URL, keeping what each request's handler got back. */
async function serving(
  hub: Hub<string>,
  source: () => StreamSource,
): Promise<Listening & { served: Served[] }> {
  const served: Served[] = []
  const server = await started(
    listen((req, res) => {
      served.push({ subscription: hub.serve(req, res, source()), res })
    }),
  )
  return Object.assign(server, { served })
}

/** What a client is answered when `hub` serves `source`, and what the subscription's `done` said. */
async function answerTo(hub: Hub<string>, source: StreamSource, headers: Record<string, string> = {}) {
  const server = await serving(hub, () => source)
  const response = await fetch(server.url, { headers })
  return {
    status: response.status,
    contentType: response.headers.get('content-type'),
    cacheControl: response.headers.get('cache-control'),
    retryAfter: response.headers.get('retry-after'),
    body: await response.text(),
    done: await doneOf(server.served[0]),
  }
}

describe('serve of a response: the answer, and why its subscription ended', () => {
  it('answers 404 for an unknown id, as JSON not to be stored, and ends with end', async () => {
    expect(await answerTo(hubFor(), { response: 'nope' })).toEqual({
      status: 404,
      contentType: 'application/json; charset=utf-8',
      cacheControl: 'no-store',
      retryAfter: null,
      body: UNKNOWN_RESPONSE_BODY,
      done: 'end',
    })
  })

  it('answers 204, not to be stored, to a client that has had the end, and ends with end', async () => {
    const store = new MemoryStore()
    const hub = hubFor({ store })
    const { id, done } = await hub.responses.start(async function* () {
      yield 'all of it'
    })
    await done
    const endId = store.responses.get(id)?.endId
    expect(endId).toEqual(expect.any(String))
    expect(await answerTo(hub, { response: id }, { 'last-event-id': endId! })).toEqual({
      status: 204,
      contentType: null,
      cacheControl: 'no-store',
      retryAfter: null,
      body: '',
      done: 'end',
    })
  })

  it('answers 503 as JSON with retry-after when the record cannot be read, and ends with error', async () => {
    const errors: unknown[] = []
    const { store, failure } = unreadableResponses()
    const hub = hubFor({ store, onError: (error) => errors.push(error) })
    expect(await answerTo(hub, { response: 'r1' })).toEqual({
      status: 503,
      contentType: 'application/json; charset=utf-8',
      cacheControl: null,
      retryAfter: '1',
      body: UNAVAILABLE_BODY,
      done: 'error',
    })
    expect(errors).toEqual([failure])
  })

  it('ends the stream of a response closed as it opens (by onConnect), before the close could reach it', async () => {
    let subscription: Subscription | undefined
    const hub = hubFor({ heartbeatInterval: 0, onConnect: () => subscription?.close() })
    const id = await liveResponse(hub)
    const server = await started(
      listen((req, res) => {
        subscription = hub.serve(req, res, { response: id })
      }),
    )
    const client = rawClient(server.port)
    await client.waitForEnd(2000)
    expect(client.ended).toBe(true)
    expect(subscription?.closed).toBe(true)
    expect(hub.stats()).toMatchObject({ connections: 0, subscribers: 0 })
  })

  it('ends a served response stream when its subscription is closed', async () => {
    const hub = hubFor({ heartbeatInterval: 0 })
    const id = await liveResponse(hub)
    const server = await serving(hub, () => ({ response: id }))
    const client = rawClient(server.port)
    await client.until(() => client.events.length === 1)
    server.served[0]!.subscription!.close()
    await client.waitForEnd()
    expect(client.ended).toBe(true)
    expect(server.served[0]!.subscription!.closed).toBe(true)
    expect(await doneOf(server.served[0])).toBe('end')
    expect(hub.stats()).toMatchObject({ connections: 0, subscribers: 0 })
  })
})

describe('serve of a response whose record has not arrived yet', () => {
  /** A hub whose response records wait for the test, serving `id` to a raw client; resolves once the record is asked for. */
  async function waitingFor(id: string | undefined) {
    const errors: unknown[] = []
    const records = heldResponses()
    const hub = hubFor({ store: records.store, heartbeatInterval: 0, onError: (error) => errors.push(error) })
    const responseId = id ?? (await liveResponse(hub))
    const server = await serving(hub, () => ({ response: responseId }))
    const client = rawClient(server.port)
    await waitUntil(() => records.reads() === 1, 'the record to be asked for')
    const served = server.served[0]!
    return { hub, records, client, served, subscription: served.subscription!, errors }
  }

  /** The client leaves; resolves once the server has seen it go. */
  async function leave(client: RawHttpClient, served: Served): Promise<void> {
    client.destroy()
    await waitUntil(() => served.res.destroyed, 'the response to be destroyed')
  }

  it('closed first: ends the request at once with a 200 event-stream head and no body, then ends with end', async () => {
    const { hub, records, client, served, subscription } = await waitingFor(undefined)
    subscription.close()
    expect(subscription.closed).toBe(true)
    await client.waitForEnd()
    expect(client.status).toBe(200)
    expect(headOf(client)).toContain('content-type: text/event-stream; charset=utf-8')
    expect(client.text).toBe('')
    // The record arrives after all: the request stays ended.
    records.answer()
    expect(await doneOf(served)).toBe('end')
    await new Promise((resolve) => setTimeout(resolve, 20))
    expect(client.text).toBe('')
    expect(hub.stats()).toMatchObject({ connections: 0, subscribers: 0 })
  })

  it('client gone first: writes nothing, and ends with client', async () => {
    const { records, client, served } = await waitingFor('gone')
    await leave(client, served)
    records.answer()
    expect(await doneOf(served)).toBe('client')
    expect(served.res.headersSent).toBe(false)
  })

  it('closed after the client left: writes nothing, and ends with end', async () => {
    const { records, client, served, subscription } = await waitingFor('gone')
    await leave(client, served)
    subscription.close()
    expect(served.res.headersSent).toBe(false)
    expect(served.res.writableEnded).toBe(false)
    records.answer()
    expect(await doneOf(served)).toBe('end')
  })

  it('closed, then the record cannot be read: no 503 after the 200, and ends with error', async () => {
    const { records, client, served, subscription, errors } = await waitingFor(undefined)
    subscription.close()
    // Before the 200 has finished: the response is not destroyed yet, only its head is sent.
    expect(served.res.destroyed).toBe(false)
    const failure = new Error('store down')
    records.fail(failure)
    expect(await doneOf(served)).toBe('error')
    expect(errors).toEqual([failure])
    await client.waitForEnd()
    expect(client.status).toBe(200)
    expect(client.transcript()).not.toContain('503')
  })

  it('client gone, then the record cannot be read: writes nothing, and ends with error', async () => {
    const { records, client, served, errors } = await waitingFor('gone')
    await leave(client, served)
    const failure = new Error('store down')
    records.fail(failure)
    expect(await doneOf(served)).toBe('error')
    expect(errors).toEqual([failure])
    expect(served.res.headersSent).toBe(false)
  })
})

/** Replaces `res.write` with a wrapper that keeps what it is given, as middleware does. */
function wrapWrite(res: ServerResponse): unknown[] {
  const written: unknown[] = []
  const write = res.write
  res.write = function (this: ServerResponse, ...args: unknown[]) {
    written.push(args[0])
    return (write as (...args: unknown[]) => boolean).apply(this, args)
  } as typeof res.write
  return written
}

describe('where the bytes of a stream go', () => {
  it('straight to the socket of a plain node:http response, past res.write, once the head is out', async () => {
    const hub = hubFor({ heartbeatInterval: 0 })
    const written: unknown[][] = []
    const server = await started(
      listen((req, res) => {
        hub.serve(req, res, 'news')
        // Wrapped after the head chose its transport: the wrapper sees what still goes through res.
        written.push(wrapWrite(res))
      }),
    )
    const client = rawClient(server.port)
    await client.until(() => client.retries.length === 1)
    hub.publish('news', { data: 'one' })
    hub.publish('news', { data: 'two' })
    await client.until(() => client.events.length === 2)
    expect(client.events.map((event) => event.data)).toEqual(['one', 'two'])
    expect(written).toEqual([[]])
  })

  it('through res.write once middleware wrapped it, the head flushed alone when no opening bytes go with it', async () => {
    // No retry hint, and an iterable (no opening id): nothing follows the head, flushed on its own.
    const hub = hubFor({ retry: null, heartbeatInterval: 0 })
    let produce = () => {}
    const produced = new Promise<void>((resolve) => {
      produce = resolve
    })
    cleanups.push(() => produce())
    async function* later() {
      await produced
      yield 'through the middleware'
    }
    let written: unknown[] = []
    const server = await started(
      listen((req, res) => {
        written = wrapWrite(res)
        hub.serve(req, res, later())
      }),
    )
    const client = rawClient(server.port)
    await client.waitForHead(2000)
    expect(client.status).toBe(200)
    expect(headOf(client)).toContain('content-type: text/event-stream; charset=utf-8')
    expect(client.bodyBytes).toBe(0)
    // The event goes through the wrapper.
    produce()
    await client.until(() => client.events.length === 1)
    expect(client.events[0]?.data).toBe('through the middleware')
    expect(written).not.toEqual([])
  })
})
