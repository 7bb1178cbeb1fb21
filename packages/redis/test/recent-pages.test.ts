/**
 * Readers of the same page share one array (so core encodes its frames into writes once for a crowd
 * resuming from one position), and only while Redis returns the very same events for it.
 */
import { Redis } from 'ioredis'
import { describe, expect, it } from 'vitest'
import { newEvent } from '../../../test/support/store-delivery.js'
import { RecentPages, type RedisEvent } from '../src/events.js'
import { redisForTests, suiteStores } from './helpers/redis-server.js'

const server = await redisForTests('recent pages')

describe.skipIf(server === undefined)('pages read from Redis', () => {
  const redis = suiteStores(server, 'pages')

  it('are the same array for every reader of the same position while nothing changed', async () => {
    const store = redis.store()
    const ids: string[] = []
    for (let i = 0; i < 10; i++) ids.push(await store.append('s', newEvent(`e${i}`)))
    const first = await store.read('s', ids[2], 4)
    const again = await store.read('s', ids[2], 4)
    expect(again.events).toBe(first.events)
    expect(again.events.map((e) => e.data)).toEqual(['e3', 'e4', 'e5', 'e6'])
    // Another position, or another limit, is another page.
    expect((await store.read('s', ids[3], 4)).events).not.toBe(first.events)
    expect((await store.read('s', ids[2], 5)).events).not.toBe(first.events)
  })

  it('are read anew when Redis returns other events for the same position', async () => {
    const store = redis.store()
    const ids: string[] = []
    for (let i = 0; i < 6; i++) ids.push(await store.append('s', newEvent(`old${i}`)))
    const before = await store.read('s', ids[0], 3)
    expect(before.events.map((e) => e.data)).toEqual(['old1', 'old2', 'old3'])
    // Redis loses the stream and is written again under the same ids, with other data.
    const admin = new Redis(server!.url)
    try {
      const streamKey = store.key('s')
      const entries = await admin.xrange(streamKey, '-', '+')
      await admin.del(streamKey)
      for (const [id, fields] of entries) {
        const replaced = fields.map((value, i) =>
          i % 2 === 1 && value.startsWith('old') ? `new${value.slice(3)}` : value,
        )
        await admin.xadd(streamKey, id, ...replaced)
      }
    } finally {
      await admin.quit()
    }
    const after = await store.read('s', ids[0], 3)
    expect(after.events).not.toBe(before.events)
    expect(after.events.map((e) => e.data)).toEqual(['new1', 'new2', 'new3'])
  })
})

describe('RecentPages', () => {
  const event = (id: string) => ({ id }) as unknown as RedisEvent

  it('keeps at most 16 pages, forgetting the one read first', () => {
    const pages = new RecentPages()
    const arrays = Array.from({ length: 17 }, (_, i) => [event(`1-${i}`)])
    for (let i = 0; i < 17; i++) expect(pages.same(`p${i}`, arrays[i]!)).toBe(arrays[i])
    // Page 0 was dropped to make room for page 16: an equal array read for it now is kept as it is.
    const copy0 = [...arrays[0]!]
    expect(pages.same('p0', copy0)).toBe(copy0)
    // Page 2 is still there (page 1 made room for page 0).
    expect(pages.same('p2', [...arrays[2]!])).toBe(arrays[2])
    expect(pages.same('p1', [...arrays[1]!])).not.toBe(arrays[1])
  })

  it('replaces a page whose events differ in any place, or in number', () => {
    const pages = new RecentPages()
    const a = event('1-1')
    const b = event('1-2')
    const page = [a, b]
    pages.same('p', page)
    const other = [a, event('1-2')]
    expect(pages.same('p', other)).toBe(other)
    expect(pages.same('p', [a])).not.toBe(other)
    expect(pages.same('p', [])).toEqual([])
  })
})
