/**
 * Two app instances on one Redis under load: both publish at once while clients hop between them at
 * random, resuming each time from the last id they got. Every client must see the one global order
 * of the stream: no gap, no duplicate, nothing out of place.
 */
import { Redis } from 'ioredis'
import { afterAll, describe, expect, it } from 'vitest'
import { seededRandom } from '../../../test/support/random.js'
import { RawClient } from '../../../test/support/sse-clients.js'
import { sleep, waitUntil } from '../../../test/support/wait.js'
import { createRedisStore } from '../src/index.js'
import { deleteKeys, redisForTests, uniquePrefix } from './helpers/redis-server.js'
import { type App, startApp } from './helpers/sse.js'

const server = await redisForTests('interleaving')

describe.skipIf(server === undefined)('two instances under interleaved load', () => {
  afterAll(async () => {
    await server?.close()
  })

  it('gives every hopping client the one global order, without gap or duplicate', async () => {
    const { REWIND_SEED } = process.env
    const seed = Number(REWIND_SEED ?? Date.now() % 2 ** 31)
    const random = seededRandom(seed)
    const prefix = uniquePrefix('mix')
    const admin = new Redis(server!.url)
    const reported: unknown[] = []
    const stores = [0, 1].map(() =>
      createRedisStore({ redis: server!.url, prefix, maxLen: 100_000, onError: (e) => reported.push(e) }),
    )
    const apps: App[] = []
    for (const store of stores) apps.push(await startApp(store))
    const open = new Set<RawClient>()
    try {
      const stream = 'mix'
      const start = await apps[0]!.hub.publish(stream, { data: 'start' })
      const perInstance = 500
      const total = perInstance * apps.length

      const published: string[] = []
      const publisher = async (app: App, label: string) => {
        let sent = 0
        while (sent < perInstance) {
          // Bursts of concurrent publishes, so appends from both instances interleave in Redis.
          const burst = Math.min(perInstance - sent, 1 + Math.floor(random() * 8))
          const ids = await Promise.all(
            Array.from({ length: burst }, (_, i) => app.hub.publish(stream, { data: `${label}${sent + i}` })),
          )
          published.push(...ids)
          sent += burst
          if (random() < 0.3) await sleep(Math.floor(random() * 3))
        }
      }

      const hopper = async (): Promise<{ ids: string[]; gaps: number; hops: number }> => {
        const ids: string[] = []
        let gaps = 0
        let last = start
        let hops = 0
        // Bounded: enough hops to outlast the publishers, then one final catch-up.
        while (ids.length < total && hops < 400) {
          hops++
          const app = apps[Math.floor(random() * apps.length)]!
          const client = await RawClient.open(app.url(stream), last)
          open.add(client)
          const stay = Math.floor(random() * 25)
          const deadline = Date.now() + stay
          const caughtUp = () => ids.length + client.messages.length >= total
          while (Date.now() < deadline && !caughtUp()) await sleep(2)
          if (published.length === total) {
            await waitUntil(caughtUp, 'the final catch-up', 15_000)
          }
          client.close()
          open.delete(client)
          gaps += client.gaps.length
          ids.push(...client.messages.map((event) => event.id!))
          if (client.lastEventId !== undefined) last = client.lastEventId
        }
        return { ids, gaps, hops }
      }

      const hoppers = Array.from({ length: 6 }, () => hopper())
      await Promise.all(apps.map((app, i) => publisher(app, i === 0 ? 'a' : 'b')))
      const seen = await Promise.all(hoppers)
      console.info(`seed ${seed}: hops per client ${seen.map((client) => client.hops).join(', ')}`)

      const order = (await admin.xrange(stores[0]!.key(stream), `(${start}`, '+')).map(([id]) => id)
      expect(order).toHaveLength(total)
      expect([...published].sort(compareIds)).toEqual(order)
      for (const [i, client] of seen.entries()) {
        expect(client.gaps, `client ${i} (seed ${seed})`).toBe(0)
        expect(client.ids, `client ${i} (seed ${seed})`).toEqual(order)
        expect(client.hops).toBeGreaterThan(1)
      }
      // Redis stayed healthy: nothing to report (a tail that fails and retries would show here).
      expect(reported).toEqual([])
      await deleteKeys(admin, prefix)
    } finally {
      for (const client of open) client.close()
      await Promise.all(apps.map((app) => app.close()))
      await Promise.all(stores.map((store) => store.close()))
      await admin.quit()
    }
  })
})

function compareIds(a: string, b: string): number {
  const [am, as] = a.split('-').map(BigInt) as [bigint, bigint]
  const [bm, bs] = b.split('-').map(BigInt) as [bigint, bigint]
  return am !== bm ? (am < bm ? -1 : 1) : as < bs ? -1 : as > bs ? 1 : 0
}
