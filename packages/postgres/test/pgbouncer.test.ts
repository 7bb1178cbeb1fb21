/**
 * Through PgBouncer in transaction mode, which accepts `LISTEN` and silently never delivers a
 * notification: the store must notice (its probe notification does not come back), say so once, and
 * still deliver every event, in order, by polling.
 */
import type { StoredEvent } from '@rewind/core'
import { afterAll, describe, expect, it } from 'vitest'
import { createPostgresStore } from '../src/index.js'
import { databaseForTests, dropSchemas, uniqueSchema, waitUntil } from './helpers/database.js'
import { type Bouncer, bouncerForTests } from './helpers/pgbouncer.js'

const url = await databaseForTests('Postgres through PgBouncer')
const bouncer: Bouncer | undefined =
  url === undefined ? undefined : await bouncerForTests('Postgres through PgBouncer', url)

describe.skipIf(bouncer === undefined)('the Postgres store through PgBouncer in transaction mode', () => {
  const schema = uniqueSchema('bouncer')

  afterAll(async () => {
    await bouncer?.close()
    await dropSchemas(url!, [schema])
  })

  it('warns that LISTEN gets nothing, and delivers every event in order by polling', async () => {
    const reported: unknown[] = []
    const reader = createPostgresStore({
      connectionString: bouncer!.url,
      schema,
      poolSize: 2,
      pollInterval: 100,
      probeTimeout: 500,
      onError: (error) => reported.push(error),
    })
    const writer = createPostgresStore({ connectionString: bouncer!.url, schema, poolSize: 2, listen: false })
    const delivered: StoredEvent[] = []
    reader.attach({ deliver: (_stream, events) => delivered.push(...events), reset: () => {} })
    try {
      await reader.watch('s')
      await waitUntil(() => reader.mode === 'polling', 'the probe to give up', 3000)
      expect(reported.map(String)).toEqual([expect.stringContaining('pooler in transaction mode')])
      const ids: string[] = []
      for (let i = 0; i < 20; i++)
        ids.push(await writer.append('s', { event: undefined, data: `${i}`, value: `${i}` }))
      const sent = Date.now()
      await waitUntil(() => delivered.length === 20, 'the events', 2000)
      expect(Date.now() - sent).toBeLessThan(100 + 400)
      expect(delivered.map((event) => event.id)).toEqual(ids)
      expect(delivered.map((event) => event.data)).toEqual(Array.from({ length: 20 }, (_, i) => `${i}`))
    } finally {
      await writer.close()
      await reader.close()
    }
  })
})
