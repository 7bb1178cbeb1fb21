/**
 * Responses on the Postgres store, across two app instances sharing one real database: a response
 * started on one is replayed, resumed and cancelled from the other, its producer's death is noticed
 * by the other through the lease, and its end is the same everywhere (the behaviours every shared
 * store shows, in test/support); then what is Postgres's own: sweeps, ordered appends, bounds.
 */
import pg from 'pg'
import { afterAll, describe, expect, it } from 'vitest'
import {
  answerInstances,
  answersAcrossInstances,
  dataOf,
  endOf,
  expected,
  tokens,
} from '../../../test/support/answers-across-instances.js'
import { sleep, waitUntil } from '../../../test/support/wait.js'
import { createPostgresStore, type PostgresStore, type PostgresStoreOptions } from '../src/index.js'
import { databaseForTests, dropSchemas, uniqueSchema } from './helpers/database.js'

const url = await databaseForTests('Postgres responses')

describe.skipIf(url === undefined)('responses on the Postgres store, across instances', () => {
  const fixture = answerInstances<PostgresStore, PostgresStoreOptions>({
    namespace: () => uniqueSchema('responses'),
    store: (schema, options) =>
      createPostgresStore({ connectionString: url, schema, poolSize: 4, onError: () => {}, ...options }),
  })
  const { instance, pair, open, namespace } = fixture

  afterAll(async () => {
    await dropSchemas(url!, fixture.namespaces)
  })

  answersAcrossInstances(fixture)

  it('expires an ended response after its TTL, then answers 404, and a sweep deletes its rows', async () => {
    const [a, b] = await pair({ responses: { ttl: 300 } })
    const { id, done } = await a.hub.responses.start(tokens(3, 1))
    await done
    expect((await fetch(b.url(id))).status).toBe(200)
    await sleep(400)
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
    const a = await instance(namespace(), {}, { maxAge: 100 })
    const { id, done } = await a.hub.responses.start(tokens(20, 1))
    expect(await done).toBe('done')
    await sleep(250)
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
