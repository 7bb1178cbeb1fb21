/**
 * Responses on the Redis store through Redis's faults (a freeze, a restart that lost everything) and
 * its bounds: a stored answer never has a hole, every client ends when the answer does, and an answer
 * is bounded by its own limits, never by a feed's `maxAge`.
 */
import { Redis } from 'ioredis'
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { answerInstances, tokens } from '../../../test/support/answers-across-instances.js'
import { RawClient } from '../../../test/support/sse-clients.js'
import { sleep, waitUntil } from '../../../test/support/wait.js'
import { createRedisStore, type RedisStore, type RedisStoreOptions } from '../src/index.js'
import { deleteKeys, redisForTests, spawnForTests, uniquePrefix } from './helpers/redis-server.js'

const shared = await redisForTests('responses-faults')
const own = await spawnForTests('responses-faults')

const LEASE = 1000
const fast: RedisStoreOptions = { minReconnectDelay: 20, maxReconnectDelay: 100, commandTimeout: 200 }

const prefixes: { url: string; prefix: string }[] = []

// At the top level: its afterEach (closing the instances) runs after this file's, which thaws a frozen Redis.
const fixture = answerInstances<RedisStore, RedisStoreOptions & { redis: string }>({
  namespace: () => uniquePrefix('responses-faults'),
  store: (prefix, options) => createRedisStore({ prefix, ...fast, onError: () => {}, ...options! }),
})

/** Two instances on the Redis at `url`, under one fresh prefix, with `options` for their stores. */
async function pair(url: string, options: RedisStoreOptions = {}) {
  const prefix = uniquePrefix('responses-faults')
  prefixes.push({ url, prefix })
  const hubOptions = { responses: { lease: LEASE } }
  const storeOptions = { ...options, redis: url }
  return [
    await fixture.instance(prefix, hubOptions, storeOptions),
    await fixture.instance(prefix, hubOptions, storeOptions),
  ] as const
}

/** How a resuming reader's answer ended: the terminal event's data, or the status that stopped it. */
type Ending = { end: string } | { status: number }

/**
 * A reader that resumes with its last id whenever its connection ends without the terminal event,
 * as the browser's EventSource and @rewind/client do, until the end, a 204 or a 404 (or `deadline`).
 */
async function read(url: () => string, deadline: number) {
  const received: { id: string | undefined; event: string | undefined; data: string }[] = []
  let last: string | undefined
  let ending: Ending | undefined
  while (ending === undefined && Date.now() < deadline) {
    let client: RawClient
    try {
      client = await RawClient.open(url(), last)
    } catch {
      await sleep(50)
      continue
    }
    if (client.status === 204 || client.status === 404) {
      ending = { status: client.status }
      break
    }
    while (!client.ended && Date.now() < deadline) await sleep(10)
    client.close()
    for (const event of client.events) {
      received.push(event)
      if (event.id !== undefined) last = event.id
      if (event.event === 'rewind-end') ending = { end: event.data }
    }
    if (ending === undefined) await sleep(50)
  }
  return { received, ending, endedAt: Date.now() }
}

/** The reader's invariant: tokens in order without a hole or a duplicate, except right after a gap signal. */
function checkTokens(received: { event: string | undefined; data: string }[], n: number) {
  let expectedNext = 0
  let gapped = false
  const tokensSeen: number[] = []
  for (const event of received) {
    if (event.event === 'rewind-gap') {
      gapped = true
      continue
    }
    if (event.event !== undefined) continue
    const k = Number(event.data.slice(1))
    if (gapped) {
      expect(k, 'a jump only after a gap signal, never backwards').toBeGreaterThanOrEqual(expectedNext)
      gapped = false
    } else expect(k, `token after t${expectedNext - 1}`).toBe(expectedNext)
    tokensSeen.push(k)
    expectedNext = k + 1
  }
  expect(new Set(tokensSeen).size).toBe(tokensSeen.length)
  expect(tokensSeen.length).toBeLessThanOrEqual(n)
  return tokensSeen
}

afterEach(() => {
  own?.signal('SIGCONT')
})

afterAll(async () => {
  for (const { url, prefix } of prefixes) {
    if (url === own?.url && !own.running) continue
    const admin = new Redis(url)
    await deleteKeys(admin, prefix)
    await admin.quit()
  }
  await own?.close()
  await shared?.close()
})

describe.skipIf(shared === undefined)('a response on the Redis store, bounded by its own limits', () => {
  it('stores appends only in order: one whose predecessor is missing is refused, one sent again is not stored twice', async () => {
    const [a] = await pair(shared!.url)
    const records = a.store.responses!
    const limits = { maxEvents: 100, maxBytes: 1 << 20, maxLifetime: 60_000, ttl: 60_000, lease: LEASE }
    const stream = 'rewind:response:ordered'
    await records.create('ordered', stream, limits)
    const event = (data: string) => ({ event: undefined, data, value: data })
    const first = await records.append('ordered', stream, event('a'), limits, 1)
    await expect(records.append('ordered', stream, event('c'), limits, 3)).rejects.toMatchObject({
      code: 'ERR_HISTORY_LOST',
    })
    expect(await records.append('ordered', stream, event('b'), limits, 2)).toBeDefined()
    // Sent again (its reply lost): already stored, so nothing is added.
    expect(await records.append('ordered', stream, event('a'), limits, 1)).toBeDefined()
    const read = await a.store.read(stream, '0-0', 10)
    expect(read.events.map((e) => e.data)).toEqual(['a', 'b'])
    expect(read.events[0]!.id).toBe(first)
  })

  it('honours its maxBytes: the oldest are dropped and a client from the start is told with the gap signal', async () => {
    const [a, b] = await pair(shared!.url)
    const payload = 'x'.repeat(1300)
    const { id, done } = await a.hub.responses.start(
      async function* () {
        for (let i = 0; i < 1000; i++) yield `t${i}:${payload}`
      },
      { maxBytes: 64 * 1024 },
    )
    expect(await done).toBe('done')
    const admin = new Redis(shared!.url)
    const entries = await admin.xlen(`${prefixes.at(-1)!.prefix}{rewind:response:${id}}`)
    await admin.quit()
    expect(entries * 1300).toBeLessThanOrEqual(64 * 1024 + 1400)
    const client = await RawClient.open(b.url(id))
    await waitUntil(() => client.ended, 'the end of the body')
    expect(client.events[0]?.event).toBe('rewind-gap')
    expect(client.events[0]?.data).toBe('evicted')
    const numbers = client.messages
      .filter((m) => m.event === undefined)
      .map((m) => Number(m.data.split(':')[0]!.slice(1)))
    expect(numbers.at(-1)).toBe(999)
    expect(numbers).toEqual(Array.from({ length: numbers.length }, (_, i) => 1000 - numbers.length + i))
    expect(client.events.at(-1)?.data).toBe('done')
  })

  it("is not trimmed by the feeds' maxAge while its TTL runs", async () => {
    const [a, b] = await pair(shared!.url, { maxAge: 100 })
    const { id, done } = await a.hub.responses.start(tokens(60, 0))
    expect(await done).toBe('done')
    await sleep(400)
    const client = await RawClient.open(b.url(id))
    await waitUntil(() => client.ended, 'the end of the body')
    expect(client.gaps).toEqual([])
    expect(client.messages.filter((m) => m.event === undefined).map((m) => m.data)).toEqual(
      Array.from({ length: 60 }, (_, i) => `t${i}`),
    )
  })
})

describe.skipIf(own === undefined)('a response on the Redis store through faults of Redis', () => {
  /**
   * An answer of `n` tokens, one every 10 ms, started on one of a pair on the test's own Redis, and
   * a reader of it on each instance that reads until `readFor` ms from now.
   */
  async function readOnBoth(n: number, readFor: number) {
    const [a, b] = await pair(own!.url)
    const { id, done } = await a.hub.responses.start(tokens(n, 10))
    const deadline = Date.now() + readFor
    return { b, id, done, readers: [read(() => a.url(id), deadline), read(() => b.url(id), deadline)] }
  }

  it('a freeze shorter than the lease costs the answer nothing: every reader gets every token once, then done', async () => {
    const n = 120
    const { b, id, done, readers } = await readOnBoth(n, 15_000)
    await sleep(300)
    own!.signal('SIGSTOP')
    await sleep(400)
    own!.signal('SIGCONT')
    expect(await done).toBe('done')
    for (const reader of await Promise.all(readers)) {
      expect(reader.ending).toEqual({ end: 'done' })
      expect(checkTokens(reader.received, n)).toEqual(Array.from({ length: n }, (_, i) => i))
    }
    const late = await read(() => b.url(id), Date.now() + 5000)
    expect(checkTokens(late.received, n)).toHaveLength(n)
  })

  it('Redis restarted empty mid-answer: readers on both instances end within 1.5 × the lease, without a hole', async () => {
    const n = 400
    const { done, readers } = await readOnBoth(n, 20_000)
    await sleep(500)
    await own!.stop()
    await own!.start()
    const restarted = Date.now()
    expect(await done).toBe('failed')
    for (const reader of await Promise.all(readers)) {
      expect(reader.ending, 'an end: the terminal event, or 404 once the data is gone').toBeDefined()
      if ('end' in reader.ending!) expect(reader.ending.end).toBe('failed')
      else expect(reader.ending!.status).toBe(404)
      expect(reader.endedAt - restarted).toBeLessThan(1.5 * LEASE + 2000)
      expect(checkTokens(reader.received, n).length).toBeLessThan(n)
    }
  })
})
