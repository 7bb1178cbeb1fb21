/**
 * A stream's appends of one turn go to Redis in one script call: a tail blocked in `XREAD` (any
 * instance's) is woken once with the whole burst, on a real Redis; the ids keep the order of the
 * calls and chain each entry to the one before. Then the batching alone, with a `send` that
 * records its calls: the bounds of one call, the order of several, and an error reaching every
 * append of its call and no other.
 */
import type { NewEvent } from '@rewind/core/adapter'
import { Redis } from 'ioredis'
import { describe, expect, it } from 'vitest'
import { newEvent } from '../../../test/support/store-delivery.js'
import { AppendBatches, MAX_BATCH_DATA, MAX_BATCH_EVENTS } from '../src/append-batches.js'
import { FIELDS } from '../src/scripts.js'
import { redisForTests, suiteStores } from './helpers/redis-server.js'

const server = await redisForTests('append batches')

describe.skipIf(server === undefined)('appends of one turn, on a real Redis', () => {
  const redis = suiteStores(server, 'batches')

  it('wake a blocked XREAD once with the whole burst, in order, each entry chained to the last', async () => {
    const store = redis.store()
    const first = await store.append('s', newEvent('before'))
    const reader = new Redis(server!.url)
    const admin = new Redis(server!.url)
    try {
      const readerId = await reader.client('ID')
      const woken = reader.xread('BLOCK', 5000, 'STREAMS', store.key('s'), first)
      // The XREAD must be blocked before the burst: wait until Redis lists it as blocked.
      for (let i = 0; i < 200; i++) {
        const info = String(await admin.call('CLIENT', 'LIST', 'ID', String(readerId)))
        if (info.includes('cmd=xread')) break
        await new Promise((resolve) => setTimeout(resolve, 5))
      }
      const ids = await Promise.all([1, 2, 3, 4, 5].map((i) => store.append('s', newEvent(`b${i}`))))
      const reply = (await woken) as [string, [string, string[]][]][]
      const entries = reply[0]![1]
      expect(entries.map(([id]) => id)).toEqual(ids)
      // Every entry names the one before it (FIELDS.prev): the burst's first, the one before the burst.
      const prevs = entries.map(([, fields]) => fields[fields.indexOf(FIELDS.prev) + 1])
      expect(prevs).toEqual([first, ...ids.slice(0, 4)])
      const read = await store.read('s', first, 10)
      expect(read.events.map((event) => event.data)).toEqual(['b1', 'b2', 'b3', 'b4', 'b5'])
    } finally {
      reader.disconnect()
      admin.disconnect()
    }
  })

  it('keep each stream its own call, and the order of the calls across turns', async () => {
    const store = redis.store()
    const readAll = async (stream: string) => {
      const start = await store.read(stream, null, 10)
      return (await store.read(stream, start.position.id, 10)).events
    }
    const [a1, b1, a2] = await Promise.all([
      store.append('a', newEvent('a1')),
      store.append('b', newEvent('b1')),
      store.append('a', newEvent('a2')),
    ])
    const a3 = await store.append('a', newEvent('a3'))
    const a = await readAll('a')
    expect(a.map((event) => [event.id, event.data])).toEqual([
      [a1, 'a1'],
      [a2, 'a2'],
      [a3, 'a3'],
    ])
    expect((await readAll('b')).map((event) => [event.id, event.data])).toEqual([[b1, 'b1']])
  })
})

describe('AppendBatches', () => {
  const event = (data: string): NewEvent => ({ event: undefined, data, value: data })

  /** A batcher whose `send` records each call and answers when the test says. */
  function recorded() {
    const calls: { stream: string; data: string[]; answer(ids: string[] | Error): void }[] = []
    const batches = new AppendBatches(
      (stream, events) =>
        new Promise<string[]>((resolve, reject) => {
          calls.push({
            stream,
            data: events.map((e) => e.data),
            answer: (ids) => (ids instanceof Error ? reject(ids) : resolve(ids)),
          })
        }),
    )
    return { batches, calls }
  }

  it('sends the appends of one turn to a stream in one call, and the next turn in another', async () => {
    const { batches, calls } = recorded()
    const first = ['x', 'y', 'z'].map((d) => batches.append('s', event(d)))
    const other = batches.append('t', event('t1'))
    expect(calls).toEqual([])
    await Promise.resolve()
    expect(calls.map((c) => [c.stream, c.data])).toEqual([
      ['s', ['x', 'y', 'z']],
      ['t', ['t1']],
    ])
    const next = batches.append('s', event('w'))
    await Promise.resolve()
    expect(calls.map((c) => c.data)).toEqual([['x', 'y', 'z'], ['t1'], ['w']])
    calls[0]!.answer(['1', '2', '3'])
    calls[1]!.answer(['9'])
    calls[2]!.answer(['4'])
    expect(await Promise.all([...first, other, next])).toEqual(['1', '2', '3', '9', '4'])
  })

  it(`sends a call as soon as it holds ${MAX_BATCH_EVENTS} events or ${MAX_BATCH_DATA} units of data`, async () => {
    const { batches, calls } = recorded()
    const many = Array.from({ length: MAX_BATCH_EVENTS + 1 }, (_, i) => batches.append('s', event(`e${i}`)))
    // The full batch went at once, in the turn; the one more waits for the turn's end.
    expect(calls.map((c) => c.data.length)).toEqual([MAX_BATCH_EVENTS])
    await Promise.resolve()
    expect(calls.map((c) => c.data.length)).toEqual([MAX_BATCH_EVENTS, 1])
    const big = 'x'.repeat(MAX_BATCH_DATA / 2)
    const halves = [batches.append('s', event(big)), batches.append('s', event(big))]
    expect(calls.map((c) => c.data.length)).toEqual([MAX_BATCH_EVENTS, 1, 2])
    calls[0]!.answer(Array.from({ length: MAX_BATCH_EVENTS }, (_, i) => `${i}`))
    calls[1]!.answer(['last'])
    calls[2]!.answer(['h1', 'h2'])
    expect((await Promise.all(many)).at(-1)).toBe('last')
    expect(await Promise.all(halves)).toEqual(['h1', 'h2'])
  })

  it('rejects every append of a failed call with its error, and no other', async () => {
    const { batches, calls } = recorded()
    const failing = [batches.append('s', event('a')), batches.append('s', event('b'))]
    const fine = batches.append('t', event('c'))
    await Promise.resolve()
    const error = new Error('no reply')
    calls[0]!.answer(error)
    calls[1]!.answer(['7'])
    for (const append of failing) await expect(append).rejects.toBe(error)
    expect(await fine).toBe('7')
  })
})
