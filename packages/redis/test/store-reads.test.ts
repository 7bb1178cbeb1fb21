/**
 * The edges of the store's reads and writes on a real Redis, beside the contract in store.test.ts:
 * limits that are not plain counts, a hole right after the first retained entry, entries written by
 * something else than this store, an emptied stream asked with a malformed id, the trimming mode,
 * and a response's stream, which a feed's `maxAge` never trims.
 */
import { RESPONSE_STREAM_PREFIX, type ResponseLimits } from '@rewind/core/adapter'
import { describe, expect, it } from 'vitest'
import { newEvent } from '../../../test/support/store-delivery.js'
import { sleep } from '../../../test/support/wait.js'
import { redisForTests, suiteStores } from './helpers/redis-server.js'

const server = await redisForTests('store reads')

/** The id just before a `<ms>-<seq>` id. */
function before(id: string): string {
  const [ms, seq] = id.split('-').map(BigInt) as [bigint, bigint]
  return seq > 0n ? `${ms}-${seq - 1n}` : `${ms - 1n}-18446744073709551615`
}

describe.skipIf(server === undefined)('RedisStore reads at the edges', () => {
  const redis = suiteStores(server, 'reads')

  /** A store with `count` events appended to stream `s`, and their ids. */
  async function filled(count: number, options = {}) {
    const store = redis.store(options)
    const ids: string[] = []
    for (let i = 0; i < count; i++) ids.push(await store.append('s', newEvent(`e${i}`)))
    return { store, ids }
  }

  it('reads whole events for a fractional limit, and none for a limit of zero or less', async () => {
    const { store, ids } = await filled(5)
    const fraction = await store.read('s', ids[0], 2.9)
    expect(fraction.events.map((event) => event.id)).toEqual(ids.slice(1, 3))
    expect(fraction.done).toBe(false)
    for (const limit of [0, -3, 0.5]) {
      const none = await store.read('s', ids[1], limit)
      expect(none, String(limit)).toEqual({
        events: [],
        position: expect.objectContaining({ id: ids[1] }),
        done: false,
      })
    }
    // At the newest id there is nothing more to read, whatever the limit.
    const atNewest = await store.read('s', ids[4], 0)
    expect(atNewest.done).toBe(true)
    expect(atNewest.position.id).toBe(ids[4])
  })

  it('ends a page at the limit even when it ends just before the newest entry', async () => {
    const { store, ids } = await filled(4)
    const page = await store.read('s', ids[0], 2)
    expect(page.events.map((event) => event.id)).toEqual(ids.slice(1, 3))
    expect(page.done).toBe(false)
    expect(page.position).toBe(page.events[1])
    const rest = await store.read('s', ids[2], 2)
    expect(rest.events.map((event) => event.id)).toEqual([ids[3]])
    expect(rest.done).toBe(true)
  })

  it('tells a hole right after the first retained entry: unknown, not a silent skip', async () => {
    const { store, ids } = await filled(4)
    await redis.admin.xdel(store.key('s'), ids[1]!)
    const result = await store.read('s', ids[0], 10)
    expect(result.gap).toBe('unknown')
    expect(result.events).toEqual([])
    expect(result.position.id).toBe(before(ids[0]!))
    // From the entry after the hole, reading goes on.
    expect((await store.read('s', ids[2], 10)).events.map((event) => event.id)).toEqual([ids[3]])
  })

  it('trusts entries without a recorded predecessor, which something else wrote', async () => {
    const store = redis.store()
    const key = store.key('foreign')
    const ids: string[] = []
    for (const data of ['a', 'b', 'c']) ids.push((await redis.admin.xadd(key, '*', 'data', data)) as string)
    await redis.admin.xdel(key, ids[1]!)
    const result = await store.read('foreign', ids[0], 10)
    expect(result.gap).toBeUndefined()
    expect(result.events.map((event) => [event.id, event.data])).toEqual([[ids[2], 'c']])
    // Its first entry has no predecessor either: an older id than it is evicted, not exact.
    expect((await store.read('foreign', '0-1', 10)).gap).toBe('evicted')
  })

  it('tells a malformed id on a stream maxAge emptied: unknown, never evicted', async () => {
    const store = redis.store({ maxAge: 100, trim: 'exact' })
    const last = await store.append('s', newEvent('a'))
    await sleep(200)
    const emptied = await store.read('s', 'not-an-id', 10)
    expect(emptied).toEqual({
      events: [],
      position: expect.objectContaining({ id: last }),
      gap: 'unknown',
      done: true,
    })
    expect(await redis.admin.xlen(store.key('s'))).toBe(0)
    // Exact at its last id, and a fresh or from-the-start reader is told that id.
    for (const after of [last, undefined, null]) {
      expect(await store.read('s', after, 10), String(after)).toEqual({
        events: [],
        position: expect.objectContaining({ id: last }),
        done: true,
      })
    }
  })

  it('tells any id but 0-0 on a stream that does not exist: unknown, at 0-0', async () => {
    const store = redis.store()
    for (const after of ['0-1', '1-0', 'x']) {
      expect(await store.read('none', after, 10), after).toEqual({
        events: [],
        position: { id: '0-0', major: 0, minor: 0 },
        gap: 'unknown',
        done: true,
      })
    }
  })

  it('trims approximately by default: Redis keeps whole nodes, more than maxLen', async () => {
    const { store } = await filled(30, { maxLen: 5 })
    expect(await redis.admin.xlen(store.key('s'))).toBe(30)
  })

  it("does not trim a response's stream by a feed's maxAge when reading it", async () => {
    const store = redis.store({ maxAge: 100 })
    const id = `r${process.pid}`
    const stream = `${RESPONSE_STREAM_PREFIX}${id}`
    const limits: ResponseLimits = {
      maxEvents: 100,
      maxBytes: 100_000,
      maxLifetime: 60_000,
      ttl: 60_000,
      lease: 60_000,
    }
    await store.responses.create(id, stream, limits)
    const first = await store.responses.append(id, stream, newEvent('t'), limits, 1)
    await sleep(200)
    const read = await store.read(stream, null, 10)
    expect(read.gap).toBeUndefined()
    const all = await store.read(stream, read.position.id, 10)
    expect(all.events.map((event) => event.id)).toEqual([first])
    // A feed of the same store is trimmed by age when read.
    await store.append('feed', newEvent('old'))
    await sleep(200)
    expect((await store.read('feed', null, 10)).position.id).not.toBe('0-0')
    expect(await redis.admin.xlen(store.key('feed'))).toBe(0)
  })

  it('resumes exactly from just before a first entry of a new millisecond, whatever its recorded predecessor', async () => {
    const store = redis.store()
    const key = store.key('explicit')
    // The first retained entry records a predecessor trimmed long ago, not the id just before it.
    await redis.admin.xadd(key, '10-0', 'prev', '7-3', 'event', '', 'string', '1', 'data', 'a')
    await redis.admin.xadd(key, '11-0', 'prev', '10-0', 'event', '', 'string', '1', 'data', 'b')
    for (const after of ['9-18446744073709551615', '7-3']) {
      const result = await store.read('explicit', after, 10)
      expect(result.gap, after).toBeUndefined()
      expect(
        result.events.map((event) => event.id),
        after,
      ).toEqual(['10-0', '11-0'])
    }
    expect((await store.read('explicit', '9-0', 10)).gap).toBe('evicted')
  })

  it('tells an id followed by an entry with an unreadable predecessor: unknown', async () => {
    const store = redis.store()
    const key = store.key('garbled')
    await redis.admin.xadd(key, '5-0', 'prev', '0-0', 'data', 'a')
    await redis.admin.xadd(key, '6-0', 'prev', 'garbage', 'data', 'b')
    const result = await store.read('garbled', '5-0', 10)
    expect(result.gap).toBe('unknown')
    expect(result.events).toEqual([])
  })
})
