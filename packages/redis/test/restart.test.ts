/**
 * Faults, on a redis-server of the test's own: the tail's connection cut while Redis keeps its data,
 * and Redis killed and restarted (without persistence) under open SSE connections.
 */
import { RewindError } from '@rewind/core'
import { Redis } from 'ioredis'
import { expect, it } from 'vitest'
import { RawClient } from '../../../test/support/sse-clients.js'
import { sleep, waitUntil } from '../../../test/support/wait.js'
import { createRedisStore } from '../src/index.js'
import { describeOnRedis, FAST_RECOVERY, recoveringStore, spawnForTests } from './helpers/redis-server.js'
import { type App, startApp } from './helpers/sse.js'

const redis = await spawnForTests('restart')

describeOnRedis('Redis faults', redis, (redis) => {
  it('resumes the tail from its last id when its connection is cut: each event once, in order', async () => {
    const { store, prefix, errors } = recoveringStore(redis.url, 'cut')
    const writer = createRedisStore({ redis: redis.url, prefix, ...FAST_RECOVERY })
    const admin = new Redis(redis.url)
    const app = await startApp(store)
    const client = await RawClient.open(app.url('s'), await writer.append('s', event('start')))
    try {
      const ids: string[] = []
      for (let i = 0; i < 5; i++) ids.push(await writer.append('s', event(`a${i}`)))
      await waitUntil(() => client.messages.length === 5, 'the first events')
      for (let round = 0; round < 3; round++) {
        const tail = String(await admin.client('LIST'))
          .split('\n')
          .find((line) => line.includes('name=rewind-tail'))
        const id = /\bid=(\d+)/.exec(tail ?? '')?.[1]
        expect(id, 'the tail connection').toBeDefined()
        await admin.client('KILL', 'ID', id!)
        // Appended while the tail reconnects: it must pick them up from where it stopped.
        for (let i = 0; i < 20; i++) ids.push(await writer.append('s', event(`r${round}-${i}`)))
        await waitUntil(() => client.messages.length === ids.length, `the events of round ${round}`)
      }
      expect(client.messages.map((message) => message.id)).toEqual(ids)
      expect(client.gaps).toEqual([])
      expect(client.ended).toBe(false)
      expect(errors.length).toBeGreaterThan(0)
      expect(errors.every((error) => error instanceof Error)).toBe(true)
    } finally {
      client.close()
      await app.close()
      await Promise.all([store.close(), writer.close()])
      await admin.quit()
    }
  })

  it('keeps SSE connections up across a restart, fails publishes fast while down, then delivers again', async () => {
    const { store, errors } = recoveringStore(redis.url, 'restart')
    const hubErrors: unknown[] = []
    const app: App = await startApp(store, { heartbeatInterval: 40, onError: (e) => hubErrors.push(e) })
    const clients: RawClient[] = []
    try {
      const start = await app.hub.publish('s', { data: 'start' })
      const client = await RawClient.open(app.url('s'), start)
      clients.push(client)
      const before: string[] = []
      for (let i = 0; i < 3; i++) before.push(await app.hub.publish('s', { data: `before${i}` }))
      await waitUntil(() => client.messages.length === 3, 'the events before the crash')

      await redis.stop('SIGKILL')
      const first = await timed(() => app.hub.publish('s', { data: 'lost' }))
      expect(first.error).toBeInstanceOf(RewindError)
      expect((first.error as RewindError).code).toBe('ERR_STORE_UNAVAILABLE')
      const later: number[] = []
      for (let i = 0; i < 5; i++) {
        const attempt = await timed(() => app.hub.publish('s', { data: 'lost' }))
        expect((attempt.error as RewindError).code).toBe('ERR_STORE_UNAVAILABLE')
        later.push(attempt.ms)
      }
      console.info(
        `publish while Redis is down: first rejection after ${first.ms.toFixed(1)} ms, then ${later.map((ms) => ms.toFixed(1)).join(', ')} ms`,
      )

      // The open connection stays up: heartbeats keep flowing while Redis is down.
      const comments = client.comments
      await waitUntil(() => client.comments >= comments + 3, 'heartbeats during the outage')
      expect(client.ended).toBe(false)

      // A client arriving during the outage is answered (200) and ended, so it retries later.
      const during = await RawClient.open(app.url('s'), start)
      clients.push(during)
      expect(during.status).toBe(200)
      await waitUntil(() => during.ended, 'the stream to end while Redis is down')

      await redis.start()
      let firstAfter: string | undefined
      // The command connection reconnects with backoff; until then publishes keep failing fast.
      for (let tries = 0; firstAfter === undefined && tries < 500; tries++) {
        firstAfter = await app.hub.publish('s', { data: 'after0' }).catch(() => undefined)
        if (firstAfter === undefined) await sleep(20)
      }
      expect(firstAfter).toBeDefined()
      const after = [firstAfter!]
      for (let i = 1; i < 5; i++) after.push(await app.hub.publish('s', { data: `after${i}` }))

      // Redis came back empty, so the tail cannot tell whether it lost entries accepted after the last
      // one it delivered: it never steps over that silently. The live stream is ended once, and the
      // client resumes from history with the gap signal, then every event since the restart.
      await waitUntil(() => client.ended, 'the live stream to be reset', 15_000)
      expect(client.messages.map((message) => message.id)).toEqual(before)
      expect(client.gaps).toEqual([])
      const continued = await RawClient.open(app.url('s'), before[2])
      clients.push(continued)
      await waitUntil(() => continued.messages.length === 5, 'the events after the restart')
      expect(continued.gaps.map((gap) => gap.data)).toEqual(['evicted'])
      expect(continued.messages.map((message) => message.id)).toEqual(after)

      // Redis kept nothing: resuming into the lost range is a gap, then the new events follow.
      const resumed = await RawClient.open(app.url('s'), before[1])
      clients.push(resumed)
      await waitUntil(() => resumed.messages.length === 5, 'the replay after the restart')
      expect(resumed.gaps).toHaveLength(1)
      expect(resumed.gaps[0]!.data).toBe('evicted')
      expect(resumed.messages.map((message) => message.id)).toEqual(after)

      // The tail noticed that the stream started over and said so.
      expect(errors.some((error) => /started over/.test(String((error as Error).message)))).toBe(true)
    } finally {
      for (const client of clients) client.close()
      await app.close()
      await store.close()
      if (!redis.running) await redis.start()
    }
  })

  it('times out against a frozen Redis, replaces the silent tail connection, and catches up after', async () => {
    const { store, errors } = recoveringStore(redis.url, 'frozen', { commandTimeout: 300, blockMs: 300 })
    const admin = new Redis(redis.url)
    const app = await startApp(store, { heartbeatInterval: 40 })
    const start = await app.hub.publish('s', { data: 'start' })
    const client = await RawClient.open(app.url('s'), start)
    try {
      await app.hub.publish('s', { data: 'before' })
      await waitUntil(() => client.messages.length === 1, 'the first event')
      // Frozen, Redis keeps its sockets open but answers nothing: only timeouts can tell.
      redis.signal('SIGSTOP')
      const frozen = await timed(() => app.hub.publish('s', { data: 'maybe' }))
      expect((frozen.error as RewindError).code).toBe('ERR_STORE_UNAVAILABLE')
      expect((frozen.error as RewindError).message).toMatch(/no reply from Redis within 300 ms/)
      console.info(`publish to a frozen Redis rejected after ${frozen.ms.toFixed(0)} ms (commandTimeout 300)`)
      await waitUntil(
        () => errors.some((error) => /no reply within/.test(String((error as Error).message))),
        'the tail to give up on its silent connection',
      )
      const comments = client.comments
      await waitUntil(() => client.comments >= comments + 3, 'heartbeats while Redis is frozen')
      redis.signal('SIGCONT')
      let after: string | undefined
      for (let tries = 0; after === undefined && tries < 500; tries++) {
        after = await app.hub.publish('s', { data: 'after' }).catch(() => undefined)
        if (after === undefined) await sleep(20)
      }
      expect(after).toBeDefined()
      // The append that timed out reached Redis before the freeze and ran after it: what Redis
      // holds is what the client gets, once and in order.
      await waitUntil(
        () => client.messages.some((message) => message.id === after),
        'the event after the freeze',
      )
      const held = (await admin.xrange(store.key('s'), `(${start}`, '+')).map(([id]) => id)
      expect(client.messages.map((message) => message.id)).toEqual(held)
      expect(client.gaps).toEqual([])
      expect(client.ended).toBe(false)
    } finally {
      redis.signal('SIGCONT')
      client.close()
      await app.close()
      await store.close()
      await admin.quit()
    }
  })

  it('closes promptly while Redis is down, leaving no handles', async () => {
    const baseline = process.getActiveResourcesInfo().length
    const { store } = recoveringStore(redis.url, 'down')
    const app = await startApp(store)
    const start = await app.hub.publish('s', { data: 'start' })
    const client = await RawClient.open(app.url('s'), start)
    await app.hub.publish('s', { data: 'x' })
    await waitUntil(() => client.messages.length === 1, 'an event')
    await redis.stop('SIGKILL')
    await sleep(100)
    client.close()
    const started = performance.now()
    await app.close()
    await store.close()
    console.info(`hub + store closed in ${(performance.now() - started).toFixed(1)} ms while Redis was down`)
    await waitUntil(
      () => process.getActiveResourcesInfo().length <= baseline,
      `handles to be released (${process.getActiveResourcesInfo().join(', ')})`,
      3000,
    )
    await redis.start()
  })
})

function event(data: string) {
  return { event: undefined, data, value: data }
}

async function timed(run: () => Promise<unknown>): Promise<{ ms: number; error: unknown }> {
  const started = performance.now()
  let error: unknown
  try {
    await run()
  } catch (caught) {
    error = caught
  }
  return { ms: performance.now() - started, error }
}
