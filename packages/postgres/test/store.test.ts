/**
 * The Postgres store's own contract, against a real Postgres: ids and every read path, bounds by
 * count, bytes and age with the gap signal, a new epoch after the TTL, 1 MB events, one transaction
 * per batch, and live delivery across stores: by notification, after the LISTEN connection is killed,
 * and by polling alone.
 */
import pg from 'pg'
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { Collector, EMPTY_READ, newEvent } from '../../../test/support/store-delivery.js'
import { sleep, waitUntil } from '../../../test/support/wait.js'
import { createPostgresStore, type PostgresStore, type PostgresStoreOptions } from '../src/index.js'
import { databaseForTests, dropSchemas, uniqueSchema } from './helpers/database.js'

const url = await databaseForTests('Postgres store contract')

describe.skipIf(url === undefined)('PostgresStore', () => {
  const stores: PostgresStore[] = []
  const schemas: string[] = []
  let reported: unknown[] = []

  function open(options: PostgresStoreOptions = {}, schema = uniqueSchema('store')): PostgresStore {
    if (!schemas.includes(schema)) schemas.push(schema)
    const store = createPostgresStore({
      connectionString: url,
      schema,
      poolSize: 4,
      onError: (error) => reported.push(error),
      ...options,
    })
    stores.push(store)
    return store
  }

  afterEach(async () => {
    await Promise.all(stores.splice(0).map((store) => store.close()))
    reported = []
  })

  afterAll(async () => {
    await dropSchemas(url!, schemas)
  })

  describe('options', () => {
    it('refuses values out of range with ERR_INVALID_ARGUMENT naming the option', () => {
      const cases: [PostgresStoreOptions, string][] = [
        [{ maxLen: 0 }, 'maxLen'],
        [{ schema: 'Bad-Name' }, 'schema'],
        [{ pollInterval: 0 }, 'pollInterval'],
        [{ maxAge: -1 }, 'maxAge'],
        [{ minReconnectDelay: 500, maxReconnectDelay: 100 }, 'maxReconnectDelay'],
        [{ connectionString: url, pool: new pg.Pool() }, 'pool'],
      ]
      for (const [options, field] of cases) {
        expect(() => createPostgresStore(options)).toThrow(
          expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT', field }),
        )
      }
    })
  })

  describe('append and read', () => {
    it('issues <epoch>-<seq> ids from 1, and reads every path of the contract', async () => {
      const store = open()
      expect(await store.read('s', undefined, 10)).toEqual(EMPTY_READ)
      const ids = [
        await store.append('s', newEvent('a')),
        await store.append('s', newEvent({ n: 2 }, 'tick')),
      ]
      const epoch = ids[0]!.split('-')[0]!
      expect(ids).toEqual([`${epoch}-1`, `${epoch}-2`])
      const fresh = await store.read('s', undefined, 10)
      expect(fresh.position.id).toBe(`${epoch}-2`)
      const all = await store.read('s', null, 10)
      expect(all).toMatchObject({ events: [], position: { id: `${epoch}-0` }, done: false })
      const page = await store.read('s', `${epoch}-0`, 10)
      expect(page.events.map((e) => [e.id, e.event, e.value])).toEqual([
        [`${epoch}-1`, undefined, 'a'],
        [`${epoch}-2`, 'tick', { n: 2 }],
      ])
      expect(page.events[1]!.frame.toString()).toBe(`id: ${epoch}-2\nevent: tick\ndata: {"n":2}\n\n`)
      expect(page.done).toBe(true)
      expect((await store.read('s', `${epoch}-0`, 1)).done).toBe(false)
      expect(await store.read('s', `${epoch}-2`, 10)).toMatchObject({ events: [], done: true })
      // A client that saw the stream before it had a row resumes from its start.
      expect((await store.read('s', '0-0', 10)).events.map((e) => e.id)).toEqual(ids)
      expect((await store.read('s', '0-0', 10)).gap).toBeUndefined()
      expect((await store.read('s', `${epoch}-3`, 10)).gap).toBe('unknown')
      expect((await store.read('s', 'zz-1', 10)).gap).toBe('epoch')
      expect((await store.read('s', 'not an id', 10)).gap).toBe('unknown')
      expect((await store.read('other', `${epoch}-1`, 10)).gap).toBe('epoch')
    })

    it('keeps any data a string can carry, NUL and astral characters included', async () => {
      const store = open()
      const data = 'a\u0000b 🙂 é\r\n'
      const id = await store.append('s', newEvent(data))
      const page = await store.read('s', `${id.split('-')[0]}-0`, 10)
      expect(page.events.map((e) => [e.data, e.value])).toEqual([[data, data]])
    })

    it('bounds a stream by count and bytes, with the gap signal for what was evicted', async () => {
      const store = open({ maxLen: 3, maxBytes: 3 * (32 + 10) })
      const ids: string[] = []
      for (let i = 0; i < 5; i++) ids.push(await store.append('s', newEvent(`${i}`.padStart(10, '0'))))
      const epoch = ids[0]!.split('-')[0]
      const gap = await store.read('s', ids[0], 10)
      expect(gap).toMatchObject({ gap: 'evicted', position: { id: `${epoch}-2` } })
      expect((await store.read('s', `${epoch}-2`, 10)).events.map((e) => e.id)).toEqual(ids.slice(2))
      // One event over the byte bound evicts two.
      ids.push(await store.append('s', newEvent('x'.repeat(10 + 42))))
      expect((await store.read('s', null, 10)).position.id).toBe(`${epoch}-4`)
    })

    it('bounds a stream by age, by the database clock', async () => {
      const store = open({ maxAge: 300 })
      const first = await store.append('s', newEvent('old'))
      await sleep(400)
      expect(await store.read('s', first, 10)).toMatchObject({ events: [], done: true })
      const epoch = first.split('-')[0]
      expect((await store.read('s', `${epoch}-0`, 10)).gap).toBe('evicted')
      await store.append('s', newEvent('new'))
      expect((await store.read('s', first, 10)).events.map((e) => e.data)).toEqual(['new'])
    })

    it('starts a new epoch when a stream is written again after its TTL, and old ids get the gap signal', async () => {
      const store = open({ streamTtl: 100 })
      const old = await store.append('s', newEvent('a'))
      await sleep(150)
      expect(await store.sweep()).toBe(1)
      expect((await store.read('s', old, 10)).gap).toBe('epoch')
      const next = await store.append('s', newEvent('b'))
      expect(next.endsWith('-1')).toBe(true)
      expect(next).not.toBe(old)
      expect((await store.read('s', old, 10)).gap).toBe('epoch')
    })

    it('stores and delivers a 1 MB event (NOTIFY carries only the stream name)', async () => {
      const writer = open()
      const reader = open({}, writer.schema)
      const collector = new Collector()
      reader.attach(collector)
      await reader.watch('big')
      const data = 'x'.repeat(1024 * 1024)
      const id = await writer.append('big', newEvent(data))
      await waitUntil(() => collector.data('big').length === 1, 'the 1 MB event')
      expect(collector.data('big')[0]).toBe(data)
      expect((await reader.read('big', null, 10)).position.id).toBe(`${id.split('-')[0]}-0`)
    })

    it('appends a burst to one stream in a few transactions, in order', async () => {
      const store = open({ maxBatch: 100 })
      await store.migrate()
      const pool = (store as unknown as { database: { pool: pg.Pool } }).database.pool
      const query = pool.query.bind(pool)
      let appendCalls = 0
      pool.query = ((...args: Parameters<typeof query>) => {
        if (typeof args[0] === 'string' && args[0].includes('.append(')) appendCalls++
        return query(...args)
      }) as typeof pool.query
      const ids = await Promise.all(
        Array.from({ length: 300 }, (_, i) => store.append('tokens', newEvent(`t${i}`))),
      )
      const seqs = ids.map((id) => Number(id.split('-')[1]))
      expect(seqs).toEqual(Array.from({ length: 300 }, (_, i) => i + 1))
      expect(appendCalls).toBeLessThanOrEqual(5)
      const page = await store.read('tokens', `${ids[0]!.split('-')[0]}-0`, 1000)
      expect(page.events.map((e) => e.data)).toEqual(Array.from({ length: 300 }, (_, i) => `t${i}`))
    })

    it('refuses appends past 16 batches waiting for one stream, and stores the others in order', async () => {
      const store = open({ maxBatch: 2 })
      const outcomes = await Promise.allSettled(
        Array.from({ length: 60 }, (_, i) => store.append('s', newEvent(`${i}`))),
      )
      const stored = outcomes.flatMap((o, i) => (o.status === 'fulfilled' ? [i] : []))
      const refused = outcomes.filter((o) => o.status === 'rejected')
      // The first is sent at once; 32 wait; the rest are refused.
      expect(stored).toEqual(Array.from({ length: 33 }, (_, i) => i))
      expect(refused).toHaveLength(27)
      expect(refused[0]).toMatchObject({ reason: { code: 'ERR_STORE_UNAVAILABLE' } })
      const page = await store.read('s', '0-0', 100)
      expect(page.events.map((e) => e.data)).toEqual(stored.map(String))
    })

    it('fails an append stuck behind a lock after commandTimeout, with ERR_STORE_UNAVAILABLE', async () => {
      const store = open({ commandTimeout: 300 })
      await store.append('s', newEvent('a'))
      const locker = new pg.Client({ connectionString: url })
      await locker.connect()
      try {
        await locker.query('BEGIN')
        await locker.query(`SELECT 1 FROM "${store.schema}".streams WHERE stream = 's' FOR UPDATE`)
        const started = Date.now()
        await expect(store.append('s', newEvent('b'))).rejects.toMatchObject({
          code: 'ERR_STORE_UNAVAILABLE',
        })
        expect(Date.now() - started).toBeLessThan(1000)
        // Past Postgres's own lock timeout (0.8 × commandTimeout from when the wait began).
        await sleep(200)
        await locker.query('ROLLBACK')
        // Postgres gave up waiting for the row too (lock_timeout), so the append left no hole.
        expect(await store.append('s', newEvent('c'))).toMatch(/-2$/)
      } finally {
        await locker.end()
      }
    })

    it('refuses an append with ERR_STORE_UNAVAILABLE when Postgres is unreachable', async () => {
      const store = open({ connectionString: 'postgres://postgres@127.0.0.1:1/none', listen: false })
      await expect(store.append('s', newEvent('a'))).rejects.toMatchObject({ code: 'ERR_STORE_UNAVAILABLE' })
    })
  })

  describe('live delivery across stores', () => {
    it('delivers the appends of every process to a watching store, in order, by notification', async () => {
      const writer = open()
      const reader = open({ pollInterval: 60_000 }, writer.schema)
      const collector = new Collector()
      reader.attach(collector)
      await reader.watch('s')
      await waitUntil(() => reader.mode === 'listening', 'the LISTEN probe')
      for (let i = 0; i < 20; i++) await writer.append('s', newEvent(`${i}`))
      await waitUntil(() => collector.data('s').length === 20, 'the events')
      expect(collector.data('s')).toEqual(Array.from({ length: 20 }, (_, i) => `${i}`))
      expect(collector.resets).toEqual([])
    })

    it('converges within the poll interval when the LISTEN backend is killed mid-run', async () => {
      const writer = open()
      const reader = open({ pollInterval: 200, minReconnectDelay: 2000 }, writer.schema)
      const collector = new Collector()
      reader.attach(collector)
      await reader.watch('s')
      await waitUntil(() => reader.mode === 'listening', 'the LISTEN probe')
      const admin = new pg.Client({ connectionString: url })
      await admin.connect()
      let sent = 0
      const writing = (async () => {
        for (; sent < 60; sent++) {
          await writer.append('s', newEvent(`${sent}`))
          await sleep(5)
        }
      })()
      await waitUntil(() => collector.data('s').length >= 10, 'the first events')
      const killed = await admin.query(
        `SELECT pg_terminate_backend(pid) AS killed FROM pg_stat_activity
         WHERE pid <> pg_backend_pid() AND query LIKE 'LISTEN "${writer.schema}_events"%'`,
      )
      await admin.end()
      expect(killed.rows.map((row) => row.killed)).toEqual([true])
      await writing
      const done = Date.now()
      // The reconnection waits 2 s: the poll alone catches up.
      await waitUntil(() => collector.data('s').length === 60, 'convergence', 200 + 500)
      expect(Date.now() - done).toBeLessThan(700)
      expect(collector.data('s')).toEqual(Array.from({ length: 60 }, (_, i) => `${i}`))
      expect(reported.some((error) => String(error).includes('LISTEN connection failed'))).toBe(true)
      await waitUntil(() => reader.mode === 'listening', 'the LISTEN reconnection', 5000)
    })

    it('delivers by polling alone without LISTEN', async () => {
      const writer = open()
      const reader = open({ listen: false, pollInterval: 50 }, writer.schema)
      const collector = new Collector()
      reader.attach(collector)
      await reader.watch('s')
      expect(reader.mode).toBe('polling')
      for (let i = 0; i < 5; i++) await writer.append('s', newEvent(`${i}`))
      await waitUntil(() => collector.data('s').length === 5, 'the events')
      expect(collector.data('s')).toEqual(['0', '1', '2', '3', '4'])
    })

    it('resets live subscribers when events were trimmed before the tail read them', async () => {
      const writer = open({ maxLen: 2 })
      const reader = open({ listen: false, pollInterval: 60_000 }, writer.schema)
      const collector = new Collector()
      reader.attach(collector)
      await writer.append('s', newEvent('0'))
      await reader.watch('s')
      for (let i = 1; i < 6; i++) await writer.append('s', newEvent(`${i}`))
      ;(reader as unknown as { tail: { poke(stream: string): void } }).tail.poke('s')
      await waitUntil(() => collector.resets.length === 1, 'the reset')
      expect(collector.data('s')).toEqual([])
      expect(reported.some((error) => (error as { code?: string }).code === 'ERR_HISTORY_LOST')).toBe(true)
    })
  })
})
