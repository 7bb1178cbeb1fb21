/**
 * Watching, failing and closing, beside the contract in store.test.ts: concurrent watches of one
 * stream share one start, a watch whose start failed is tried afresh, every operation on a Redis
 * that cannot be reached fails with ERR_STORE_UNAVAILABLE naming what it tried, a closed store
 * refuses at once, and failures nobody awaits are logged under the package's name.
 */
import { RewindError } from '@rewind/core'
import { Redis } from 'ioredis'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { freePort } from '../../../test/support/ports.js'
import { Collector, newEvent } from '../../../test/support/store-delivery.js'
import { waitUntil, within } from '../../../test/support/wait.js'
import { createRedisStore, type RedisStore } from '../src/index.js'
import type { Scripts } from '../src/scripts.js'
import { redisForTests, suiteStores, uniquePrefix } from './helpers/redis-server.js'
import { clientWithTails } from './helpers/tail-client.js'

const server = await redisForTests('store lifecycle')

/** What `promise` rejects with (the test fails if it resolves). */
async function rejectionOf(promise: Promise<unknown>, what: string): Promise<RewindError> {
  const outcome = await within(
    promise.then(
      () => undefined,
      (error: unknown) => error,
    ),
    what,
  )
  expect(outcome, what).toBeInstanceOf(RewindError)
  return outcome as RewindError
}

describe.skipIf(server === undefined)('RedisStore watches', () => {
  const redis = suiteStores(server, 'lifecycle')

  /** A store on a client of the test's own, whose script commands the test may replace. */
  async function onOwnClient(
    test: (own: {
      store: RedisStore
      collector: Collector
      scripted: Scripts
      start: Scripts['rewindStart']
    }) => Promise<void>,
  ): Promise<void> {
    const client = new Redis(server!.url)
    try {
      const store = redis.store({ redis: client })
      const collector = new Collector()
      store.attach(collector)
      const scripted = client as unknown as Scripts
      await test({ store, collector, scripted, start: scripted.rewindStart.bind(client) })
    } finally {
      await redis.stores.at(-1)?.close()
      await client.quit()
    }
  }

  it('gives concurrent watches of one stream one start, and resolves at once once it is followed', async () => {
    const store = redis.store()
    store.attach(new Collector())
    const first = store.watch('s')
    expect(store.watch('s')).toBe(first)
    await first
    const again = store.watch('s')
    expect(again).not.toBe(first)
    await again
  })

  it('tries a watch afresh after its start failed, and then follows the stream', () =>
    onOwnClient(async ({ store, collector, scripted, start }) => {
      scripted.rewindStart = () => Promise.reject(new Error('the start failed'))
      const failed = await rejectionOf(store.watch('s'), 'the failed watch')
      expect(failed.code).toBe('ERR_STORE_UNAVAILABLE')
      expect(failed.message).toBe('the Redis store could not watch stream "s": the start failed')
      scripted.rewindStart = start
      await store.watch('s')
      const id = await store.append('s', newEvent('after'))
      await waitUntil(() => collector.ids('s').length === 1, 'the delivery after the second watch')
      expect(collector.ids('s')).toEqual([id])
    }))

  it('keeps a new watch when an older start of the same stream fails after an unwatch', () =>
    onOwnClient(async ({ store, collector, scripted, start }) => {
      const starts: { resolve: (id: string) => void; reject: (error: Error) => void; key: string }[] = []
      scripted.rewindStart = (key: string) =>
        new Promise<string>((resolve, reject) => starts.push({ resolve, reject, key }))
      // Commands go out at once once the client is ready.
      await store.read('s', null, 1)
      const older = store.watch('s')
      store.unwatch('s')
      const newer = store.watch('s')
      await waitUntil(() => starts.length === 2, 'both starts sent')
      starts[0]!.reject(new Error('the older start failed'))
      await older.catch(() => {})
      starts[1]!.resolve(await start(starts[1]!.key))
      await newer
      const id = await store.append('s', newEvent('live'))
      await waitUntil(() => collector.ids('s').length === 1, 'the delivery to the newer watch')
      expect(collector.ids('s')).toEqual([id])
    }))

  it('sends nothing to watch a stream it follows already', () =>
    onOwnClient(async ({ store, scripted }) => {
      await store.watch('s')
      scripted.rewindStart = () => Promise.reject(new Error('no second start'))
      await within(store.watch('s'), 'the second watch')
    }))

  it('names its tail connection rewind-tail', async () => {
    const names: unknown[] = []
    const client = clientWithTails(server!.url, (tail) => names.push(tail.options.connectionName))
    try {
      const store = redis.store({ redis: client })
      store.attach(new Collector())
      await store.watch('s')
      expect(names).toEqual(['rewind-tail'])
    } finally {
      await redis.stores.at(-1)?.close()
      await client.quit()
    }
  })

  it('refuses every operation once closed, and closes once', async () => {
    const store = redis.store()
    const closing = store.close()
    expect(store.close()).toBe(closing)
    await closing
    const refused = await rejectionOf(store.append('s', newEvent('late')), 'the append after close')
    expect(refused.code).toBe('ERR_STORE_UNAVAILABLE')
    expect(refused.message).toBe('the Redis store could not append to stream "s": the store is closed')
    expect((await rejectionOf(store.read('s', null, 10), 'the read after close')).message).toBe(
      'the Redis store could not read stream "s": the store is closed',
    )
  })
})

describe('RedisStore without Redis', () => {
  let store: RedisStore | undefined
  afterEach(async () => {
    await store?.close()
    vi.restoreAllMocks()
  })

  it('fails appends, reads and watches with ERR_STORE_UNAVAILABLE naming the action and the stream', async () => {
    const port = await freePort()
    store = createRedisStore({
      redis: `redis://127.0.0.1:${port}`,
      prefix: uniquePrefix('down'),
      commandTimeout: 200,
      minReconnectDelay: 50,
      maxReconnectDelay: 100,
      onError: () => {},
    })
    const calls: [string, () => Promise<unknown>][] = [
      ['append to', () => store!.append('news', newEvent('a'))],
      ['read', () => store!.read('news', null, 10)],
      ['watch', () => store!.watch('news')],
    ]
    for (const [action, call] of calls) {
      const error = await rejectionOf(call(), action)
      expect(error.code).toBe('ERR_STORE_UNAVAILABLE')
      expect(
        error.message.startsWith(`the Redis store could not ${action} stream "news": `),
        error.message,
      ).toBe(true)
      expect(error.cause).toBeDefined()
    }
  })

  it('logs what nobody awaits under its name when given no onError', async () => {
    const logged: unknown[][] = []
    vi.spyOn(console, 'error').mockImplementation((...args: unknown[]) => {
      logged.push(args)
    })
    const port = await freePort()
    store = createRedisStore({
      redis: `redis://127.0.0.1:${port}`,
      minReconnectDelay: 50,
      maxReconnectDelay: 100,
    })
    await waitUntil(() => logged.length > 0, 'a logged connection failure')
    expect(String(logged[0]![0])).toMatch(/^\[rewind\/redis\] /)
  })
})
