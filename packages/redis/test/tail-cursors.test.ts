/**
 * The single-server tail on its own, on a real Redis, without a store around it: what it follows
 * (a stream added twice keeps its cursor, so nothing is delivered twice), how much one read takes
 * (a backlog in one batch), and that a closed tail neither connects nor delivers again.
 */
import { Redis } from 'ioredis'
import { describe, expect, it } from 'vitest'
import { waitUntil, within } from '../../../test/support/wait.js'
import { EventCache, type RedisEvent } from '../src/events.js'
import { Tail } from '../src/tail.js'
import { deleteKeys, redisForTests, uniquePrefix } from './helpers/redis-server.js'

const server = await redisForTests('tail cursors')

describe.skipIf(server === undefined)('Tail', () => {
  /** A tail on the server, what it delivers (in batches), and a plain connection. */
  function tailOn(blockMs = 60_000) {
    const batches: [string, string[]][] = []
    const resets: string[] = []
    const reported: unknown[] = []
    const connections: Redis[] = []
    const admin = new Redis(server!.url)
    const cache = new EventCache({ deserialize: JSON.parse, report: (error) => reported.push(error) })
    const tail = new Tail({
      toEvent: (key, entry) => cache.event(key, entry),
      deliver: (stream, events: readonly RedisEvent[]) => {
        batches.push([stream, events.map((event) => event.id)])
      },
      reset: (stream) => resets.push(stream),
      report: (error) => reported.push(error),
      blockMs,
      replyTimeout: 5000,
      minReconnectDelay: 20,
      maxReconnectDelay: 40,
      connect: () => {
        const connection = new Redis(server!.url)
        connections.push(connection)
        return connection
      },
      unblock: (clientId) => admin.call('CLIENT', 'UNBLOCK', clientId) as Promise<number>,
    })
    const prefix = uniquePrefix('tail')
    const close = async (): Promise<void> => {
      await tail.close()
      await deleteKeys(admin, prefix)
      await admin.quit()
      expect(reported).toEqual([])
    }
    return { tail, batches, resets, connections, admin, key: (name: string) => `${prefix}{${name}}`, close }
  }

  it('keeps the cursor of a stream added again: nothing is delivered twice', async () => {
    const t = tailOn()
    try {
      const key = t.key('s')
      t.tail.add('s', key, '0-0')
      expect(t.tail.has('s')).toBe(true)
      const first = (await t.admin.xadd(key, '*', 'prev', '0-0', 'data', 'a')) as string
      await waitUntil(() => t.batches.length === 1, 'the first delivery')
      t.tail.add('s', key, '0-0')
      const second = (await t.admin.xadd(key, '*', 'prev', first, 'data', 'b')) as string
      await waitUntil(() => t.batches.length === 2, 'the second delivery')
      expect(t.batches).toEqual([
        ['s', [first]],
        ['s', [second]],
      ])
      t.tail.remove('s')
      expect(t.tail.has('s')).toBe(false)
    } finally {
      await t.close()
    }
  })

  it('reads a backlog in one batch', async () => {
    const t = tailOn()
    try {
      const key = t.key('s')
      const ids: string[] = []
      let prev = '0-0'
      for (let i = 0; i < 5; i++) {
        prev = (await t.admin.xadd(key, '*', 'prev', prev, 'data', String(i))) as string
        ids.push(prev)
      }
      t.tail.add('s', key, '0-0')
      await waitUntil(() => t.batches.length === 1, 'the backlog')
      expect(t.batches).toEqual([['s', ids]])
    } finally {
      await t.close()
    }
  })

  it('closes promptly while a read blocks, and then neither delivers nor connects', async () => {
    const t = tailOn()
    try {
      t.tail.add('s', t.key('s'), '0-0')
      await waitUntil(() => t.connections[0]?.status === 'ready', 'the tail connection')
      await within(t.tail.close(), 'the close of a blocked tail', 5000)
      await waitUntil(() => t.connections[0]!.status === 'end', 'the tail connection to end')
      await t.admin.xadd(t.key('s'), '*', 'prev', '0-0', 'data', 'late')
      t.tail.add('t', t.key('t'), '0-0')
      expect(t.tail.has('t')).toBe(false)
      expect(t.connections).toHaveLength(1)
      // A read that was delivered would have been by now: the append went through Redis first.
      await t.admin.ping()
      expect(t.batches).toEqual([])
    } finally {
      await t.close()
    }
  })

  it('opens no connection when closed before following anything', async () => {
    const t = tailOn()
    await t.tail.close()
    t.tail.add('s', t.key('s'), '0-0')
    expect(t.connections).toHaveLength(0)
    await t.close()
  })
})
