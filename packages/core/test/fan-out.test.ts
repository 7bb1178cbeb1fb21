/**
 * Fan-out (fan-out.ts): events published in one turn reach each subscriber in one write, and an
 * asynchronous store is read once for a crowd resuming from the same id, and never unsafely.
 */
import { describe, expect, it } from 'vitest'
import { type Batch, FanOut, type Follower } from '../src/fan-out.js'
import { createHub, createMemoryStore, type Hub } from '../src/index.js'
import type { HistoryStore, StoredEvent } from '../src/store.js'
import { cleanUpAfterEach, events, hub, publishAll, sink } from './helpers/hubs.js'
import { ManualStore, microtasks } from './helpers/manual-store.js'
import { flushTurn, MemorySink, parseStream } from './helpers/memory-sink.js'

function dataOf(sink: MemorySink): string[] {
  return parseStream(sink.text())
    .events.filter((event) => event.event === undefined)
    .map((event) => event.data)
}

/** A hub on a ManualStore with `data` published on stream `s` and delivered; `ids` in order, `first` of them. */
async function publishedHub(...data: string[]) {
  const store = new ManualStore()
  const hub = createHub({ store, heartbeatInterval: 0 })
  const ids: string[] = []
  for (const item of data) ids.push(await hub.publish('s', { data: item }))
  store.deliver('s')
  return { store, hub, ids, first: ids[0]! }
}

/** Subscribes a fresh sink to `s` from `lastEventId`, lets its history read start, and returns the sink. */
async function subscribeFrom(
  hub: Hub<string | Promise<string>>,
  lastEventId: string | null | undefined,
): Promise<MemorySink> {
  const subscriber = new MemorySink()
  hub.subscribe('s', subscriber, { lastEventId })
  await microtasks()
  return subscriber
}

/** Answers the oldest read in flight and lets its subscribers take the answer. */
async function answerOne(store: ManualStore): Promise<void> {
  store.answer()
  await microtasks()
}

describe('reads of an asynchronous store', () => {
  it('are shared by subscribers resuming from the same position at the same time', async () => {
    const { store, hub, ids } = await publishedHub('e0', 'e1', 'e2', 'e3', 'e4')
    const sinks = Array.from({ length: 40 }, () => new MemorySink())
    for (const sink of sinks) hub.subscribe('s', sink, { lastEventId: ids[1]! })
    await microtasks()
    expect(store.reads).toHaveLength(1)
    store.answer()
    await microtasks()
    await flushTurn()
    for (const sink of sinks) expect(dataOf(sink)).toEqual(['e2', 'e3', 'e4'])
    await hub.close()
  })

  it('are not shared across a flush, which only the first reader would have queued', async () => {
    const { store, hub, first } = await publishedHub('a')
    const early = await subscribeFrom(hub, first)
    expect(store.reads).toHaveLength(1)
    // 'b' is appended after the early read ran (its answer will not hold it) and reaches the
    // subscribers while that read is in flight: the early subscriber queues it.
    await hub.publish('s', { data: 'b' })
    store.deliver('s')
    await flushTurn()
    const late = await subscribeFrom(hub, first)
    // Joining the early read would lose 'b' for the late subscriber: it reads for itself.
    expect(store.reads).toHaveLength(2)
    store.answer('call')
    store.answer('call')
    await microtasks()
    await flushTurn()
    expect(dataOf(early)).toEqual(['b'])
    expect(dataOf(late)).toEqual(['b'])
    await hub.close()
  })

  it('are not shared between a fresh or malformed position and an id spelled like one', async () => {
    const { store, hub } = await publishedHub('a')
    // `undefined` (a fresh client) and `null` (a malformed id) are not the ids "undefined" and "null".
    hub.subscribe('s', new MemorySink())
    hub.subscribe('s', new MemorySink(), { lastEventId: 'undefined' })
    hub.subscribe('s', new MemorySink(), { lastEventId: null })
    hub.subscribe('s', new MemorySink(), { lastEventId: 'null' })
    await microtasks()
    expect(store.reads.map((read) => read.after)).toEqual([undefined, 'undefined', null, 'null'])
    while (store.reads.length > 0) store.answer()
    await microtasks()
    await hub.close()
  })

  it('are forgotten once answered: a later reader of the same position reads afresh', async () => {
    const { store, hub, first } = await publishedHub('a')
    await subscribeFrom(hub, first)
    await answerOne(store)
    expect(store.reads).toHaveLength(0)
    // No flush since: only a kept, settled read could be shared now, and none may be.
    await subscribeFrom(hub, first)
    expect(store.reads).toHaveLength(1)
    await answerOne(store)
    await hub.close()
  })

  it('forget an answered read without forgetting a newer read of the same position', async () => {
    const { store, hub, first } = await publishedHub('a')
    await subscribeFrom(hub, first)
    await hub.publish('s', { data: 'b' })
    store.deliver('s')
    await flushTurn()
    // After a flush the first read cannot be shared: the second reader starts its own.
    await subscribeFrom(hub, first)
    expect(store.reads).toHaveLength(2)
    await answerOne(store)
    // The first read's answer must not drop the second, still shareable, read.
    await subscribeFrom(hub, first)
    expect(store.reads).toHaveLength(1)
    await answerOne(store)
    await hub.close()
  })

  it('count once per distinct position', async () => {
    const { store, hub, ids } = await publishedHub('e0', 'e1', 'e2')
    for (const id of [ids[0], ids[1], ids[0], undefined, undefined])
      hub.subscribe('s', new MemorySink(), { lastEventId: id })
    await microtasks()
    expect(store.reads.map((read) => read.after)).toEqual([ids[0], ids[1], undefined])
    while (store.reads.length > 0) store.answer()
    await microtasks()
    await hub.close()
  })
})

cleanUpAfterEach()

describe('end-of-turn batching', () => {
  it('writes the events published in one synchronous turn together, in order, once the turn ends', async () => {
    const h = hub()
    const s = sink()
    h.subscribe('s', s)
    const writesBefore = s.written.length
    const ids = publishAll(
      h,
      's',
      Array.from({ length: 100 }, (_, i) => String(i)),
    )
    expect(s.written.length).toBe(writesBefore)
    await flushTurn()
    expect(events(s).map((e) => e.id)).toEqual(ids)
    expect(events(s).map((e) => e.data)).toEqual(ids.map((_, i) => String(i)))
    expect(s.written.length).toBe(writesBefore + 1)
  })

  it('keeps the order of events of several streams per stream', async () => {
    const h = hub()
    const a = sink()
    const b = sink()
    h.subscribe('a', a)
    h.subscribe('b', b)
    const idsA: string[] = []
    const idsB: string[] = []
    for (let i = 0; i < 20; i++) {
      idsA.push(h.publish('a', { data: `a${i}` }))
      idsB.push(h.publish('b', { data: `b${i}` }))
    }
    await flushTurn()
    expect(events(a).map((e) => e.id)).toEqual(idsA)
    expect(events(b).map((e) => e.id)).toEqual(idsB)
  })
})

describe('FanOut on its own', () => {
  /** A follower that records what reaches it. */
  function follower() {
    const got: { batches: string[][]; ended: string[] } = { batches: [], ended: [] }
    const self: Follower = {
      deliver: (batch) => got.batches.push(batch.events.map((event) => event.id)),
      end: (reason) => got.ended.push(reason),
    }
    return { self, got }
  }

  /** A memory store that also counts watch and unwatch calls, as a shared store sees them. */
  function watchedStore() {
    const store = createMemoryStore()
    const calls: string[] = []
    store.watch = (stream) => {
      calls.push(`watch ${stream}`)
    }
    store.unwatch = (stream) => {
      calls.push(`unwatch ${stream}`)
    }
    return { store, calls }
  }

  it('watches a stream while it has a follower or a pin, and unwatches it when the last one leaves', () => {
    const { store, calls } = watchedStore()
    const fanOut = new FanOut(store)
    const a = follower()
    fanOut.add('s', a.self)
    fanOut.pin('s')
    expect(fanOut.size).toBe(1)
    fanOut.remove('s', a.self)
    expect(calls).toEqual(['watch s'])
    fanOut.unpin('s')
    expect(calls).toEqual(['watch s', 'unwatch s'])
    expect(fanOut.size).toBe(0)
  })

  /** A stored event whose frame is `bytes` long. */
  function sized(id: string, bytes: number): StoredEvent {
    const frame = Buffer.alloc(bytes, 'x')
    return { id, major: 0, minor: 0, event: undefined, data: '', value: undefined, frame }
  }

  it('writes a burst at once when it reaches 256 KiB, without waiting for the turn to end', () => {
    const fanOut = new FanOut(createMemoryStore())
    const a = follower()
    fanOut.add('s', a.self)
    fanOut.deliver('s', sized('1', 128 * 1024))
    expect(a.got.batches).toEqual([])
    fanOut.deliver('s', sized('2', 128 * 1024))
    expect(a.got.batches).toEqual([['1', '2']])
    fanOut.deliver('s', [sized('3', 100), sized('4', 256 * 1024)])
    expect(a.got.batches).toEqual([
      ['1', '2'],
      ['3', '4'],
    ])
  })

  it('hands out a batch of one event as that event frame, and frames a batch as a chunk once', () => {
    const fanOut = new FanOut(createMemoryStore())
    const batches: Batch[] = []
    fanOut.add('s', { deliver: (batch) => batches.push(batch), end: () => {} })
    const one = sized('1', 10)
    fanOut.deliver('s', one)
    fanOut.flush()
    expect(batches[0]!.all).toBe(one.frame)
    expect(batches[0]!.framed).toBe(batches[0]!.framed)
    expect(batches[0]!.framed.toString('latin1')).toBe(`a\r\n${'x'.repeat(10)}\r\n`)
  })

  it('ignores removes, unpins and resets of a stream nobody follows, and reads it straight from the store', async () => {
    const store = new ManualStore()
    const fanOut = new FanOut(store)
    const a = follower()
    expect(() => fanOut.remove('none', a.self)).not.toThrow()
    expect(() => fanOut.unpin('none')).not.toThrow()
    expect(() => fanOut.reset('none')).not.toThrow()
    const read = fanOut.readHistory('none', undefined, 0)
    expect(store.reads).toHaveLength(1)
    store.answer()
    expect((await read).events).toEqual([])
    expect(fanOut.size).toBe(0)
  })

  it('follows a stream of a store that has no watch or unwatch', () => {
    const store: HistoryStore = {
      synchronous: true,
      append: () => {
        throw new Error('not used')
      },
      read: () => ({ events: [], position: { id: 'e-0', major: 0, minor: 0 }, done: true }),
    }
    const fanOut = new FanOut(store)
    const a = follower()
    expect(fanOut.add('s', a.self)).toBeUndefined()
    fanOut.remove('s', a.self)
    expect(fanOut.size).toBe(0)
  })

  it('batches one turn of deliveries into one Batch per stream, and resets end every follower', async () => {
    const { store } = watchedStore()
    const fanOut = new FanOut(store)
    const a = follower()
    const b = follower()
    fanOut.add('s', a.self)
    fanOut.add('s', b.self)
    const events = ['x', 'y', 'z'].map((data) => store.append('s', { data, event: undefined, value: data }))
    fanOut.deliver('s', events[0]!)
    fanOut.deliver('s', events.slice(1))
    expect(a.got.batches).toEqual([])
    fanOut.flush()
    const ids = events.map((event) => event.id)
    expect(a.got.batches).toEqual([ids])
    expect(b.got.batches).toEqual([ids])
    fanOut.reset('s')
    expect([a.got.ended, b.got.ended]).toEqual([['reset'], ['reset']])
    // Nothing is left scheduled: the flush above cleared the end-of-turn timer.
    await flushTurn()
    expect(a.got.batches).toHaveLength(1)
  })
})
