/**
 * The Redis records of responses, called directly as the hub calls them, on a real Redis: what each
 * call stores (the record hash beside the stream, every field of every entry, the expiries), what it
 * answers (created or taken, the id of an append or of an append sent again, the state after an
 * end), and its refusals (an event that cannot follow the ones Redis holds, a store that cannot
 * reach Redis). The behaviour across instances is in responses.test.ts.
 */
import { RewindError } from '@rewind/core'
import { type NewEvent, RESPONSE_STREAM_PREFIX, type ResponseLimits } from '@rewind/core/adapter'
import { Redis } from 'ioredis'
import { describe, expect, it } from 'vitest'
import { freePort } from '../../../test/support/ports.js'
import { within } from '../../../test/support/wait.js'
import { createRedisStore } from '../src/index.js'
import { describeOnRedis, redisForTests, suiteStores } from './helpers/redis-server.js'

const server = await redisForTests('response records')

const LIMITS: ResponseLimits = {
  maxEvents: 100,
  maxBytes: 1_000_000,
  maxLifetime: 600_000,
  ttl: 60_000,
  lease: 30_000,
}

const token = (data: string): NewEvent => ({ event: undefined, data, value: data })
const END: NewEvent = { event: 'rewind-end', data: 'done', value: 'done' }

let ids = 0
/** A fresh response id and its stream's name. */
function response(): { id: string; stream: string } {
  ids++
  const id = `r${process.pid}x${ids}`
  return { id, stream: `${RESPONSE_STREAM_PREFIX}${id}` }
}

/** The entries of `key` as [id, fields as an object]. */
async function entries(admin: Redis, key: string): Promise<[string, Record<string, string>][]> {
  const raw = await admin.xrange(key, '-', '+')
  return raw.map(([id, fields]) => {
    const record: Record<string, string> = {}
    for (let i = 0; i + 1 < fields.length; i += 2) record[fields[i]!] = fields[i + 1]!
    return [id, record]
  })
}

describeOnRedis('response records on Redis', server, () => {
  const suite = suiteStores(server, 'records')

  it('creates a record once: active, with its lease, its TTL, and an expiry bounding its lifetime', async () => {
    const store = suite.store()
    const { id, stream } = response()
    const before = Number((await suite.admin.time())[0]) * 1000
    expect(await store.responses.create(id, stream, LIMITS)).toBe(true)
    const record = `${store.key(stream)}:record`
    const fields = await suite.admin.hgetall(record)
    expect(fields['status']).toBe('active')
    expect(fields['ttl']).toBe('60000')
    const lease = Number(fields['lease'])
    expect(lease).toBeGreaterThanOrEqual(before + 30_000)
    expect(lease).toBeLessThanOrEqual(Date.now() + 30_000 + 60_000)
    const pttl = await suite.admin.pttl(record)
    expect(pttl).toBeGreaterThan(600_000)
    expect(pttl).toBeLessThanOrEqual(660_000)
    // The id is taken now, and so is one whose stream alone exists.
    expect(await store.responses.create(id, stream, LIMITS)).toBe(false)
    const other = response()
    await suite.admin.xadd(store.key(other.stream), '*', 'data', 'x')
    expect(await store.responses.create(other.id, other.stream, LIMITS)).toBe(false)
  })

  it('tells the state of a response: unknown, active, then ended with its end id', async () => {
    const store = suite.store()
    const { id, stream } = response()
    expect(await store.responses.get(id)).toBeUndefined()
    await store.responses.create(id, stream, LIMITS)
    expect(await store.responses.get(id)).toEqual({ status: 'active', origin: '0-0', endId: undefined })
    const ended = await store.responses.end(id, stream, END, 'done', LIMITS)
    const endId = ended?.state.endId
    expect(endId).toMatch(/^\d+-\d+$/)
    expect(ended).toEqual({ state: { status: 'done', origin: '0-0', endId } })
    expect(await store.responses.get(id)).toEqual({ status: 'done', origin: '0-0', endId })
  })

  it('appends each event with every field, its predecessor, and its number in the record', async () => {
    const store = suite.store()
    const { id, stream } = response()
    await store.responses.create(id, stream, LIMITS)
    const first = await store.responses.append(id, stream, token('a'), LIMITS, 1)
    const second = await store.responses.append(
      id,
      stream,
      { event: 'tool', data: '{"n":1}', value: { n: 1 } },
      LIMITS,
      2,
    )
    expect(first).toMatch(/^\d+-\d+$/)
    expect(second).toMatch(/^\d+-\d+$/)
    expect(await entries(suite.admin, store.key(stream))).toEqual([
      [first, { prev: '0-0', event: '', string: '1', data: 'a' }],
      [second, { prev: first, event: 'tool', string: '0', data: '{"n":1}' }],
    ])
    expect(await suite.admin.hmget(`${store.key(stream)}:record`, 'count', 'bytes')).toEqual(['2', '12'])
  })

  it('answers an event sent again with the newest id, without storing it twice', async () => {
    const store = suite.store()
    const { id, stream } = response()
    await store.responses.create(id, stream, LIMITS)
    await store.responses.append(id, stream, token('a'), LIMITS, 1)
    const second = await store.responses.append(id, stream, token('b'), LIMITS, 2)
    expect(await store.responses.append(id, stream, token('a'), LIMITS, 1)).toBe(second)
    expect(await suite.admin.xlen(store.key(stream))).toBe(2)
  })

  it('refuses an event that cannot follow the ones Redis holds, with ERR_HISTORY_LOST', async () => {
    const store = suite.store()
    const { id, stream } = response()
    await store.responses.create(id, stream, LIMITS)
    await store.responses.append(id, stream, token('a'), LIMITS, 1)
    const refused = await store.responses.append(id, stream, token('c'), LIMITS, 3).then(
      () => undefined,
      (error: unknown) => error,
    )
    expect(refused).toBeInstanceOf(RewindError)
    expect((refused as RewindError).code).toBe('ERR_HISTORY_LOST')
    expect((refused as RewindError).message).toBe(
      `Redis holds 1 events of the response in ${JSON.stringify(stream)}, so event 3 cannot follow them: it lost some (a restart without persistence, a failover to a lagging replica)`,
    )
    expect(await suite.admin.xlen(store.key(stream))).toBe(1)
  })

  it('appends nothing once the response has ended, or to an unknown one', async () => {
    const store = suite.store()
    const { id, stream } = response()
    await store.responses.create(id, stream, LIMITS)
    await store.responses.end(id, stream, END, 'cancelled', LIMITS)
    expect(await store.responses.append(id, stream, token('late'), LIMITS, 1)).toBeUndefined()
    const unknown = response()
    expect(await store.responses.append(unknown.id, unknown.stream, token('x'), LIMITS, 1)).toBeUndefined()
    expect(await suite.admin.exists(store.key(unknown.stream))).toBe(0)
  })

  it('ends once: the terminal event with the reason as its data, and both keys set to expire after the TTL', async () => {
    const store = suite.store()
    const { id, stream } = response()
    await store.responses.create(id, stream, { ...LIMITS, ttl: 45_000 })
    const last = await store.responses.append(id, stream, token('a'), LIMITS, 1)
    const ended = await store.responses.end(id, stream, END, 'failed', LIMITS)
    const endId = ended!.state.endId!
    expect(ended).toEqual({ state: { status: 'failed', origin: '0-0', endId } })
    expect((await entries(suite.admin, store.key(stream))).at(-1)).toEqual([
      endId,
      { prev: last, event: 'rewind-end', string: '1', data: 'failed' },
    ])
    // The TTL recorded at creation wins over the one the end is given.
    for (const key of [store.key(stream), `${store.key(stream)}:record`]) {
      const pttl = await suite.admin.pttl(key)
      expect(pttl).toBeGreaterThan(0)
      expect(pttl).toBeLessThanOrEqual(45_000)
    }
    // A second end, even for another reason, changes nothing and tells the first.
    expect(await store.responses.end(id, stream, END, 'cancelled', LIMITS)).toEqual(ended)
    expect(await store.responses.endIfLapsed(id, stream, END, 'cancelled', LIMITS)).toEqual(ended)
    expect(await suite.admin.xlen(store.key(stream))).toBe(2)
    const unknown = response()
    expect(await store.responses.end(unknown.id, unknown.stream, END, 'done', LIMITS)).toBeUndefined()
    expect(await suite.admin.exists(store.key(unknown.stream))).toBe(0)
  })

  it('ends with a default message event when the end event has no type', async () => {
    const store = suite.store()
    const { id, stream } = response()
    await store.responses.create(id, stream, LIMITS)
    const ended = await store.responses.end(id, stream, token('done'), 'done', LIMITS)
    expect(await entries(suite.admin, store.key(stream))).toEqual([
      [ended!.state.endId, { prev: '0-0', event: '', string: '1', data: 'done' }],
    ])
  })

  it('ends only once the lease has lapsed when asked to, and the lease is renewed while active', async () => {
    const store = suite.store()
    const { id, stream } = response()
    await store.responses.create(id, stream, { ...LIMITS, lease: 60_000 })
    expect(await store.responses.endIfLapsed(id, stream, END, 'cancelled', LIMITS)).toEqual({
      state: { status: 'active', origin: '0-0', endId: undefined },
    })
    expect(await suite.admin.exists(store.key(stream))).toBe(0)
    const record = `${store.key(stream)}:record`
    // A lease renewed to a moment already past has lapsed.
    expect(await store.responses.renew(id, -1)).toBe(true)
    const now = Number((await suite.admin.time())[0]) * 1000
    expect(Number(await suite.admin.hget(record, 'lease'))).toBeLessThanOrEqual(now + 1000)
    const ended = await store.responses.endIfLapsed(id, stream, END, 'cancelled', LIMITS)
    expect(ended?.state.status).toBe('cancelled')
    expect(ended?.state.endId).toMatch(/^\d+-\d+$/)
    expect(await store.responses.renew(id, 60_000)).toBe(false)
    expect(await store.responses.renew(response().id, 60_000)).toBe(false)
  })

  it('renews a lease from Redis time', async () => {
    const store = suite.store()
    const { id, stream } = response()
    await store.responses.create(id, stream, { ...LIMITS, lease: 1000 })
    const record = `${store.key(stream)}:record`
    const before = Number(await suite.admin.hget(record, 'lease'))
    expect(await store.responses.renew(id, 500_000)).toBe(true)
    expect(Number(await suite.admin.hget(record, 'lease'))).toBeGreaterThanOrEqual(before + 499_000)
  })

  it('does not announce appends and ends on a single server (no SPUBLISH)', async () => {
    const store = suite.store()
    const { id, stream } = response()
    const key = store.key(stream)
    const listener = new Redis(server!.url)
    const heard: string[] = []
    try {
      listener.on('smessage', (_channel: string, message: string) => heard.push(message))
      await listener.ssubscribe(key)
      await store.responses.create(id, stream, LIMITS)
      await store.responses.append(id, stream, token('a'), LIMITS, 1)
      await store.responses.end(id, stream, END, 'done', LIMITS)
      await store.append('plain', token('b'))
      await suite.admin.spublish(key, 'marker')
      await suite.admin.spublish(store.key('plain'), 'marker')
      // Messages of one channel arrive in the order they were published: the marker comes first.
      await within(
        new Promise<void>((resolve) => {
          const check = (): void => {
            if (heard.length > 0) resolve()
            else setTimeout(check, 10)
          }
          check()
        }),
        'the marker',
      )
      expect(heard[0]).toBe('marker')
    } finally {
      listener.disconnect()
    }
  })
})

describe('response records without Redis', () => {
  it('reject every call with ERR_STORE_UNAVAILABLE naming the action and the stream', async () => {
    const port = await freePort()
    const store = createRedisStore({
      redis: `redis://127.0.0.1:${port}`,
      commandTimeout: 200,
      minReconnectDelay: 50,
      maxReconnectDelay: 100,
      onError: () => {},
    })
    try {
      const { id, stream } = response()
      const calls: [string, () => Promise<unknown>][] = [
        ['create the response of', () => store.responses.create(id, stream, LIMITS)],
        ['append to the response of', () => store.responses.append(id, stream, token('a'), LIMITS, 1)],
        ['end the response of', () => store.responses.end(id, stream, END, 'done', LIMITS)],
        ['read the response of', () => store.responses.get(id)],
        ['renew the response of', () => store.responses.renew(id, 1000)],
      ]
      for (const [action, call] of calls) {
        const error = await within(
          call().then(
            () => undefined,
            (caught: unknown) => caught,
          ),
          action,
        )
        expect(error, action).toBeInstanceOf(RewindError)
        expect((error as RewindError).code).toBe('ERR_STORE_UNAVAILABLE')
        expect((error as RewindError).message).toMatch(
          new RegExp(`^the Redis store could not ${action} stream ${JSON.stringify(stream)}: `),
        )
      }
    } finally {
      await store.close()
    }
  })
})
