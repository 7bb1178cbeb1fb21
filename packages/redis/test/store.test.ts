/**
 * The store's own contract, against a real Redis: appends and their stored fields, every read path
 * and its positions, gaps, values and frames, the live tail, errors and shutdown.
 */
import type { StoreDelivery, StoredEvent } from '@rewind/core'
import { RewindError } from '@rewind/core'
import { Redis } from 'ioredis'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { createRedisStore, type RedisStore, type RedisStoreOptions } from '../src/index.js'
import { deleteKeys, redisForTests, uniquePrefix } from './helpers/redis-server.js'
import { waitUntil } from './helpers/sse.js'

const server = await redisForTests('store contract')

/** Collects what the tail delivers, as the hub would receive it. */
class Collector implements StoreDelivery {
  readonly delivered = new Map<string, StoredEvent[]>()
  batches = 0
  deliver(stream: string, events: readonly StoredEvent[]): void {
    this.batches++
    const list = this.delivered.get(stream) ?? []
    list.push(...events)
    this.delivered.set(stream, list)
  }
  readonly resets: string[] = []
  reset(stream: string): void {
    this.resets.push(stream)
  }
  ids(stream: string): string[] {
    return (this.delivered.get(stream) ?? []).map((event) => event.id)
  }
}

function newEvent(data: unknown, event?: string) {
  return { event, data: typeof data === 'string' ? data : JSON.stringify(data), value: data }
}

describe.skipIf(server === undefined)('RedisStore', () => {
  let admin: Redis
  const stores: RedisStore[] = []
  const prefixes: string[] = []
  /** What stores opened with `open` report: nothing, when Redis is healthy. */
  let reported: unknown[] = []

  function open(options: RedisStoreOptions = {}): RedisStore {
    const prefix = uniquePrefix('store')
    prefixes.push(prefix)
    const store = createRedisStore({
      redis: server!.url,
      prefix,
      onError: (error) => reported.push(error),
      ...options,
    })
    stores.push(store)
    return store
  }

  beforeAll(() => {
    admin = new Redis(server!.url)
  })

  afterEach(async () => {
    await Promise.all(stores.splice(0).map((store) => store.close()))
    for (const prefix of prefixes.splice(0)) await deleteKeys(admin, prefix)
    const errors = reported
    reported = []
    expect(errors).toEqual([])
  })

  afterAll(async () => {
    await admin.quit()
    await server!.close()
  })

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
      ]
      for (const [options, field] of cases) {
        let caught: unknown
        try {
          createRedisStore({ redis: server!.url, ...options }).close()
        } catch (error) {
          caught = error
        }
        expect(caught, field).toBeInstanceOf(RewindError)
        expect((caught as RewindError).code).toBe('ERR_INVALID_ARGUMENT')
        expect((caught as RewindError).field).toBe(field)
      }
    })

    it('uses the defaults', () => {
      const store = open({ prefix: undefined as unknown as string })
      expect(store.prefix).toBe('rewind:')
      expect(store.key('news')).toBe('rewind:news')
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
      const entries = await admin.xrange(store.key('s'), '-', '+')
      expect(entries).toEqual([
        [a, ['prev', '0-0', 'event', '', 'string', '1', 'data', 'plain text']],
        [b, ['prev', a, 'event', 'created', 'string', '0', 'data', '{"n":1}']],
        [c, ['prev', b, 'event', '', 'string', '1', 'data', '"quoted"']],
      ])
    })

    it('trims exactly to maxLen with exact trimming', async () => {
      const store = open({ maxLen: 5, trim: 'exact' })
      for (let i = 0; i < 20; i++) await store.append('s', newEvent(i))
      expect(await admin.xlen(store.key('s'))).toBe(5)
    })
  })

  describe('read', () => {
    it('reads nothing at 0-0 from an empty stream', async () => {
      const store = open()
      expect(await store.read('empty', undefined, 10)).toEqual({
        events: [],
        position: { id: '0-0', major: 0, minor: 0 },
        done: true,
      })
      expect(await store.read('empty', null, 10)).toEqual({
        events: [],
        position: { id: '0-0', major: 0, minor: 0 },
        done: true,
      })
      expect(await store.read('empty', '0-0', 10)).toEqual({
        events: [],
        position: { id: '0-0', major: 0, minor: 0 },
        done: true,
      })
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
      await admin.xdel(store.key('s'), ids[3]!, ids[4]!)
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

    it('keeps a deserializer failure and throws it on every access', async () => {
      let parses = 0
      const store = open({
        deserialize: () => {
          parses++
          throw new Error('bad payload')
        },
      })
      await store.append('s', newEvent({ x: 1 }))
      const [event] = (await store.read('s', '0-0', 1)).events
      expect(() => event!.value).toThrow('bad payload')
      expect(() => event!.value).toThrow('bad payload')
      expect(parses).toBe(1)
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
      stores.push(other)
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
      const store = open()
      const collector = new Collector()
      store.attach(collector)
      await store.watch('new')
      const id = await store.append('new', newEvent('hello'))
      await waitUntil(() => collector.ids('new').length === 1, 'the first event')
      expect(collector.ids('new')).toEqual([id])
      expect(collector.delivered.get('new')![0]!.value).toBe('hello')
    })

    it('wakes the blocked read to add a stream, long before blockMs', async () => {
      const store = open({ blockMs: 60_000 })
      const collector = new Collector()
      store.attach(collector)
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
      const store = open()
      const collector = new Collector()
      store.attach(collector)
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
      const store = open()
      const collector = new Collector()
      store.attach(collector)
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
      const client = new Redis(server!.url)
      const duplicate = client.duplicate.bind(client)
      let unwatchOnReady: () => void = () => {}
      client.duplicate = (override) => {
        const tail = duplicate(override)
        // Right after the tail asks for its client id, before the answer comes back.
        tail.once('ready', () => setImmediate(() => unwatchOnReady()))
        return tail
      }
      const prefix = uniquePrefix('leaving')
      prefixes.push(prefix)
      const store = createRedisStore({ redis: client, prefix, onError: (e) => reported.push(e) })
      stores.push(store)
      const collector = new Collector()
      store.attach(collector)
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
      const client = new Redis(server!.url)
      let duplicates = 0
      const duplicate = client.duplicate.bind(client)
      client.duplicate = (override) => {
        duplicates++
        return duplicate(override)
      }
      const prefix = uniquePrefix('many')
      prefixes.push(prefix)
      const store = createRedisStore({ redis: client, prefix, onError: (e) => reported.push(e) })
      stores.push(store)
      const collector = new Collector()
      store.attach(collector)
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

    it('shares one event object between the tail and reads', async () => {
      const store = open()
      const collector = new Collector()
      store.attach(collector)
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
      const prefix = uniquePrefix('given')
      prefixes.push(prefix)
      const store = createRedisStore({ redis: client, prefix, onError: (e) => reported.push(e) })
      const collector = new Collector()
      store.attach(collector)
      await store.watch('s')
      const id = await store.append('s', newEvent('x'))
      await waitUntil(() => collector.ids('s').length === 1, 'the delivery')
      expect(collector.ids('s')).toEqual([id])
      await store.close()
      expect(client.status).toBe('ready')
      expect(await client.xlen(`${prefix}s`)).toBe(1)
      await client.quit()
    })

    it('works through a client with an ioredis keyPrefix', async () => {
      const outer = uniquePrefix('outer')
      prefixes.push(outer)
      const client = new Redis(server!.url, { keyPrefix: outer })
      const store = createRedisStore({ redis: client, prefix: 'inner:', onError: (e) => reported.push(e) })
      const collector = new Collector()
      store.attach(collector)
      await store.watch('s')
      const id = await store.append('s', newEvent('x'))
      await waitUntil(() => collector.ids('s').length === 1, 'the delivery')
      expect((await store.read('s', '0-0', 10)).events.map((event) => event.id)).toEqual([id])
      expect(await admin.xlen(`${outer}inner:s`)).toBe(1)
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
      stores.push(store)
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
      await deleteKeys(admin, store.prefix)
    })
  })
})

/** The id just before a `<ms>-<seq>` id. */
function before(id: string): string {
  const [ms, seq] = id.split('-').map(BigInt) as [bigint, bigint]
  return seq > 0n ? `${ms}-${seq - 1n}` : `${ms - 1n}-18446744073709551615`
}
