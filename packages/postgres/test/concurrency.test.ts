/**
 * Commit order under concurrency: 64 writers append to one stream, each inside its own transaction
 * that sleeps a random time before it commits (10 % roll back), while 50 readers resume from random
 * cursors and read on until the writers are done. Every reader must see exactly the committed events
 * after its cursor, in order: nothing skipped, nothing rolled back.
 *
 * The negative test runs the same harness on the naive design (a `bigserial` id assigned at insert,
 * readers asking for `id > cursor`), and expects it to fail: a transaction that took id 5 and commits
 * after the one that took id 6 is never seen by a reader that already moved past 6. It documents why
 * the store locks the stream's row instead.
 */
import pg from 'pg'
import { afterAll, describe, expect, it } from 'vitest'
import { createPostgresStore } from '../src/index.js'
import { databaseForTests, delay, dropSchemas, uniqueSchema } from './helpers/database.js'

const url = await databaseForTests('Postgres commit-order')

const WRITERS = 64
const APPENDS_PER_WRITER = 2
const READERS = 50
const MAX_SLEEP = 40
const ROLLBACK_RATE = 0.1

/** What the harness needs of a design: append in a transaction, and read after an opaque cursor. */
interface Design {
  /** Appends `data` on `client`, inside the transaction the harness opened. */
  append(client: pg.PoolClient, data: string): Promise<void>
  /** The cursor before everything. */
  readonly origin: string
  /** Where an id (or cursor) is in the stream's order. */
  order(id: string): number
  /** Up to 50 events after `cursor`, oldest first, and the cursor after them. */
  read(cursor: string): Promise<{ data: string[]; cursor: string; ids: string[] }>
}

interface Outcome {
  committed: Set<string>
  rolledBack: Set<string>
  /** Everything stored, read in order from the origin once the writers are done. */
  final: { data: string[]; ids: string[] }
  /** For each reader: the cursor it started after, and what it saw. */
  readers: { start: string; seen: string[] }[]
}

async function readAll(design: Design, from: string): Promise<{ data: string[]; ids: string[] }> {
  const data: string[] = []
  const ids: string[] = []
  let cursor = from
  for (;;) {
    const page = await design.read(cursor)
    if (page.data.length === 0) return { data, ids }
    data.push(...page.data)
    ids.push(...page.ids)
    cursor = page.cursor
  }
}

async function run(design: Design, pool: pg.Pool): Promise<Outcome> {
  const committed = new Set<string>()
  const rolledBack = new Set<string>()
  let writing = true
  const writers = Array.from({ length: WRITERS }, async (_, w) => {
    for (let k = 0; k < APPENDS_PER_WRITER; k++) {
      const client = await pool.connect()
      const data = `w${w}-${k}`
      try {
        await client.query('BEGIN')
        await design.append(client, data)
        await delay(Math.random() * MAX_SLEEP)
        if (Math.random() < ROLLBACK_RATE) {
          await client.query('ROLLBACK')
          rolledBack.add(data)
        } else {
          await client.query('COMMIT')
          committed.add(data)
        }
      } finally {
        client.release()
      }
    }
  })
  const readers = Array.from({ length: READERS }, async () => {
    await delay(Math.random() * 200)
    // A random cursor among the events committed so far (or the origin).
    const sofar = await readAll(design, design.origin)
    const start = Math.floor(Math.random() * (sofar.ids.length + 1))
    const from = start === 0 ? design.origin : sofar.ids[start - 1]!
    let cursor = from
    const seen: string[] = []
    for (;;) {
      const done = !writing
      const page = await design.read(cursor)
      seen.push(...page.data)
      cursor = page.cursor
      if (page.data.length === 0) {
        if (done) break
        await delay(5 + Math.random() * 10)
      }
    }
    return { start: from, seen }
  })
  await Promise.all(writers)
  writing = false
  const seen = await Promise.all(readers)
  const final = await readAll(design, design.origin)
  return { committed, rolledBack, final, readers: seen }
}

/** Readers that did not see exactly the committed events after their cursor. */
function wrongReaders(design: Design, outcome: Outcome): number {
  return outcome.readers.filter((reader) => {
    const after = design.order(reader.start)
    const expected = outcome.final.data.filter((_, i) => design.order(outcome.final.ids[i]!) > after)
    return JSON.stringify(reader.seen) !== JSON.stringify(expected)
  }).length
}

describe.skipIf(url === undefined)('commit order with 64 concurrent writers', () => {
  const schemas: string[] = []
  // 64 writers' connections, for both designs (the shared server allows 100).
  const pool = new pg.Pool({ connectionString: url, max: WRITERS })

  afterAll(async () => {
    await pool.end()
    await dropSchemas(url!, schemas)
  })

  it('every reader sees exactly the committed events, in order, gap-free', async () => {
    const schema = uniqueSchema('order')
    schemas.push(schema)
    const store = createPostgresStore({ connectionString: url, schema, listen: false, poolSize: 4 })
    await store.migrate()
    const design: Design = {
      async append(client, data) {
        await store.appendWithin(client, 'hot', { event: undefined, data, value: data })
      },
      origin: '0-0',
      order: (id) => Number(id.split('-')[1]),
      async read(cursor) {
        const page = await store.read('hot', cursor, 50)
        expect(page.gap).toBeUndefined()
        return {
          data: page.events.map((e) => e.data),
          ids: page.events.map((e) => e.id),
          cursor: page.position.id,
        }
      },
    }
    try {
      const outcome = await run(design, pool)
      expect(outcome.rolledBack.size).toBeGreaterThan(0)
      expect(new Set(outcome.final.data)).toEqual(outcome.committed)
      expect(outcome.final.data).toHaveLength(outcome.committed.size)
      for (const data of outcome.rolledBack) expect(outcome.final.data).not.toContain(data)
      // Gap-free: the ids count 1, 2, 3... whatever rolled back.
      expect(outcome.final.ids.map((id) => Number(id.split('-')[1]))).toEqual(
        Array.from({ length: outcome.committed.size }, (_, i) => i + 1),
      )
      expect(wrongReaders(design, outcome)).toBe(0)
    } finally {
      await store.close()
    }
  })

  it('the naive design (a bigserial assigned at insert) fails the same test: readers skip late commits', async () => {
    const schema = uniqueSchema('naive')
    schemas.push(schema)
    await pool.query(
      `CREATE SCHEMA "${schema}"; CREATE TABLE "${schema}".events (id bigserial PRIMARY KEY, data text NOT NULL)`,
    )
    const design: Design = {
      async append(client, data) {
        await client.query(`INSERT INTO "${schema}".events (data) VALUES ($1)`, [data])
      },
      origin: '0',
      order: Number,
      async read(cursor) {
        const { rows } = await pool.query<{ id: string; data: string }>(
          `SELECT id, data FROM "${schema}".events WHERE id > $1 ORDER BY id LIMIT 50`,
          [cursor],
        )
        const last = rows[rows.length - 1]
        return { data: rows.map((r) => r.data), ids: rows.map((r) => r.id), cursor: last?.id ?? cursor }
      },
    }
    const outcome = await run(design, pool)
    // Every committed event is in the table...
    expect(new Set(outcome.final.data)).toEqual(outcome.committed)
    // ...but readers that moved past an id before its transaction committed never see it.
    expect(wrongReaders(design, outcome)).toBeGreaterThan(0)
  })
})
