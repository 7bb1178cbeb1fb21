/**
 * The store's own contract, against a real Redis: appends and their stored fields, every read path
 * and its positions, gaps, values and frames, the live tail, errors and shutdown.
 */
import type { StoredEvent } from '@rewind/core'
import { RewindError } from '@rewind/core'
import { Redis } from 'ioredis'
import { describe, expect, it } from 'vitest'
import { Collector, EMPTY_READ, newEvent } from '../../../test/support/store-delivery.js'
import { thrownBy } from '../../../test/support/throws.js'
import { sleep, waitUntil } from '../../../test/support/wait.js'
import { createRedisStore, type RedisStore, type RedisStoreOptions } from '../src/index.js'
import { TAIL_BUDGET } from '../src/tail.js'
import { deleteKeys, redisForTests, suiteStores, uniquePrefix } from './helpers/redis-server.js'
import { clientWithTails } from './helpers/tail-client.js'

const server = await redisForTests('store contract')

describe.skipIf(server === undefined)('RedisStore', () => {
  const redis = suiteStores(server, 'store')
  const { reported } = redis
  /** A store on the server under a fresh prefix, closed and emptied after the test. */
  const open = (options: RedisStoreOptions = {}): RedisStore => redis.store(options)
  /** A store like `open`'s, with a collector attached as its hub. */
  const openAttached = (options: RedisStoreOptions = {}): { store: RedisStore; collector: Collector } => {
    const store = open(options)
    const collector = new Collector()
    store.attach(collector)
    return { store, collector }
  }
  /** A client on the server whose tail connections (the ones the store duplicates) go through `wrap`. */
  const clientWithTail = (wrap: (tail: Redis) => void): Redis => clientWithTails(server!.url, wrap)

  describe('options', () => {
    it('refuses values out of range with ERR_INVALID_ARGUMENT naming the option', () => {
      const cases: [RedisStoreOptions, string][] = [
        [{ maxLen: 0 }, 'maxLen'],
        [{ maxLen: 1.5 }, 'maxLen'],
        [{ blockMs: -1 }, 'blockMs'],
        [{ commandTimeout: 0 }, 'commandTimeout'],
        [{ trim: 'sometimes' as 'exact' }, 'trim'],
        [{ prefix: 3 as unknown as string }, 'prefix'],
        [{ deserialize: 'JSON' as unknown as () => unknown }, 'deserialize'],
        [{ minReconnectDelay: 500, maxReconnectDelay: 100 }, 'maxReconnectDelay'],
        [{ redis: 42 as unknown as string }, 'redis'],
        [{ prefix: 'app{1}:' }, 'prefix'],
        [{ prefix: 'app}' }, 'prefix'],
        [{ cluster: [{ host: '127.0.0.1', port: 7000 }] }, 'cluster'],
        [{ maxAge: 0 }, 'maxAge'],
        [{ maxAge: 1.5 }, 'maxAge'],
        [{ maxAge: Number.NaN }, 'maxAge'],
        [{ streamTtl: 0 }, 'streamTtl'],
        [{ streamTtl: -1 }, 'streamTtl'],
        [{ streamTtl: Number.NEGATIVE_INFINITY }, 'streamTtl'],
      ]
      for (const [options, field] of cases) {
        const caught = thrownBy(() => createRedisStore({ redis: server!.url, ...options }).close())
        expect(caught, field).toBeInstanceOf(RewindError)
        expect((caught as RewindError).code).toBe('ERR_INVALID_ARGUMENT')
        expect((caught as RewindError).field).toBe(field)
      }
    })

    it('refuses every timer option above 2^31 - 1 ms, which Node would run after 1 ms', () => {
      const max = 2_147_483_647
      const cases: [RedisStoreOptions, string][] = [
        [{ blockMs: max + 1 }, 'blockMs'],
        [{ commandTimeout: max + 1 }, 'commandTimeout'],
        [{ minReconnectDelay: max + 1, maxReconnectDelay: max + 1 }, 'minReconnectDelay'],
        [{ maxReconnectDelay: max + 1 }, 'maxReconnectDelay'],
        // The tail waits for a reply for blockMs + commandTimeout in one timer.
        [{ blockMs: max - 1000, commandTimeout: 1001 }, 'blockMs'],
      ]
      for (const [options, field] of cases) {
        const caught = thrownBy(() => createRedisStore({ redis: server!.url, ...options }).close())
        expect(caught, field).toBeInstanceOf(RewindError)
        expect((caught as RewindError).code, field).toBe('ERR_INVALID_ARGUMENT')
        expect((caught as RewindError).field, field).toBe(field)
        expect((caught as RewindError).message, field).toMatch(/must be at most 2147483647 ms/)
      }
      // The largest values are accepted, and so are durations Redis applies, which no timer waits for.
      const largest = [
        { blockMs: max - 1000, commandTimeout: 1000, maxReconnectDelay: max },
        { minReconnectDelay: max, maxReconnectDelay: max },
        { maxAge: 10 * max, streamTtl: 10 * max },
        { maxAge: Number.POSITIVE_INFINITY, streamTtl: Number.POSITIVE_INFINITY },
      ]
      for (const options of largest) open(options)
    })

    it('uses the defaults', () => {
      const store = open({ prefix: undefined as unknown as string })
      expect(store.prefix).toBe('rewind:')
      expect(store.key('news')).toBe('rewind:{news}')
      expect(store.synchronous).toBe(false)
    })
  })

  describe('append', () => {
    it('stores each event with its predecessor, its type, its string flag and its data', async () => {
      const store = open()
      const a = await store.append('s', newEvent('plain text'))
      const b = await store.append('s', newEvent({ n: 1 }, 'created'))
      const c = await store.append('s', newEvent('"quoted"'))
      expect(a).toMatch(/^\d+-\d+$/)
      const entries = await redis.admin.xrange(store.key('s'), '-', '+')
      expect(entries).toEqual([
        [a, ['prev', '0-0', 'event', '', 'string', '1', 'data', 'plain text']],
        [b, ['prev', a, 'event', 'created', 'string', '0', 'data', '{"n":1}']],
        [c, ['prev', b, 'event', '', 'string', '1', 'data', '"quoted"']],
      ])
    })

    it('trims exactly to maxLen with exact trimming', async () => {
      const store = open({ maxLen: 5, trim: 'exact' })
      for (let i = 0; i < 20; i++) await store.append('s', newEvent(i))
      expect(await redis.admin.xlen(store.key('s'))).toBe(5)
    })
  })

  describe('maxAge and streamTtl', () => {
    it('expires an idle stream key after streamTtl, refreshed by every append', async () => {
      const store = open({ streamTtl: 400 })
      const key = store.key('s')
      const first = await store.append('s', newEvent('a'))
      const ttl = await redis.admin.pttl(key)
      expect(ttl).toBeGreaterThan(0)
      expect(ttl).toBeLessThanOrEqual(400)
      await sleep(250)
      await store.append('s', newEvent('b'))
      // Refreshed: the key outlives the first append's expiry.
      await sleep(250)
      expect(await redis.admin.exists(key)).toBe(1)
      const refreshed = await redis.admin.pttl(key)
      for (let tries = 0; tries < 100 && (await redis.admin.exists(key)) === 1; tries++) await sleep(20)
      expect(await redis.admin.exists(key), 'the idle key to expire').toBe(0)
      console.info(`streamTtl 400: PTTL ${ttl} ms after an append, ${refreshed} ms 250 ms after the next one`)
      // Redis kept nothing of an expired stream, not even its ids: a resume from one is unknown.
      const expired = await store.read('s', first, 10)
      expect(expired.gap).toBe('unknown')
      expect(expired.position.id).toBe('0-0')
      expect(expired.events).toEqual([])
      // Written again, the stream starts over: ids from before are older than its first entry.
      const again = await store.append('s', newEvent('c'))
      const resumed = await store.read('s', first, 10)
      expect(resumed.gap).toBe('evicted')
      expect(resumed.position.id).toBe(before(again))
    })

    it('sets a day-long TTL by default, and keeps keys forever with Infinity', async () => {
      const byDefault = open()
      await byDefault.append('s', newEvent('a'))
      const ttl = await redis.admin.pttl(byDefault.key('s'))
      expect(ttl).toBeGreaterThan(86_400_000 - 60_000)
      expect(ttl).toBeLessThanOrEqual(86_400_000)
      // Another store on the same key, told to keep it forever, removes the expiry.
      const forever = createRedisStore({ redis: server!.url, prefix: byDefault.prefix, streamTtl: Infinity })
      redis.stores.push(forever)
      await forever.append('s', newEvent('b'))
      expect(await redis.admin.pttl(byDefault.key('s'))).toBe(-1)
    })

    it('trims entries older than maxAge on append and on read, and resumes exactly across an emptied stream', async () => {
      const store = open({ maxAge: 200, trim: 'exact' })
      const key = store.key('s')
      const old = [await store.append('s', newEvent('a')), await store.append('s', newEvent('b'))]
      await sleep(250)
      const fresh = await store.append('s', newEvent('c'))
      expect((await redis.admin.xrange(key, '-', '+')).map(([id]) => id)).toEqual([fresh])
      expect((await store.read('s', old[0], 10)).gap).toBe('evicted')
      // The trimmed entry just before the first retained one still resumes exactly.
      expect((await store.read('s', old[1], 10)).events.map((event) => event.id)).toEqual([fresh])

      await sleep(250)
      // An idle stream is trimmed when read: nothing older than maxAge is served.
      const fromStart = await store.read('s', null, 10)
      expect(fromStart.events).toEqual([])
      expect(await redis.admin.xlen(key)).toBe(0)
      // The emptied stream still knows its last id: a client that saw it misses nothing.
      expect(await store.read('s', fresh, 10)).toEqual({
        events: [],
        position: fromStart.position,
        done: true,
      })
      expect(fromStart.position.id).toBe(fresh)
      expect((await store.read('s', undefined, 10)).position.id).toBe(fresh)
      expect((await store.read('s', old[1], 10)).gap).toBe('evicted')
      expect((await store.read('s', `${BigInt(fresh.split('-')[0]!) + 1n}-0`, 10)).gap).toBe('unknown')
      // The next entry records it as its predecessor, so the resume stays exact, and the live tail
      // (which had delivered it) carries on without a reset.
      const delivery = new Collector()
      store.attach(delivery)
      await store.watch('s')
      const next = await store.append('s', newEvent('d'))
      const resumed = await store.read('s', fresh, 10)
      expect(resumed.gap).toBeUndefined()
      expect(resumed.events.map((event) => event.id)).toEqual([next])
      await waitUntil(() => delivery.ids('s').length === 1, 'live delivery of the next entry')
      expect(delivery.ids('s')).toEqual([next])
      expect(delivery.resets).toEqual([])
    })
  })

  describe('read', () => {
    it('reads nothing at 0-0 from an empty stream', async () => {
      const store = open()
      for (const after of [undefined, null, '0-0']) {
        expect(await store.read('empty', after, 10), String(after)).toEqual(EMPTY_READ)
      }
      const gap = await store.read('empty', '5-1', 10)
      expect(gap.gap).toBe('unknown')
      expect(gap.position.id).toBe('0-0')
      expect(gap.events).toEqual([])
    })

    it('gives the newest position to a fresh reader', async () => {
      const store = open()
      await store.append('s', newEvent('a'))
      const newest = await store.append('s', newEvent('b'))
      const [ms, seq] = newest.split('-').map(Number)
      expect(await store.read('s', undefined, 10)).toEqual({
        events: [],
        position: { id: newest, major: ms, minor: seq },
        done: true,
      })
    })

    it('pages after an id, with positions and done', async () => {
      const store = open()
      const ids: string[] = []
      for (let i = 0; i < 7; i++) ids.push(await store.append('s', newEvent(`e${i}`)))
      const page1 = await store.read('s', ids[0], 3)
      expect(page1.events.map((event) => event.id)).toEqual(ids.slice(1, 4))
      expect(page1.position.id).toBe(ids[3])
      expect(page1.done).toBe(false)
      expect(page1.gap).toBeUndefined()
      const page2 = await store.read('s', page1.position.id, 3)
      expect(page2.events.map((event) => event.id)).toEqual(ids.slice(4, 7))
      // The last one returned is the newest: done without another round trip.
      expect(page2.done).toBe(true)
      const after = await store.read('s', ids[6], 3)
      expect(after.events).toEqual([])
      expect(after.position.id).toBe(ids[6])
      expect(after.done).toBe(true)
      const short = await store.read('s', ids[4], 10)
      expect(short.events.map((event) => event.data)).toEqual(['e5', 'e6'])
      expect(short.done).toBe(true)
    })

    it('reads from null as from the position just before the first retained entry', async () => {
      const store = open({ maxLen: 3, trim: 'exact' })
      const ids: string[] = []
      for (let i = 0; i < 6; i++) ids.push(await store.append('s', newEvent(i)))
      const result = await store.read('s', null, 10)
      expect(result.gap).toBeUndefined()
      expect(result.events).toEqual([])
      expect(result.done).toBe(false)
      expect(result.position.id).toBe(before(ids[3]!))
      const next = await store.read('s', result.position.id, 10)
      expect(next.gap).toBeUndefined()
      expect(next.events.map((event) => event.id)).toEqual(ids.slice(3))
    })

    it('tells unknown ids: malformed shapes, out of range, newer than the newest', async () => {
      const store = open({ maxLen: 3, trim: 'exact' })
      const ids: string[] = []
      for (let i = 0; i < 5; i++) ids.push(await store.append('s', newEvent(i)))
      const newest = ids[4]!
      const [ms, seq] = newest.split('-')
      const unknown = [
        'abc',
        '12',
        '1-2-3',
        '-1-0',
        ' 1-0',
        '1-0 ',
        'k3f9x-42',
        '18446744073709551616-0',
        '99999999999999999999999-1',
        `${ms}-${Number(seq) + 1}`,
        `${BigInt(ms!) + 1n}-0`,
        '18446744073709551615-18446744073709551615',
      ]
      for (const id of unknown) {
        const result = await store.read('s', id, 10)
        expect(result.gap, id).toBe('unknown')
        expect(result.position.id, id).toBe(before(ids[2]!))
        expect(result.events, id).toEqual([])
        expect(result.done, id).toBe(false)
      }
    })

    it('tells evicted ids exactly: the first entry predecessor and the position before it are no gap', async () => {
      const store = open({ maxLen: 4, trim: 'exact' })
      const ids: string[] = []
      for (let i = 0; i < 10; i++) ids.push(await store.append('s', newEvent(i)))
      const first = ids[6]!
      for (const id of [ids[0]!, ids[4]!, '0-0', '1-1']) {
        const result = await store.read('s', id, 10)
        expect(result.gap, id).toBe('evicted')
        expect(result.position.id, id).toBe(before(first))
        expect(result.events).toEqual([])
      }
      // ids[5] was trimmed, but it is the first retained entry's recorded predecessor: nothing is missing.
      const exact = await store.read('s', ids[5], 10)
      expect(exact.gap).toBeUndefined()
      expect(exact.events.map((event) => event.id)).toEqual(ids.slice(6))
      expect(exact.done).toBe(true)
      // The gap position handed to the client resumes without a second gap.
      const resumed = await store.read('s', before(first), 2)
      expect(resumed.gap).toBeUndefined()
      expect(resumed.events.map((event) => event.id)).toEqual(ids.slice(6, 8))
      expect(resumed.done).toBe(false)
    })

    it('tells an id Redis no longer holds between retained entries: unknown, not a silent skip', async () => {
      const store = open()
      const ids: string[] = []
      for (let i = 0; i < 5; i++) ids.push(await store.append('s', newEvent(i)))
      // The shape a reload of an older snapshot leaves: the newest entries gone, then new ones
      // appended after the last entry Redis kept.
      await redis.admin.xdel(store.key('s'), ids[3]!, ids[4]!)
      const later = await store.append('s', newEvent('later'))
      for (const id of [ids[3]!, ids[4]!]) {
        const result = await store.read('s', id, 10)
        expect(result.gap, id).toBe('unknown')
        expect(result.position.id, id).toBe(before(ids[0]!))
        expect(result.events, id).toEqual([])
      }
      // The entry Redis kept is still the exact predecessor of the new one: no gap from there.
      const kept = await store.read('s', ids[2], 10)
      expect(kept.gap).toBeUndefined()
      expect(kept.events.map((event) => event.id)).toEqual([later])
      const [ms, seq] = ids[1]!.split('-')
      const padded = await store.read('s', `0${ms}-${seq}`, 10)
      expect(padded.gap).toBeUndefined()
      expect(padded.events.map((event) => event.id)).toEqual([ids[2], later])
    })

    it('accepts ids with leading zeros as the same id', async () => {
      const store = open()
      const a = await store.append('s', newEvent('a'))
      const b = await store.append('s', newEvent('b'))
      const [ms, seq] = a.split('-')
      const result = await store.read('s', `000${ms}-0${seq}`, 10)
      expect(result.events.map((event) => event.id)).toEqual([b])
    })

    it('builds the frame once, shares event objects between reads, and parses values lazily once', async () => {
      let parses = 0
      const store = open({
        deserialize: (data) => {
          parses++
          return JSON.parse(data)
        },
      })
      await store.append('s', newEvent('first line\nsecond', 'note'))
      await store.append('s', newEvent({ total: 3 }))
      await store.append('s', newEvent(''))
      const one = await store.read('s', '0-0', 10)
      const two = await store.read('s', '0-0', 10)
      expect(two.events[0]).toBe(one.events[0])
      const [note, total, empty] = one.events as StoredEvent[]
      expect(note!.frame.toString()).toBe(`id: ${note!.id}\nevent: note\ndata: first line\ndata: second\n\n`)
      expect(note!.event).toBe('note')
      expect(note!.value).toBe('first line\nsecond')
      expect(total!.frame.toString()).toBe(`id: ${total!.id}\ndata: {"total":3}\n\n`)
      expect(total!.event).toBeUndefined()
      expect(parses).toBe(0)
      expect(total!.value).toEqual({ total: 3 })
      expect(total!.value).toBe(total!.value)
      expect(parses).toBe(1)
      expect(empty!.frame.toString()).toBe(`id: ${empty!.id}\ndata:\n\n`)
      expect(empty!.value).toBe('')
      const [msPart, seqPart] = total!.id.split('-').map(Number)
      expect([total!.major, total!.minor]).toEqual([msPart, seqPart])
    })

    it('gives the raw data as the value of an entry that does not deserialize, and reports it once', async () => {
      let parses = 0
      const store = open({
        deserialize: () => {
          parses++
          throw new Error('bad payload')
        },
      })
      const id = await store.append('s', newEvent({ x: 1 }))
      const [event] = (await store.read('s', '0-0', 1)).events
      expect(event!.value).toBe('{"x":1}')
      expect(event!.value).toBe('{"x":1}')
      const [again] = (await store.read('s', '0-0', 1)).events
      expect(again!.value).toBe('{"x":1}')
      expect(parses).toBe(1)
      const errors = reported.splice(0)
      expect(errors).toHaveLength(1)
      expect(errors[0]).toBeInstanceOf(RewindError)
      expect((errors[0] as RewindError).code).toBe('ERR_SERIALIZE')
      expect((errors[0] as RewindError).message).toContain(id)
      expect((errors[0] as RewindError).message).toContain(store.key('s'))
      expect(((errors[0] as RewindError).cause as Error).message).toBe('bad payload')
    })
  })

  describe('live tail', () => {
    it('delivers every event appended after watch resolves, in order, from any store', async () => {
      const store = open()
      const other = createRedisStore({
        redis: server!.url,
        prefix: store.prefix,
        onError: (e) => reported.push(e),
      })
      redis.stores.push(other)
      const collector = new Collector()
      store.attach(collector)
      await store.append('s', newEvent('before'))
      await store.watch('s')
      const ids: string[] = []
      for (let i = 0; i < 50; i++) ids.push(await (i % 2 ? other : store).append('s', newEvent(i)))
      await waitUntil(() => collector.ids('s').length >= 50, '50 deliveries')
      expect(collector.ids('s')).toEqual(ids)
    })

    it('follows a stream that does not exist yet from its first event', async () => {
      const { store, collector } = openAttached()
      await store.watch('new')
      const id = await store.append('new', newEvent('hello'))
      await waitUntil(() => collector.ids('new').length === 1, 'the first event')
      expect(collector.ids('new')).toEqual([id])
      expect(collector.delivered.get('new')![0]!.value).toBe('hello')
    })

    it('wakes the blocked read to add a stream, long before blockMs', async () => {
      const { store, collector } = openAttached({ blockMs: 60_000 })
      await store.watch('a')
      // Let the XREAD over `a` alone reach Redis and block.
      await new Promise((resolve) => setTimeout(resolve, 100))
      await store.watch('b')
      const id = await store.append('b', newEvent('to b'))
      // Without CLIENT UNBLOCK this would take a minute; the test times out well before.
      await waitUntil(() => collector.ids('b').length === 1, 'delivery on the added stream', 15_000)
      expect(collector.ids('b')).toEqual([id])
    })

    it('stops delivering an unwatched stream and can watch it again', async () => {
      const { store, collector } = openAttached()
      await store.watch('s')
      await store.watch('other')
      await store.append('s', newEvent(1))
      await waitUntil(() => collector.ids('s').length === 1, 'the first event')
      store.unwatch('s')
      await store.append('s', newEvent(2))
      const marker = await store.append('other', newEvent('marker'))
      await waitUntil(() => collector.ids('other').includes(marker), 'the marker')
      expect(collector.ids('s')).toHaveLength(1)
      await store.watch('s')
      const third = await store.append('s', newEvent(3))
      await waitUntil(() => collector.ids('s').length === 2, 'the event after watching again')
      expect(collector.ids('s')[1]).toBe(third)
    })

    it('drops a watch that is unwatched before its start id is known', async () => {
      const { store, collector } = openAttached()
      await store.watch('marker')
      const watching = store.watch('s')
      store.unwatch('s')
      await watching
      await store.append('s', newEvent('unwanted'))
      const marker = await store.append('marker', newEvent('marker'))
      await waitUntil(() => collector.ids('marker').includes(marker), 'the marker')
      expect(collector.ids('s')).toEqual([])
    })

    it('copes with its streams all leaving while the tail connection starts', async () => {
      let unwatchOnReady: () => void = () => {}
      const client = clientWithTail((tail) => {
        // Right after the tail asks for its client id, before the answer comes back.
        tail.once('ready', () => setImmediate(() => unwatchOnReady()))
      })
      const { store, collector } = openAttached({ redis: client })
      unwatchOnReady = () => store.unwatch('s')
      await store.watch('s')
      await new Promise((resolve) => setTimeout(resolve, 200))
      await store.watch('s')
      const id = await store.append('s', newEvent('back'))
      await waitUntil(() => collector.ids('s').length === 1, 'the delivery')
      expect(collector.ids('s')).toEqual([id])
      await store.close()
      await client.quit()
    })

    it('follows many streams with one blocking connection', async () => {
      let duplicates = 0
      const client = clientWithTail(() => duplicates++)
      const { store, collector } = openAttached({ redis: client })
      const streams = Array.from({ length: 60 }, (_, i) => `stream-${i}`)
      await Promise.all(streams.map((stream) => store.watch(stream)))
      const expected = new Map<string, string[]>()
      for (let round = 0; round < 3; round++) {
        for (const stream of streams) {
          const id = await store.append(stream, newEvent(`${stream}:${round}`))
          expected.set(stream, [...(expected.get(stream) ?? []), id])
        }
      }
      await waitUntil(() => streams.every((stream) => collector.ids(stream).length === 3), 'every delivery')
      for (const stream of streams) expect(collector.ids(stream)).toEqual(expected.get(stream))
      expect(duplicates).toBe(1)
      await store.close()
      await client.quit()
    })

    it('bounds what one XREAD returns over all its streams, and still delivers a backlog in order', async () => {
      const replies: number[] = []
      let gate: Promise<void> | undefined
      const client = clientWithTail((tail) => {
        const call = tail.call.bind(tail) as (...args: unknown[]) => Promise<unknown>
        // The real connection, held back at one XREAD so that a backlog builds up, and measured.
        tail.call = (async (...args: unknown[]) => {
          if (args[0] === 'XREAD' && gate !== undefined) await gate
          const reply = await call(...args)
          if (args[0] === 'XREAD' && Array.isArray(reply)) {
            replies.push(
              (reply as [string, unknown[]][]).reduce((sum, [, entries]) => sum + entries.length, 0),
            )
          }
          return reply
        }) as typeof tail.call
      })
      const { store, collector } = openAttached({ redis: client })
      const streams = ['a', 'b', 'c', 'd', 'e']
      await Promise.all(streams.map((stream) => store.watch(stream)))
      let release = (): void => {}
      gate = new Promise((resolve) => {
        release = resolve
      })
      // The first append ends the XREAD in flight, if any; the next one waits at the gate while the
      // backlog is written.
      const expected = new Map(streams.map((stream) => [stream, [] as string[]]))
      const PER_STREAM = 600
      for (const stream of streams) {
        const ids = await Promise.all(
          Array.from({ length: PER_STREAM }, (_, i) => store.append(stream, newEvent(`${stream}${i}`))),
        )
        expected.get(stream)!.push(...ids)
      }
      gate = undefined
      release()
      await waitUntil(
        () => streams.every((stream) => collector.ids(stream).length === expected.get(stream)!.length),
        'the backlog',
      )
      for (const stream of streams) expect(collector.ids(stream)).toEqual(expected.get(stream))
      const largest = Math.max(...replies)
      console.info(
        `backlog of ${streams.length} x ${PER_STREAM} entries: ${replies.length} XREAD replies, largest ${largest} entries`,
      )
      expect(largest).toBeLessThanOrEqual(TAIL_BUDGET)
      expect(collector.resets).toEqual([])
      await store.close()
      await client.quit()
    })

    it('shares one event object between the tail and reads', async () => {
      const { store, collector } = openAttached()
      await store.watch('s')
      await store.append('s', newEvent('shared'))
      await waitUntil(() => collector.ids('s').length === 1, 'the delivery')
      const read = await store.read('s', '0-0', 1)
      expect(read.events[0]).toBe(collector.delivered.get('s')![0])
    })

    it('refuses a second hub', () => {
      const store = open()
      store.attach(new Collector())
      expect(() => store.attach(new Collector())).toThrow(/one store per hub/)
    })
  })

  describe('clients and shutdown', () => {
    it('uses a given client, duplicates it for the tail, and leaves it open on close', async () => {
      const client = new Redis(server!.url)
      const { store, collector } = openAttached({ redis: client })
      await store.watch('s')
      const id = await store.append('s', newEvent('x'))
      await waitUntil(() => collector.ids('s').length === 1, 'the delivery')
      expect(collector.ids('s')).toEqual([id])
      await store.close()
      expect(client.status).toBe('ready')
      expect(await client.xlen(`${store.prefix}{s}`)).toBe(1)
      await client.quit()
    })

    it('works through a client with an ioredis keyPrefix', async () => {
      const outer = uniquePrefix('outer')
      redis.prefixes.push(outer)
      const client = new Redis(server!.url, { keyPrefix: outer })
      const store = createRedisStore({ redis: client, prefix: 'inner:', onError: (e) => reported.push(e) })
      const collector = new Collector()
      store.attach(collector)
      await store.watch('s')
      const id = await store.append('s', newEvent('x'))
      await waitUntil(() => collector.ids('s').length === 1, 'the delivery')
      expect((await store.read('s', '0-0', 10)).events.map((event) => event.id)).toEqual([id])
      expect(await redis.admin.xlen(`${outer}inner:{s}`)).toBe(1)
      await store.close()
      await client.quit()
    })

    it('rejects at once with ERR_STORE_UNAVAILABLE when Redis is unreachable, and closes promptly', async () => {
      const errors: unknown[] = []
      // Port 1 on loopback refuses connections.
      const store = createRedisStore({
        redis: 'redis://127.0.0.1:1',
        commandTimeout: 1000,
        onError: (error) => errors.push(error),
      })
      redis.stores.push(store)
      store.attach(new Collector())
      await waitUntil(() => errors.length > 0, 'the first connection failure')
      const started = performance.now()
      const failure = await store.append('s', newEvent('x')).catch((error: unknown) => error)
      const elapsed = performance.now() - started
      expect(failure).toBeInstanceOf(RewindError)
      expect((failure as RewindError).code).toBe('ERR_STORE_UNAVAILABLE')
      expect((failure as RewindError).message).toMatch(/could not append to stream "s": not connected/)
      expect((failure as RewindError).cause).toBeInstanceOf(Error)
      console.info(`append rejected ${elapsed.toFixed(1)} ms after the call while Redis was unreachable`)
      await expect(store.read('s', '0-0', 10)).rejects.toMatchObject({ code: 'ERR_STORE_UNAVAILABLE' })
      await expect(store.watch('s')).rejects.toMatchObject({ code: 'ERR_STORE_UNAVAILABLE' })
      await store.close()
      await expect(store.append('s', newEvent('y'))).rejects.toMatchObject({
        code: 'ERR_STORE_UNAVAILABLE',
        message: expect.stringMatching(/closed/),
      })
    })

    it('waits for the first connection instead of failing a command sent right after creation', async () => {
      const store = open()
      const id = await store.append('s', newEvent('early'))
      expect(id).toMatch(/^\d+-\d+$/)
    })

    it('leaves no handles behind after close', async () => {
      const before = new Set(process.getActiveResourcesInfo().filter((kind) => kind !== 'TTYWrap'))
      const baseline = process.getActiveResourcesInfo().length
      const store = createRedisStore({
        redis: server!.url,
        prefix: uniquePrefix('handles'),
        onError: (e) => reported.push(e),
      })
      const collector = new Collector()
      store.attach(collector)
      await store.watch('s')
      await store.append('s', newEvent('x'))
      await waitUntil(() => collector.ids('s').length === 1, 'the delivery')
      expect(process.getActiveResourcesInfo().length).toBeGreaterThan(baseline)
      await store.close()
      await waitUntil(
        () => process.getActiveResourcesInfo().length <= baseline,
        'handles to be released',
        3000,
      )
      expect(new Set(process.getActiveResourcesInfo().filter((kind) => kind !== 'TTYWrap'))).toEqual(before)
      await deleteKeys(redis.admin, store.prefix)
    })
  })
})

/** The id just before a `<ms>-<seq>` id. */
function before(id: string): string {
  const [ms, seq] = id.split('-').map(BigInt) as [bigint, bigint]
  return seq > 0n ? `${ms}-${seq - 1n}` : `${ms - 1n}-18446744073709551615`
}
