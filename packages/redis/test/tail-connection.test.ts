/**
 * The single-server tail's blocking connection through its failures, on a real Redis: the errors
 * it emits are reported, a read Redis refuses leaves it in place, a connection ioredis gave up on is
 * opened again, and one that ioredis is reconnecting is left to ioredis's backoff.
 */
import { describe, expect, it, vi } from 'vitest'
import { freePort } from '../../../test/support/ports.js'
import { sleep, waitUntil } from '../../../test/support/wait.js'
import { redisForTests } from './helpers/redis-server.js'
import { type HarnessOptions, tailOn } from './helpers/tail-harness.js'

const server = await redisForTests('tail connection')

const LOST =
  'the Redis live tail failed (the connection to Redis was lost); it retries and resumes where it stopped'

describe.skipIf(server === undefined)("the live tail's connection", () => {
  /** A tail that expects failures, following stream `s` once its first read is on its way. */
  async function following(options: HarnessOptions = {}) {
    const t = tailOn(server!.url, { expectReports: true, ...options })
    t.tail.add('s', t.key('s'), '0-0')
    await waitUntil(() => t.reads().length === 1, 'the first read')
    return t
  }

  it('reports the errors of its connection', async () => {
    // Nothing listens there: every attempt to connect fails.
    const t = tailOn(server!.url, { url: `redis://127.0.0.1:${await freePort()}`, expectReports: true })
    try {
      t.tail.add('s', t.key('s'), '0-0')
      await waitUntil(() => t.reported.length > 0, 'the connection error')
      expect((t.reported[0] as NodeJS.ErrnoException).code).toBe('ECONNREFUSED')
    } finally {
      await t.close()
    }
  })

  it('keeps its connection through a read Redis refuses', async () => {
    const t = tailOn(server!.url, { expectReports: true })
    try {
      // The key is a string: the reads fail (WRONGTYPE) until it is a stream.
      await t.admin.set(t.key('s'), 'not a stream')
      t.tail.add('s', t.key('s'), '0-0')
      await waitUntil(() => t.reported.length > 0, 'the failed read')
      await t.admin.del(t.key('s'))
      const id = await t.append(t.key('s'), '0-0', 'after the fault')
      await waitUntil(() => t.batches.length === 1, 'the delivery after the fault')
      expect(t.batches).toEqual([['s', [id]]])
      // One CLIENT ID: the connection it asked for its id is the one still reading.
      expect(t.sent.filter(([name]) => name === 'CLIENT')).toEqual([['CLIENT', 'ID']])
    } finally {
      await t.close()
    }
  })

  it('waits twice as long after each read that fails in a row', async () => {
    // The top of each backoff range: 26, 52, 104 ms after the first, second and third failure.
    vi.spyOn(Math, 'random').mockReturnValue(0.999_999)
    const timers = vi.spyOn(globalThis, 'setTimeout')
    const t = tailOn(server!.url, { expectReports: true, minReconnectDelay: 13, maxReconnectDelay: 60_000 })
    try {
      await t.admin.set(t.key('s'), 'not a stream')
      t.tail.add('s', t.key('s'), '0-0')
      await waitUntil(() => t.reported.length >= 3, 'three failed reads')
      const pauses = timers.mock.calls
        .map(([, ms]) => ms)
        .filter((ms) => ms === 26 || ms === 52 || ms === 104)
      expect(pauses).toEqual([26, 52, 104])
    } finally {
      vi.restoreAllMocks()
      await t.close()
    }
  })

  it('opens its connection again when ioredis gave up on it, and resumes', async () => {
    const t = await following({ redisOptions: { retryStrategy: () => null } })
    try {
      t.connections[0]!.stream.destroy()
      await waitUntil(() => t.reported.length > 0, 'the lost connection')
      expect((t.reported as Error[]).map((error) => error.message)).toEqual([LOST])
      const id = await t.append(t.key('s'), '0-0', 'after the cut')
      await waitUntil(() => t.batches.length === 1, 'the delivery on the new connection')
      expect(t.batches).toEqual([['s', [id]]])
      expect(t.connections).toHaveLength(1)
    } finally {
      await t.close()
    }
  })

  it('leaves a connection that ioredis is reconnecting to its backoff', async () => {
    const t = await following({ redisOptions: { retryStrategy: () => 60_000 } })
    try {
      t.connections[0]!.stream.destroy()
      await waitUntil(() => t.reported.length > 0, 'the lost connection')
      // The tail's pause after the failure (40 ms at most) was set before this sleep, and has
      // ended: the tail has looked at the connection since, and left it alone.
      await sleep(100)
      expect(t.connections[0]!.status).toBe('reconnecting')
    } finally {
      await t.close()
    }
  })
})
