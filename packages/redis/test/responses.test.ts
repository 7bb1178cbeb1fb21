/**
 * Responses on the Redis store, across two app instances sharing one real Redis: a response started
 * on one is replayed, resumed and cancelled from the other, and its end is the same everywhere (the
 * behaviours every shared store shows, in test/support), and Redis expires an ended one itself.
 */
import { Redis } from 'ioredis'
import { afterAll, describe, expect, it } from 'vitest'
import {
  answerInstances,
  answersAcrossInstances,
  dataOf,
  expected,
  tokens,
} from '../../../test/support/answers-across-instances.js'
import { sleep, waitUntil } from '../../../test/support/wait.js'
import { createRedisStore, type RedisStore, type RedisStoreOptions } from '../src/index.js'
import { deleteKeys, redisForTests, uniquePrefix } from './helpers/redis-server.js'

const server = await redisForTests('responses')

describe.skipIf(server === undefined)('responses on the Redis store, across instances', () => {
  const fixture = answerInstances<RedisStore, RedisStoreOptions>({
    namespace: () => uniquePrefix('responses'),
    store: (prefix, options) =>
      createRedisStore({ redis: server!.url, prefix, onError: () => {}, ...options }),
  })
  const { pair, open } = fixture

  afterAll(async () => {
    const admin = new Redis(server!.url)
    for (const prefix of fixture.namespaces) await deleteKeys(admin, prefix)
    await admin.quit()
    // A server this file spawned would otherwise outlive the run.
    await server!.close()
  })

  answersAcrossInstances(fixture)

  it('expires an ended response in Redis after its TTL (PEXPIRE), then answers 404', async () => {
    const [a, b] = await pair({ responses: { ttl: 300 } })
    const { id, done } = await a.hub.responses.start(tokens(3, 1))
    await done
    const admin = new Redis(server!.url)
    const keys = await admin.keys(`${a.store.prefix}{rewind:response:${id}}*`)
    expect(keys).toHaveLength(2)
    for (const key of keys) {
      const ttl = await admin.pttl(key)
      expect(ttl).toBeGreaterThan(0)
      expect(ttl).toBeLessThanOrEqual(300)
    }
    await sleep(400)
    expect(await admin.exists(...keys)).toBe(0)
    await admin.quit()
    expect((await fetch(b.url(id))).status).toBe(404)
  })

  it('holds 20,000 tokens with the default bounds: a client on B gets every one from the start', async () => {
    const [a, b] = await pair()
    const { id, done } = await a.hub.responses.start(
      (async function* () {
        for (let i = 0; i < 20_000; i++) yield `t${i}`
      })(),
    )
    expect(await done).toBe('done')
    const client = await open(b.url(id))
    await waitUntil(() => client.ended, 'the end of the body', 20_000)
    expect(dataOf(client)).toEqual(expected(20_000))
    expect(client.events.some((e) => e.event === 'rewind-gap')).toBe(false)
  })
})
