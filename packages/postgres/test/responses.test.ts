/**
 * Responses on the Postgres store, across two app instances sharing one real database: a response
 * started on one is replayed, resumed and cancelled from the other, its producer's death is noticed
 * by the other through the lease, and its end is the same everywhere.
 */
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { createHub, type Hub, type HubOptions, type StreamItem } from '@rewind/core'
import { EventSource } from 'eventsource'
import pg from 'pg'
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { delay, RawClient, waitUntil } from '../../redis/test/helpers/sse.js'
import { createPostgresStore, type PostgresStore, type PostgresStoreOptions } from '../src/index.js'
import { databaseForTests, dropSchemas, uniqueSchema } from './helpers/database.js'

const url = await databaseForTests('Postgres responses')

interface Instance {
  readonly hub: Hub<Promise<string>>
  readonly store: PostgresStore
  readonly http: Server
  readonly requests: { count: number }
  url(id: string): string
  close(): Promise<void>
}

function tokens(n: number, interval: number, record: { finished?: boolean; aborted?: boolean } = {}) {
  return async function* (signal: AbortSignal): AsyncGenerator<StreamItem> {
    try {
      for (let i = 0; i < n; i++) {
        await delay(interval)
        yield `t${i}`
      }
    } finally {
      record.finished = true
      record.aborted = signal.aborted
    }
  }
}

const expected = (n: number) => Array.from({ length: n }, (_, i) => `t${i}`)
const dataOf = (client: RawClient) => client.events.filter((e) => e.event === undefined).map((e) => e.data)
const endOf = (client: RawClient) => client.events.find((e) => e.event === 'rewind-end')?.data

describe.skipIf(url === undefined)('responses on the Postgres store, across instances', () => {
  const instances: Instance[] = []
  const clients: { close(): void }[] = []
  const schemas: string[] = []

  afterEach(async () => {
    for (const client of clients.splice(0)) client.close()
    for (const instance of instances.splice(0)) await instance.close()
  })

  afterAll(async () => {
    await dropSchemas(url!, schemas)
  })

  async function instance(
    schema: string,
    options: Omit<HubOptions, 'store'> = {},
    storeOptions: PostgresStoreOptions = {},
  ): Promise<Instance> {
    const store = createPostgresStore({
      connectionString: url,
      schema,
      poolSize: 4,
      onError: () => {},
      ...storeOptions,
    })
    // Errors are expected where a test cuts an instance off Postgres; the assertions say what clients see.
    const hub = createHub({
      retry: 50,
      heartbeatInterval: 0,
      closeGrace: 200,
      onError: () => {},
      ...options,
      store,
    })
    const requests = { count: 0 }
    const http = createServer((req, res) => {
      requests.count++
      hub.serve(req, res, { response: decodeURIComponent((req.url ?? '').split('/')[2] ?? '') })
    })
    http.keepAliveTimeout = 20
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve))
    const { port } = http.address() as AddressInfo
    const created: Instance = {
      hub,
      store,
      http,
      requests,
      url: (id) => `http://127.0.0.1:${port}/responses/${id}`,
      async close() {
        await hub.close()
        await store.close()
        http.closeAllConnections()
        await new Promise((resolve) => http.close(resolve))
      },
    }
    instances.push(created)
    return created
  }

  async function pair(options: Omit<HubOptions, 'store'> = {}): Promise<[Instance, Instance]> {
    const schema = uniqueSchema('responses')
    schemas.push(schema)
    return [await instance(schema, options), await instance(schema, options)]
  }

  async function open(url: string, lastEventId?: string): Promise<RawClient> {
    const client = await RawClient.open(url, lastEventId)
    clients.push(client)
    return client
  }

  it('replays a response started on A from its start on B, then live, then the end', async () => {
    const [a, b] = await pair()
    const { id, done } = await a.hub.responses.start(tokens(40, 5))
    await delay(50)
    const client = await open(b.url(id))
    await waitUntil(() => client.ended, 'the end of the body')
    expect(dataOf(client)).toEqual(expected(40))
    expect(endOf(client)).toBe('done')
    expect(await done).toBe('done')
    // The id of the end answers 204 on either instance: an EventSource stops there.
    const again = await open(a.url(id), client.lastEventId)
    expect(again.status).toBe(204)
  })

  it('resumes a client cut on A exactly on B', async () => {
    const [a, b] = await pair()
    const { id } = await a.hub.responses.start(tokens(100, 2))
    const first = await open(a.url(id))
    await waitUntil(() => first.events.length >= 15, '15 events')
    first.close()
    const second = await open(b.url(id), first.lastEventId)
    await waitUntil(() => second.ended, 'the end of the body')
    expect([...dataOf(first), ...dataOf(second)]).toEqual(expected(100))
    expect(endOf(second)).toBe('done')
  })

  it('an eventsource client on B stops for good after the end, with every token once', async () => {
    const [a, b] = await pair()
    const { id } = await a.hub.responses.start(tokens(30, 2))
    const source = new EventSource(b.url(id))
    clients.push(source)
    const seen: string[] = []
    source.onmessage = (event) => seen.push(event.data)
    await waitUntil(() => source.readyState === EventSource.CLOSED, 'the client to stop')
    expect(seen).toEqual(expected(30))
    const requests = b.requests.count
    await delay(200)
    expect(b.requests.count).toBe(requests)
  })

  it('a cancel received on B stops the producer running on A within 1 s', async () => {
    const [a, b] = await pair()
    const record: { finished?: boolean; aborted?: boolean } = {}
    const { id, done } = await a.hub.responses.start(tokens(100_000, 5, record))
    const client = await open(b.url(id))
    await waitUntil(() => client.events.length >= 3, 'tokens')
    const started = performance.now()
    expect(await b.hub.responses.cancel(id)).toBe('cancelled')
    expect(await done).toBe('cancelled')
    await waitUntil(() => record.finished === true, 'the producer to stop', 1000)
    const elapsed = performance.now() - started
    expect(record.aborted).toBe(true)
    expect(elapsed).toBeLessThan(1000)
    await waitUntil(() => client.ended, 'the client to end')
    expect(endOf(client)).toBe('cancelled')
    expect(await a.hub.responses.status(id)).toBe('cancelled')
  })

  it('refuses a second producer on the same id from another instance', async () => {
    const [a, b] = await pair()
    await a.hub.responses.start(tokens(5, 20), { id: 'shared-id' })
    await expect(b.hub.responses.start(tokens(5, 1), { id: 'shared-id' })).rejects.toMatchObject({
      code: 'ERR_RESPONSE_EXISTS',
    })
  })

  it('when the producing instance stops renewing its lease, a client on B gets `failed` within 1.5 × the lease', async () => {
    const [a, b] = await pair({ responses: { lease: 400 } })
    const { id } = await a.hub.responses.start(tokens(100_000, 10))
    const client = await open(b.url(id))
    await waitUntil(() => client.events.length >= 3, 'tokens')
    // A's connections to Postgres are gone: it can neither append nor renew, as if the process had died.
    await a.store.close()
    const lost = performance.now()
    await waitUntil(() => client.ended, 'the client to end', 3000)
    expect(endOf(client)).toBe('failed')
    expect(performance.now() - lost).toBeLessThan(600 + 400)
  })

  it('expires an ended response after its TTL, then answers 404, and a sweep deletes its rows', async () => {
    const [a, b] = await pair({ responses: { ttl: 300 } })
    const { id, done } = await a.hub.responses.start(tokens(3, 1))
    await done
    expect((await fetch(b.url(id))).status).toBe(200)
    await delay(400)
    expect((await fetch(b.url(id))).status).toBe(404)
    expect(await b.hub.responses.status(id)).toBeUndefined()
    expect(await a.store.sweep()).toBe(1)
    const admin = new pg.Client({ connectionString: url })
    await admin.connect()
    const { rows } = await admin.query(
      `SELECT (SELECT count(*) FROM "${a.store.schema}".streams) AS streams, (SELECT count(*) FROM "${a.store.schema}".events) AS events`,
    )
    await admin.end()
    expect(rows[0]).toEqual({ streams: '0', events: '0' })
    // The id can be used again, with a new epoch.
    const again = await b.hub.responses.start(tokens(1, 1), { id })
    expect(await again.done).toBe('done')
  })

  it('stores appends only in order: one whose predecessor is missing is refused, a resend is stored once', async () => {
    const [a] = await pair()
    const records = a.store.responses
    const limits = { maxEvents: 100, maxBytes: 1 << 20, maxLifetime: 60_000, ttl: 60_000, lease: 10_000 }
    const stream = 'rewind:response:holes'
    expect(await records.create('holes', stream, limits)).toBe(true)
    const event = (data: string) => ({ event: undefined, data, value: data })
    const first = await records.append('holes', stream, event('a'), limits, 1)
    expect(first).toMatch(/-1$/)
    // The producer's second append was lost on the way: its third is refused, nothing is stored.
    await expect(records.append('holes', stream, event('c'), limits, 3)).rejects.toMatchObject({
      code: 'ERR_HISTORY_LOST',
    })
    const second = await records.append('holes', stream, event('b'), limits, 2)
    // A resend of an append already stored (its reply was lost) gets the same id, and adds nothing.
    expect(await records.append('holes', stream, event('b'), limits, 2)).toBe(second)
    expect(await records.append('holes', stream, event('a'), limits, 1)).toBe(first)
    const page = await a.store.read(stream, (await records.get('holes'))!.origin, 10)
    expect(page.events.map((e) => e.data)).toEqual(['a', 'b'])
  })

  it("an answer is bounded by its own limits, not by the feeds' maxAge: all of it stays past that age", async () => {
    const schema = uniqueSchema('responses')
    schemas.push(schema)
    const a = await instance(schema, {}, { maxAge: 100 })
    const { id, done } = await a.hub.responses.start(tokens(20, 1))
    expect(await done).toBe('done')
    await delay(250)
    const client = await open(a.url(id))
    await waitUntil(() => client.ended, 'the end of the body')
    expect(dataOf(client)).toEqual(expected(20))
    expect(client.events.some((e) => e.event === 'rewind-gap')).toBe(false)
  })

  it('an answer past its own maxBytes gives a client from its start the gap signal, then the rest', async () => {
    const [a] = await pair({ responses: { maxBytes: 10 * (32 + 3) } })
    const { id, done } = await a.hub.responses.start(tokens(50, 0))
    expect(await done).toBe('done')
    const client = await open(a.url(id))
    await waitUntil(() => client.ended, 'the end of the body')
    expect(client.events.filter((e) => e.event === 'rewind-gap').map((e) => e.data)).toEqual(['evicted'])
    const data = dataOf(client)
    expect(data.length).toBeLessThan(11)
    expect(data).toEqual(expected(50).slice(50 - data.length))
    expect(endOf(client)).toBe('done')
  })

  it('holds 5,000 tokens with the default bounds, appended in batches: a client on B gets every one from the start', async () => {
    const [a, b] = await pair()
    const { id, done } = await a.hub.responses.start(
      (async function* () {
        for (let i = 0; i < 5000; i++) yield `t${i}`
      })(),
    )
    expect(await done).toBe('done')
    const client = await open(b.url(id))
    await waitUntil(() => client.ended, 'the end of the body', 20_000)
    expect(dataOf(client)).toEqual(expected(5000))
    expect(client.events.some((e) => e.event === 'rewind-gap')).toBe(false)
  })
})
