/**
 * What the registry of responses does across instances that share one real Redis, beyond the
 * behaviours every shared store shows: a lapsed lease is ended once however many instances serve
 * the answer, and an end delivered for an answer produced elsewhere reaches this instance's client
 * without touching the producer that runs here.
 */
import { Redis } from 'ioredis'
import { afterAll, describe, expect, it } from 'vitest'
import {
  answerInstances,
  dataOf,
  endOf,
  expected,
  tokens,
} from '../../../test/support/answers-across-instances.js'
import { waitUntil } from '../../../test/support/wait.js'
import { createRedisStore, type RedisStore, type RedisStoreOptions } from '../src/index.js'
import { deleteKeys, redisForTests, uniquePrefix } from './helpers/redis-server.js'

const server = await redisForTests('responses-lease')

const LEASE = 400

describe.skipIf(server === undefined)('the lease and the remote ends of answers on Redis', () => {
  const fixture = answerInstances<RedisStore, RedisStoreOptions>({
    namespace: () => uniquePrefix('responses-lease'),
    store: (prefix, options) =>
      createRedisStore({ redis: server!.url, prefix, onError: () => {}, ...options }),
  })
  const { open, pair } = fixture
  const hubOptions = { responses: { lease: LEASE } }

  afterAll(async () => {
    const admin = new Redis(server!.url)
    for (const prefix of fixture.namespaces) await deleteKeys(admin, prefix)
    await admin.quit()
    await server!.close()
  })

  /** The terminal events the answer's stream holds in Redis. */
  async function storedEnds(prefix: string, id: string): Promise<string[]> {
    const admin = new Redis(server!.url)
    try {
      const entries = await admin.xrange(`${prefix}{rewind:response:${id}}`, '-', '+')
      return entries
        .map(([, fields]) =>
          Object.fromEntries(fields.map((v, i, all) => (i % 2 === 0 ? [v, all[i + 1]] : []))),
        )
        .filter((entry) => entry.event === 'rewind-end')
        .map((entry) => entry.data as string)
    } finally {
      await admin.quit()
    }
  }

  it('a producer that died is ended `failed` once, though two instances serve its clients', async () => {
    const prefix = fixture.namespace()
    const a = await fixture.instance(prefix, hubOptions)
    const b = await fixture.instance(prefix, hubOptions)
    const c = await fixture.instance(prefix, hubOptions)
    const { id } = await a.hub.responses.start(tokens(100_000, 10))
    const onB = await open(b.url(id))
    const onC = await open(c.url(id))
    await waitUntil(() => onB.events.length >= 3 && onC.events.length >= 3, 'tokens on B and C')
    // A can neither append nor renew any more, as if its process had died.
    await a.store.close()
    await waitUntil(() => onB.ended && onC.ended, 'the clients on B and C to end')
    expect([endOf(onB), endOf(onC)]).toEqual(['failed', 'failed'])
    expect(await b.hub.responses.status(id)).toBe('failed')
    expect(await storedEnds(prefix, id)).toEqual(['failed'])
  })

  it('an answer produced elsewhere ends live for its client here, while the producer running here goes on', async () => {
    const prefix = fixture.namespace()
    const reported: unknown[] = []
    const a = await fixture.instance(prefix, hubOptions, { onError: (error) => reported.push(error) })
    const b = await fixture.instance(prefix, hubOptions)
    const mine = await a.hub.responses.start(tokens(100_000, 10))
    let release = () => {}
    const gate = new Promise<void>((resolve) => (release = resolve))
    const theirs = await b.hub.responses.start(async function* () {
      yield* expected(2)
      await gate
    })
    const client = await open(a.url(theirs.id))
    await waitUntil(() => dataOf(client).length === 2, 'the tokens of B’s answer on A')
    // The client is live now: the end reaches it through A's tail, beside A's own producer.
    release()
    expect(await theirs.done).toBe('done')
    await waitUntil(() => client.ended, 'the client of B’s answer on A to end')
    expect(endOf(client), 'the end as delivered, not a check that cut the body').toBe('done')
    expect(reported).toEqual([])
    expect(await a.hub.responses.status(mine.id)).toBe('active')
    expect(await a.hub.responses.cancel(mine.id)).toBe('cancelled')
  })

  it('a cancel from B reaches the producer on A through the store’s tail, long before its lease would', async () => {
    // The producer waits without appending, and a lease of a minute is renewed every 20 s: stopped
    // within seconds, it heard the end itself.
    const [a, b] = await pair({ responses: { lease: 60_000 } })
    const record: { finished?: boolean; aborted?: boolean } = {}
    const { id, done } = await a.hub.responses.start(async function* (signal) {
      try {
        yield* expected(3)
        await new Promise((resolve) => signal.addEventListener('abort', resolve))
      } finally {
        record.finished = true
        record.aborted = signal.aborted
      }
    })
    const client = await open(a.url(id))
    await waitUntil(() => client.events.length >= 3, 'tokens on A')
    expect(await b.hub.responses.cancel(id)).toBe('cancelled')
    await waitUntil(() => record.finished === true, 'the producer to stop', 5000)
    expect(record.aborted).toBe(true)
    expect(await done).toBe('cancelled')
    await waitUntil(() => client.ended, 'the client on A to end')
    expect(endOf(client)).toBe('cancelled')
    expect(await storedEnds(a.store.prefix, id)).toEqual(['cancelled'])
    expect(await b.hub.responses.cancel(id), 'cancelling again changes nothing').toBe('cancelled')
  })
})
