/**
 * Redis memory stays bounded however much is published: 100,000 publishes through a hub leave about
 * `maxLen` entries (exactly `maxLen` with exact trimming), and the key's memory does not grow with them.
 */
import { createHub, type Hub } from '@rewind/core'
import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createRedisStore, type TrimMode } from '../src/index.js'
import { deleteKeys, redisForTests, uniquePrefix } from './helpers/redis-server.js'

const server = await redisForTests('bounded history')

const PUBLISHES = 100_000
const IN_FLIGHT = 256

/** Publishes `count` events with at most `IN_FLIGHT` appends waiting at any time. */
async function publishMany(hub: Hub<Promise<string>>, stream: string, from: number, count: number) {
  let next = from
  const end = from + count
  const worker = async () => {
    while (next < end) {
      const n = next++
      await hub.publish(stream, { event: 'tick', data: { n, at: 1_700_000_000_000 + n } })
    }
  }
  await Promise.all(Array.from({ length: IN_FLIGHT }, worker))
}

async function memoryUsage(admin: Redis, key: string): Promise<number> {
  // SAMPLES 0 measures every entry instead of estimating from a sample.
  return Number(await admin.call('MEMORY', 'USAGE', key, 'SAMPLES', '0'))
}

describe.skipIf(server === undefined)('bounded history', () => {
  let admin: Redis

  beforeAll(() => {
    admin = new Redis(server!.url)
  })

  afterAll(async () => {
    await admin.quit()
    await server!.close()
  })

  for (const trim of ['approximate', 'exact'] as TrimMode[]) {
    it(`keeps ${trim === 'exact' ? 'exactly' : 'about'} maxLen entries after ${PUBLISHES} publishes (${trim})`, {
      timeout: 45_000,
    }, async () => {
      const prefix = uniquePrefix(`bounded-${trim}`)
      const reported: unknown[] = []
      const store = createRedisStore({
        redis: server!.url,
        prefix,
        maxLen: 1000,
        trim,
        onError: (e) => reported.push(e),
      })
      const hub = createHub({ store })
      const key = store.key('ticks')
      try {
        await publishMany(hub, 'ticks', 0, 2000)
        const early = { length: await admin.xlen(key), bytes: await memoryUsage(admin, key) }
        await publishMany(hub, 'ticks', 2000, PUBLISHES - 2000)
        const length = await admin.xlen(key)
        const bytes = await memoryUsage(admin, key)
        console.info(
          `${trim}: XLEN ${early.length} after 2,000 publishes, ${length} after ${PUBLISHES.toLocaleString('en')}; ` +
            `MEMORY USAGE ${early.bytes} then ${bytes} bytes`,
        )
        if (trim === 'exact') expect(length).toBe(1000)
        else {
          // MAXLEN ~ removes whole listpack nodes (100 entries by default), so it keeps a little more.
          expect(length).toBeGreaterThanOrEqual(1000)
          expect(length).toBeLessThan(1000 + 300)
        }
        // The key's memory depends on maxLen, not on how much was published.
        expect(bytes).toBeLessThan(early.bytes * 1.5)
        expect(bytes).toBeLessThan(1024 * 1024)

        // History still reads and replays from the retained entries only.
        const fresh = await store.read('ticks', null, 10)
        const page = await store.read('ticks', fresh.position.id, 10)
        expect(page.gap).toBeUndefined()
        expect(page.events).toHaveLength(10)
        expect((await store.read('ticks', '0-1', 10)).gap).toBe('evicted')
        expect(hub.stats().published).toBe(PUBLISHES)
        expect(reported).toEqual([])
      } finally {
        await hub.close()
        await store.close()
        await deleteKeys(admin, prefix)
      }
    })
  }
})
