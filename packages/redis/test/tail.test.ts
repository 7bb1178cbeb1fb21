/**
 * The single-server live tail through its idle rounds and its failures, on a real Redis: a
 * blocking read that times out with nothing new is no failure, and a read Redis refuses (a watched
 * key turned into another type) is reported, retried, and followed by the entries after it.
 */
import { RewindError } from '@rewind/core'
import type { Redis } from 'ioredis'
import { describe, expect, it } from 'vitest'
import { Collector, newEvent } from '../../../test/support/store-delivery.js'
import { waitUntil } from '../../../test/support/wait.js'
import { redisForTests, suiteStores } from './helpers/redis-server.js'
import { clientWithTails } from './helpers/tail-client.js'

const server = await redisForTests('live tail')

describe.skipIf(server === undefined)('the live tail', () => {
  const redis = suiteStores(server, 'tail')

  /** A client whose tail connections (its duplicates) count the XREAD replies they got. */
  function countingClient(): { client: Redis; replies: unknown[] } {
    const replies: unknown[] = []
    const client = clientWithTails(server!.url, (tail) => {
      const call = tail.call.bind(tail) as (...args: unknown[]) => Promise<unknown>
      tail.call = ((...args: unknown[]) => {
        const reply = call(...args)
        if (args[0] === 'XREAD') reply.then((value) => replies.push(value)).catch(() => {})
        return reply
      }) as typeof tail.call
    })
    return { client, replies }
  }

  it('takes a blocking read that timed out with nothing new as no failure', async () => {
    const { client, replies } = countingClient()
    try {
      const store = redis.store({ redis: client, blockMs: 50 })
      const collector = new Collector()
      store.attach(collector)
      await store.watch('s')
      await waitUntil(() => replies.filter((reply) => reply === null).length >= 3, 'three idle reads')
      expect(redis.reported).toEqual([])
      const id = await store.append('s', newEvent('after idling'))
      await waitUntil(() => collector.ids('s').length === 1, 'the delivery after idle reads')
      expect(collector.ids('s')).toEqual([id])
    } finally {
      await redis.stores.at(-1)?.close()
      await client.quit()
    }
  })

  it('reports a read Redis refuses, retries it, and delivers what follows once it can', async () => {
    const store = redis.store({ blockMs: 50, minReconnectDelay: 20, maxReconnectDelay: 40 })
    const collector = new Collector()
    store.attach(collector)
    await store.watch('s')
    // The watched key becomes a string: every XREAD naming it fails with WRONGTYPE.
    await redis.admin.set(store.key('s'), 'not a stream')
    await waitUntil(() => redis.reported.length >= 2, 'the failed reads to be reported')
    const failure = redis.reported[0] as RewindError
    expect(failure).toBeInstanceOf(RewindError)
    expect(failure.code).toBe('ERR_STORE_UNAVAILABLE')
    expect(failure.message).toMatch(
      /^the Redis live tail failed \(.*WRONGTYPE.*\); it retries and resumes where it stopped$/,
    )
    expect(String(failure.cause)).toMatch(/WRONGTYPE/)
    await redis.admin.del(store.key('s'))
    const id = await store.append('s', newEvent('after the fault'))
    await waitUntil(() => collector.ids('s').length === 1, 'the delivery after the fault')
    expect(collector.ids('s')).toEqual([id])
    redis.reported.splice(0)
  })

  it('resets the subscribers of a stream whose next entry does not follow the last one delivered', async () => {
    const store = redis.store()
    const collector = new Collector()
    store.attach(collector)
    await store.watch('s')
    const id = await store.append('s', newEvent('a'))
    await waitUntil(() => collector.ids('s').length === 1, 'the first delivery')
    // An entry that records another predecessor: the ones between were lost to the tail.
    await redis.admin.xadd(store.key('s'), '*', 'prev', '1-1', 'data', 'b')
    await waitUntil(() => collector.resets.length === 1, 'the reset')
    expect(collector.resets).toEqual(['s'])
    expect(collector.ids('s')).toEqual([id])
    const lost = redis.reported.splice(0)
    expect(lost).toHaveLength(1)
    expect((lost[0] as RewindError).code).toBe('ERR_HISTORY_LOST')
  })

  it('resumes from its last id after its connection is cut, and wakes its new connection for a new stream', async () => {
    const tails: Redis[] = []
    const client = clientWithTails(server!.url, (tail) => tails.push(tail))
    try {
      // Reads block for a minute: only CLIENT UNBLOCK, sent to the right connection, ends one early.
      const store = redis.store({
        redis: client,
        blockMs: 60_000,
        minReconnectDelay: 20,
        maxReconnectDelay: 40,
      })
      const collector = new Collector()
      store.attach(collector)
      await store.watch('s')
      const first = await store.append('s', newEvent('before the cut'))
      await waitUntil(() => collector.ids('s').length === 1, 'the first delivery')
      expect(tails).toHaveLength(1)
      tails[0]!.stream.destroy()
      const second = await store.append('s', newEvent('during the cut'))
      await waitUntil(() => collector.ids('s').length === 2, 'the delivery after reconnecting')
      expect(collector.ids('s')).toEqual([first, second])
      const lost = redis.reported.splice(0) as Error[]
      expect(lost.map((error) => error.message)).toContain(
        'the Redis live tail failed (the connection to Redis was lost); it retries and resumes where it stopped',
      )
      // A stream added now wakes the read blocked on the new connection.
      await store.watch('t')
      const third = await store.append('t', newEvent('on a new stream'))
      await waitUntil(() => collector.ids('t').length === 1, 'the delivery of the new stream')
      expect(collector.ids('t')).toEqual([third])
      expect(collector.resets).toEqual([])
    } finally {
      await redis.stores.at(-1)?.close()
      await client.quit()
    }
  })
})
