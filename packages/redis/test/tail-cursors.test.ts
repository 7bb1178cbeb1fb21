/**
 * The single-server tail on its own, on a real Redis, without a store around it: what it follows
 * (a stream added twice keeps its cursor, so nothing is delivered twice), how much one read takes
 * (a backlog in one batch), that what a read in flight returns for a stream unwatched meanwhile is
 * dropped, and that a closed tail neither connects nor delivers again.
 */
import { describe, expect, it, vi } from 'vitest'
import { sleep, waitUntil, within } from '../../../test/support/wait.js'
import { TAIL_BUDGET } from '../src/tail.js'
import { redisForTests } from './helpers/redis-server.js'
import { type Harness, tailOn as harness } from './helpers/tail-harness.js'

const server = await redisForTests('tail cursors')

describe.skipIf(server === undefined)('Tail', () => {
  const tailOn = () => harness(server!.url)

  /** Follows streams a and b; resolves with their keys once a read of both is in flight. */
  async function readingBoth(t: Harness): Promise<[string, string]> {
    const [a, b] = [t.key('a'), t.key('b')]
    t.tail.add('a', a, '0-0')
    t.tail.add('b', b, '0-0')
    await waitUntil(() => t.reads().some((read) => read.includes(b)), 'a read that follows both')
    return [a, b]
  }

  /** The first entries of two streams, in one transaction: a read following both gets both at once. */
  async function firstEntries(t: Harness, first: string, second: string): Promise<[string, string]> {
    const replies = await t.admin
      .multi()
      .xadd(first, '*', 'prev', '0-0', 'data', 'first')
      .xadd(second, '*', 'prev', '0-0', 'data', 'second')
      .exec()
    return [replies![0]![1] as string, replies![1]![1] as string]
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

  it('drops what a read in flight returns for a stream unwatched meanwhile', async () => {
    const t = tailOn()
    try {
      const [a, b] = await readingBoth(t)
      t.tail.remove('b')
      // One transaction: the read in flight, which still names b, returns both entries at once.
      const [, onA] = await firstEntries(t, b, a)
      // Both entries come in one reply, handed on at once: a's delivery is the whole of it.
      await waitUntil(() => t.batches.length > 0, 'the delivery of a')
      expect(t.batches).toEqual([['a', [onA]]])
    } finally {
      await t.close()
    }
  })

  it('delivers once a stream unwatched and watched again while a read was in flight', async () => {
    // Never woken: the read in flight keeps the first cursor of b until it returns.
    const t = harness(server!.url, { unblock: () => Promise.resolve(0) })
    try {
      const [a, b] = await readingBoth(t)
      t.tail.remove('b')
      t.tail.add('b', b, '0-0')
      const [onB, onA] = await firstEntries(t, b, a)
      // What the read in flight got for b belongs to the cursor it replaced: the next read delivers it.
      await waitUntil(() => t.batches.length >= 2, 'the deliveries of a and b')
      const next = await t.append(b, onB, 'next')
      await waitUntil(() => t.batches.some(([, ids]) => ids.includes(next)), 'the next delivery of b')
      expect(t.batches).toEqual([
        ['a', [onA]],
        ['b', [onB]],
        ['b', [next]],
      ])
    } finally {
      await t.close()
    }
  })

  it('idles while it follows nothing, then follows the next stream at once', async () => {
    const t = tailOn()
    try {
      const [a, b] = [t.key('a'), t.key('b')]
      t.tail.add('a', a, '0-0')
      await waitUntil(() => t.reads().length === 1, 'the first read')
      t.tail.remove('a')
      // The read in flight returns (for a stream no longer followed); nothing is read after it.
      await t.append(a, '0-0', 'unwatched')
      await waitUntil(() => t.settled(), 'the read in flight to return')
      expect(t.reads()).toHaveLength(1)
      // Idle, it waits for a stream, not for a clock: no timer of its own runs out meanwhile.
      const timers = vi.spyOn(globalThis, 'setTimeout')
      try {
        await sleep(20)
        expect(timers.mock.calls.map(([, ms]) => ms)).toEqual([20])
      } finally {
        timers.mockRestore()
      }
      t.tail.add('b', b, '0-0')
      const id = await t.append(b, '0-0', 'on the next stream')
      await waitUntil(() => t.batches.length === 1, 'the delivery of the next stream')
      expect(t.batches).toEqual([['b', [id]]])
      expect(t.connections).toHaveLength(1)
    } finally {
      await t.close()
    }
  })

  it("finds its streams in a reply under the connection's keyPrefix", async () => {
    const t = harness(server!.url, { redisOptions: { keyPrefix: 'prefixed:' } })
    try {
      const key = t.key('s')
      t.tail.add('s', key, '0-0')
      await waitUntil(() => t.reads().length === 1, 'the first read')
      const id = await t.append(`prefixed:${key}`, '0-0', 'under the prefix')
      await waitUntil(() => t.batches.length === 1, 'the delivery')
      expect(t.batches).toEqual([['s', [id]]])
      await t.admin.del(`prefixed:${key}`)
    } finally {
      await t.close()
    }
  })

  it(`shares a read's ${TAIL_BUDGET} entries among the streams it follows`, async () => {
    const t = tailOn()
    try {
      const [a, b] = [t.key('a'), t.key('b')]
      const half = TAIL_BUDGET / 2
      // A backlog of one more than half the budget on each: the first read takes half of each.
      const backlog = async (key: string): Promise<string[]> => {
        const batch = t.admin.pipeline()
        for (let i = 1; i <= half + 1; i++) batch.xadd(key, `1-${i}`, 'prev', `1-${i - 1}`, 'data', String(i))
        await batch.exec()
        return Array.from({ length: half + 1 }, (_, i) => `1-${i + 1}`)
      }
      const [onA, onB] = [await backlog(a), await backlog(b)]
      t.tail.add('a', a, '1-0')
      t.tail.add('b', b, '1-0')
      await waitUntil(() => t.batches.length === 4, 'the backlogs')
      expect(t.batches).toEqual([
        ['a', onA.slice(0, half)],
        ['b', onB.slice(0, half)],
        ['a', onA.slice(half)],
        ['b', onB.slice(half)],
      ])
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
