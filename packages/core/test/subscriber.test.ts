import { describe, expect, it, vi } from 'vitest'
import { Batch } from '../src/fan-out.js'
import { encodeEvent } from '../src/frame.js'
import {
  type CloseReason,
  createHub,
  createMemoryStore,
  DEFAULT_GAP_EVENT,
  DEFAULT_RETRY,
  type GapInfo,
  type Hub,
  type HubOptions,
} from '../src/index.js'
import type { StoredEvent } from '../src/store.js'
import { Subscriber, type SubscriberOwner } from '../src/subscriber.js'
import { TurnClock } from '../src/wire-writer.js'
import { caught, cleanUpAfterEach, events, gaps, hub, publishAll, sink, track } from './helpers/hubs.js'
import { ManualStore, microtasks } from './helpers/manual-store.js'
import { flushTurn, lastEventIdOf } from './helpers/memory-sink.js'

cleanUpAfterEach()

describe('subscribe', () => {
  it('starts every stream with the retry hint, 3 s by default', () => {
    expect(DEFAULT_RETRY).toBe(3000)
    const h = hub()
    const s = sink()
    h.subscribe('s', s)
    const parsed = s.parse()
    expect(parsed.retries).toEqual([3000])
    expect(s.text().startsWith('retry:')).toBe(true)
  })

  it('sends the configured retry hint, or none with retry: null', () => {
    const custom = hub({ retry: 500 })
    const a = sink()
    custom.subscribe('s', a)
    expect(a.parse().retries).toEqual([500])
    const none = hub({ retry: null })
    const b = sink()
    none.subscribe('s', b)
    expect(b.parse().retries).toEqual([])
  })

  it('gives a fresh client the newest id in an id-only frame, and then only live events', async () => {
    const h = hub()
    const ids = publishAll(h, 's', ['a', 'b', 'c'])
    const s = sink()
    h.subscribe('s', s)
    expect(s.parse().events).toEqual([])
    expect(lastEventIdOf(s.text())).toBe(ids[2])
    const live = h.publish('s', { data: 'd' })
    await flushTurn()
    expect(events(s).map((e) => [e.id, e.data])).toEqual([[live, 'd']])
  })

  it('lets a fresh client of an empty stream that drops before any event resume without loss', async () => {
    const h = hub()
    const first = sink()
    h.subscribe('s', first)
    const position = lastEventIdOf(first.text())
    expect(position).toBeDefined()
    first.disconnect()
    const ids = publishAll(h, 's', ['a', 'b'])
    const again = sink()
    h.subscribe('s', again, { lastEventId: position })
    expect(gaps(again)).toEqual([])
    expect(events(again).map((e) => e.id)).toEqual(ids)
  })

  it('resumes within history: the events after the id, then live ones, without duplicates', async () => {
    const h = hub()
    const ids = publishAll(h, 's', ['0', '1', '2', '3', '4'])
    const s = sink()
    h.subscribe('s', s, { lastEventId: ids[1] })
    expect(events(s).map((e) => e.id)).toEqual(ids.slice(2))
    const live = publishAll(h, 's', ['5', '6'])
    await flushTurn()
    expect(gaps(s)).toEqual([])
    expect(events(s).map((e) => e.id)).toEqual([...ids.slice(2), ...live])
    expect(lastEventIdOf(s.text())).toBe(live[1])
  })

  it('does not send twice an event published in the same turn as the subscription', async () => {
    const h = hub()
    const other = sink()
    h.subscribe('s', other)
    const ids = publishAll(h, 's', ['a', 'b'])
    const s = sink()
    // The replay already contains a and b; the end-of-turn flush must not repeat them.
    h.subscribe('s', s, { lastEventId: ids[0] })
    const c = h.publish('s', { data: 'c' })
    await flushTurn()
    expect(events(s).map((e) => e.id)).toEqual([ids[1], c])
    expect(events(other).map((e) => e.id)).toEqual([...ids, c])
  })

  it('refuses a bad stream name or filter before touching the sink', () => {
    const h = hub()
    const s = sink()
    expect(caught(() => h.subscribe('', s)).code).toBe('ERR_INVALID_STREAM')
    expect(caught(() => h.subscribe('s', s, { filter: 'x' as never })).code).toBe('ERR_INVALID_ARGUMENT')
    expect(s.written).toEqual([])
    expect(s.listenerCount('close')).toBe(0)
    expect(h.stats().connections).toBe(0)
  })

  it('refuses an unknown gapPolicy for one subscription with ERR_INVALID_ARGUMENT', () => {
    const h = hub()
    const s = sink()
    expect(caught(() => h.subscribe('s', s, { gapPolicy: 'skip' as never })).code).toBe(
      'ERR_INVALID_ARGUMENT',
    )
  })

  it('never writes an event that is not after the last one it sent, across replay and live', async () => {
    const h = hub({ history: { maxEvents: 50 } })
    const s = sink()
    const ids = publishAll(h, 's', ['0', '1', '2'])
    h.subscribe('s', s, { lastEventId: ids[0] })
    for (let round = 0; round < 5; round++) {
      publishAll(h, 's', [`${round}a`, `${round}b`])
      await flushTurn()
    }
    const received = events(s).map((e) => e.id)
    expect(new Set(received).size).toBe(received.length)
    expect(received.length).toBe(2 + 10)
  })
})

describe('gaps', () => {
  function evictedSetup(options: HubOptions = {}) {
    const h = hub({ history: { maxEvents: 3 }, ...options })
    const ids = publishAll(h, 's', ['0', '1', '2', '3', '4', '5'])
    return { h, ids }
  }

  it('signals an evicted position with a rewind-gap event, then replays every retained event, then live', async () => {
    const onGap = vi.fn<(info: GapInfo) => undefined>()
    const { h, ids } = evictedSetup({ onGap })
    const s = sink()
    h.subscribe('s', s, { lastEventId: ids[0] })
    const all = s.parse().events
    expect(all[0]).toMatchObject({ event: 'rewind-gap', data: 'evicted' })
    expect(all.slice(1).map((e) => [e.id, e.data])).toEqual([
      [ids[3], '3'],
      [ids[4], '4'],
      [ids[5], '5'],
    ])
    expect(onGap).toHaveBeenCalledWith({
      stream: 's',
      reason: 'evicted',
      lastEventId: ids[0],
      policy: 'replay',
    })
    const live = h.publish('s', { data: '6' })
    await flushTurn()
    expect(events(s).map((e) => e.id)).toEqual([ids[3], ids[4], ids[5], live])
    expect(h.stats().gaps).toBe(1)
  })

  it.each<[string, (ids: string[], other: string) => string | null]>([
    ['unknown', () => 'not-an-id-of-this-stream'],
    ['epoch', (_ids, other) => other],
    ['malformed', () => null],
  ])('signals a %s resume position, then replays every retained event', (reason, pick) => {
    const onGap = vi.fn<(info: GapInfo) => undefined>()
    const h = hub({ onGap })
    const other = h.publish('other', { data: 'elsewhere' })
    const ids = publishAll(h, 's', ['0', '1'])
    const s = sink()
    const lastEventId = pick(ids, other)
    h.subscribe('s', s, { lastEventId })
    const all = s.parse().events
    expect(all.map((e) => [e.event, e.data])).toEqual([
      ['rewind-gap', reason],
      [undefined, '0'],
      [undefined, '1'],
    ])
    expect(all.slice(1).map((e) => e.id)).toEqual(ids)
    expect(onGap).toHaveBeenCalledWith({ stream: 's', reason, lastEventId, policy: 'replay' })
    // The signal's id is the position just before the first retained event: resuming there replays the same.
    const again = sink()
    h.subscribe('s', again, { lastEventId: all[0]?.id })
    expect(gaps(again)).toEqual([])
    expect(events(again).map((e) => e.id)).toEqual(ids)
  })

  it('gives a gap on an empty stream the position before the first event, which later resumes without loss', () => {
    const h = hub()
    const s = sink()
    h.subscribe('s', s, { lastEventId: 'stale' })
    const [signal] = gaps(s)
    expect(signal?.data).toBe('unknown')
    s.disconnect()
    const ids = publishAll(h, 's', ['a'])
    const again = sink()
    h.subscribe('s', again, { lastEventId: signal?.id })
    expect(gaps(again)).toEqual([])
    expect(events(again).map((e) => e.id)).toEqual(ids)
  })

  it('gives the gap signal the id just before the first replayed event, so a drop right after it loses nothing', () => {
    const { h, ids } = evictedSetup()
    const s = sink()
    h.subscribe('s', s, { lastEventId: ids[0] })
    const [signal] = gaps(s)
    // ids[2] is the position just before the oldest retained event (ids[3]).
    expect(signal?.id).toBe(ids[2])
    // The client drops right after the signal: its last event ID is the signal's id.
    const resumeFrom = lastEventIdOf(encodeEvent({ id: signal!.id!, event: 'rewind-gap', data: 'evicted' }))
    const again = sink()
    h.subscribe('s', again, { lastEventId: resumeFrom })
    expect(gaps(again)).toEqual([])
    expect(events(again).map((e) => e.id)).toEqual(ids.slice(3))
  })

  it('never gives the same gap twice to a client that resumes from the last id it received', () => {
    const { h, ids } = evictedSetup()
    const s = sink()
    h.subscribe('s', s, { lastEventId: ids[0] })
    s.disconnect()
    const again = sink()
    h.subscribe('s', again, { lastEventId: lastEventIdOf(s.text()) })
    expect(gaps(again)).toEqual([])
  })

  it('names the gap event as configured', () => {
    const h = hub({ gapEvent: 'resync' })
    const s = sink()
    h.subscribe('s', s, { lastEventId: null })
    expect(s.parse().events.map((e) => [e.event, e.data])).toEqual([['resync', 'malformed']])
  })

  it("with gapPolicy 'reset', signals with the newest id and replays nothing, then goes live", async () => {
    const { h, ids } = evictedSetup({ gapPolicy: 'reset' })
    const s = sink()
    h.subscribe('s', s, { lastEventId: ids[0] })
    const all = s.parse().events
    expect(all).toEqual([{ id: ids[5], event: 'rewind-gap', data: 'evicted' }])
    const live = h.publish('s', { data: '6' })
    await flushTurn()
    expect(events(s).map((e) => e.id)).toEqual([live])
  })

  it("with gapPolicy 'reset', a resume inside history still replays (reset applies to gaps only)", () => {
    const { h, ids } = evictedSetup({ gapPolicy: 'reset' })
    const s = sink()
    h.subscribe('s', s, { lastEventId: ids[3] })
    expect(gaps(s)).toEqual([])
    expect(events(s).map((e) => e.id)).toEqual(ids.slice(4))
  })

  it('lets one subscription override the hub gap policy, both ways', () => {
    const { h, ids } = evictedSetup()
    const reset = sink()
    h.subscribe('s', reset, { lastEventId: ids[0], gapPolicy: 'reset' })
    expect(reset.parse().events).toEqual([{ id: ids[5], event: 'rewind-gap', data: 'evicted' }])
    const { h: resetHub, ids: resetIds } = evictedSetup({ gapPolicy: 'reset' })
    const replay = sink()
    resetHub.subscribe('s', replay, { lastEventId: resetIds[0], gapPolicy: 'replay' })
    expect(events(replay).map((e) => e.id)).toEqual(resetIds.slice(3))
  })

  it('lets onGap choose the policy per client, and falls back to the default when it returns nothing', () => {
    const onGap = vi.fn((info: GapInfo) => (info.lastEventId === null ? ('reset' as const) : undefined))
    const { h, ids } = evictedSetup({ onGap })
    const malformed = sink()
    h.subscribe('s', malformed, { lastEventId: null })
    expect(malformed.parse().events).toEqual([{ id: ids[5], event: 'rewind-gap', data: 'malformed' }])
    const evicted = sink()
    h.subscribe('s', evicted, { lastEventId: ids[0] })
    expect(events(evicted).map((e) => e.id)).toEqual(ids.slice(3))
    expect(onGap).toHaveBeenCalledTimes(2)
  })

  it('tells onGap which policy applies by default, including a per-subscription override', () => {
    const onGap = vi.fn<(info: GapInfo) => undefined>()
    const { h } = evictedSetup({ onGap, gapPolicy: 'reset' })
    h.subscribe('s', sink(), { lastEventId: null, gapPolicy: 'replay' })
    expect(onGap.mock.calls[0]?.[0].policy).toBe('replay')
  })

  it('keeps the default policy and reports the error when onGap throws', () => {
    const onError = vi.fn()
    const boom = new Error('onGap failed')
    const { h, ids } = evictedSetup({
      onGap: () => {
        throw boom
      },
      onError,
    })
    const s = sink()
    h.subscribe('s', s, { lastEventId: ids[0] })
    expect(events(s).map((e) => e.id)).toEqual(ids.slice(3))
    expect(onError).toHaveBeenCalledWith(boom, { stream: 's' })
    expect(s.closed).toBe(false)
  })

  it('pauses a replay on a full socket until it drains, then finishes it in order', async () => {
    const h = hub({ history: { maxEvents: 100 } })
    const big = 'x'.repeat(50_000)
    const ids = Array.from({ length: 40 }, (_, i) => h.publish('s', { data: `${i}:${big}` }))
    const s = sink({ full: true })
    h.subscribe('s', s, { lastEventId: null })
    // Two megabytes of history: a stalled client must not have all of it buffered for it at once.
    expect(events(s).length).toBeLessThan(ids.length)
    s.drain()
    for (let i = 0; i < 40 && events(s).length < ids.length; i++) {
      await flushTurn()
      s.drain()
    }
    expect(events(s).map((e) => e.id)).toEqual(ids)
  })

  it('tells a client whose replay paused on a full socket that events were evicted meanwhile', async () => {
    const h = hub({ history: { maxEvents: 40 } })
    const big = 'x'.repeat(50_000)
    const ids = Array.from({ length: 40 }, (_, i) => h.publish('s', { data: `${i}:${big}` }))
    const s = sink({ full: true })
    h.subscribe('s', s, { lastEventId: ids[0] })
    const before = events(s).length
    // The replay paused part way (see the test above); meanwhile history moves past the client's position.
    expect(before).toBeLessThan(ids.length - 1)
    for (let i = 40; i < 100; i++) ids.push(h.publish('s', { data: `${i}:${big}` }))
    for (let i = 0; i < 100 && lastEventIdOf(s.text()) !== ids.at(-1); i++) {
      await flushTurn()
      s.drain()
    }
    const all = s.parse().events
    expect(all.some((e) => e.event === DEFAULT_GAP_EVENT && e.data === 'evicted')).toBe(true)
    let position = 0
    for (const event of all) {
      if (event.event === DEFAULT_GAP_EVENT) position = ids.indexOf(event.id!)
      else {
        // Every event follows the previous one, or the gap signal's position, with no hole.
        expect(ids.indexOf(event.id!)).toBe(position + 1)
        position++
      }
    }
    expect(position).toBe(ids.length - 1)
  })
})

describe('with an asynchronous store', () => {
  function asyncHub(store: ManualStore, options: HubOptions = {}): Hub<Promise<string>> {
    const created = createHub({ heartbeatInterval: 0, ...options, store })
    track(created as unknown as Hub)
    return created
  }

  it('returns a promise of the id from publish, and rejects (not throws) a bad event', async () => {
    const store = new ManualStore()
    const h = asyncHub(store)
    const id = h.publish('s', { data: 'a' })
    expect(id).toBeInstanceOf(Promise)
    expect(typeof (await id)).toBe('string')
    const bad = h.publish('s', { data: 'x', event: 'a\nb' })
    await expect(bad).rejects.toMatchObject({ code: 'ERR_INVALID_FIELD' })
    expect(h.stats().published).toBe(1)
  })

  it('sends live events that arrive while the first read is in flight, after the replay and without duplicates', async () => {
    const store = new ManualStore()
    const h = asyncHub(store)
    const first = await h.publish('s', { data: '0' })
    const s = sink()
    h.subscribe('s', s, { lastEventId: first })
    await microtasks()
    const ahead = await h.publish('s', { data: '1' })
    // The read sees event 1 (it runs ahead of the live tail), then the tail delivers it again.
    store.answer()
    store.deliver('s')
    const live = await h.publish('s', { data: '2' })
    store.deliver('s')
    await flushTurn()
    expect(events(s).map((e) => e.id)).toEqual([ahead, live])
  })

  it('signals the gap when live events overflow the queue during a read and history has moved on', async () => {
    const store = new ManualStore({ maxEvents: 3 })
    const h = asyncHub(store, { maxQueueBytes: 300, maxEventBytes: 200 })
    const ids: string[] = []
    for (let i = 0; i < 3; i++) ids.push(await h.publish('s', { data: `${i}` }))
    store.deliver('s')
    const s = sink()
    h.subscribe('s', s, { lastEventId: ids[0] })
    await microtasks()
    expect(store.reads).toHaveLength(1)
    // While the read is in flight, more live events than the queue holds: it overflows, and they
    // evict the client's position from history.
    for (let i = 3; i < 8; i++) ids.push(await h.publish('s', { data: `${i}:${'.'.repeat(100)}` }))
    store.deliver('s')
    await flushTurn()
    // The first read ran before those appends: it sees the client's position retained.
    store.answer('call')
    await microtasks()
    let reads = 1
    for (; reads < 10 && store.reads.length > 0; reads++) {
      store.answer()
      await microtasks()
    }
    await flushTurn()
    // The queue had overflowed: history had to be read again, and only that read finds the gap.
    expect(reads).toBeGreaterThan(1)
    const all = s.parse().events
    expect(all.filter((e) => e.event === DEFAULT_GAP_EVENT)).toHaveLength(1)
    let position = 0
    for (const event of all) {
      if (event.event === DEFAULT_GAP_EVENT) {
        expect(event.data).toBe('evicted')
        position = ids.indexOf(event.id!)
      } else {
        expect(ids.indexOf(event.id!), 'an event was skipped without a gap signal').toBe(position + 1)
        position++
      }
    }
    expect(position).toBe(ids.length - 1)
  })

  it("ends a stream's subscribers with reason reset when the store lost live events, and they resume from history", async () => {
    const store = new ManualStore()
    const onDisconnect = vi.fn()
    const h = asyncHub(store, { onDisconnect })
    const s = sink()
    const subscription = h.subscribe('s', s)
    await microtasks()
    store.answer()
    await microtasks()
    const lost = await h.publish('s', { data: 'lost in delivery' })
    store.reset('s')
    expect(await subscription.done).toBe('reset')
    expect(s.ended).toBe(true)
    expect(onDisconnect).toHaveBeenCalledWith({ stream: 's', reason: 'reset' })
    const again = sink()
    h.subscribe('s', again, { lastEventId: lastEventIdOf(s.text()) })
    await microtasks()
    store.answer()
    await microtasks()
    expect(events(again).map((e) => e.id)).toEqual([lost])
  })
})

describe('filters', () => {
  it('sends only the events the filter accepts, in replay and live, and resumes past skipped ones', async () => {
    const h = hub()
    const filter = (event: StoredEvent) => (event.value as { user: string }).user === 'u1'
    const before = [
      h.publish('s', { data: { user: 'u1', n: 0 } }),
      h.publish('s', { data: { user: 'u2', n: 1 } }),
      h.publish('s', { data: { user: 'u1', n: 2 } }),
    ]
    const s = sink()
    h.subscribe('s', s, { lastEventId: null, filter })
    const all = sink()
    h.subscribe('s', all)
    h.publish('s', { data: { user: 'u2', n: 3 } })
    const live = h.publish('s', { data: { user: 'u1', n: 4 } })
    h.publish('s', { data: { user: 'u2', n: 5 } })
    await flushTurn()
    expect(events(s).map((e) => e.id)).toEqual([before[0], before[2], live])
    expect(events(all)).toHaveLength(3)
    // Resuming from the last id it got skips the filtered events after it, and repeats nothing.
    s.disconnect()
    const again = sink()
    h.subscribe('s', again, { lastEventId: lastEventIdOf(s.text()), filter })
    expect(events(again)).toEqual([])
    expect(gaps(again)).toEqual([])
  })

  it('ends only the stream whose filter throws, reports it, and keeps the others going', async () => {
    const onError = vi.fn()
    const onDisconnect = vi.fn()
    const h = hub({ onError, onDisconnect })
    const boom = new Error('filter failed')
    const bad = sink()
    const good = sink()
    const subscription = h.subscribe('s', bad, {
      filter: () => {
        throw boom
      },
    })
    h.subscribe('s', good)
    h.publish('s', { data: 'a' })
    await flushTurn()
    expect(await subscription.done).toBe('error')
    expect(bad.ended).toBe(true)
    expect(onError).toHaveBeenCalledWith(boom, { stream: 's' })
    expect(onDisconnect).toHaveBeenCalledWith({ stream: 's', reason: 'error' })
    const b = h.publish('s', { data: 'b' })
    await flushTurn()
    expect(events(good).map((e) => e.data)).toEqual(['a', 'b'])
    expect(events(good).at(-1)?.id).toBe(b)
    expect(h.stats().errors).toBe(1)
  })

  it('ends the stream when its filter throws during replay', async () => {
    const onError = vi.fn()
    const h = hub({ onError })
    publishAll(h, 's', ['a', 'b'])
    const s = sink()
    const subscription = h.subscribe('s', s, {
      lastEventId: null,
      filter: () => {
        throw new Error('nope')
      },
    })
    expect(await subscription.done).toBe('error')
    expect(events(s)).toEqual([])
    expect(onError).toHaveBeenCalledTimes(1)
  })

  it('logs a kind of failure at most once a minute when there is no onError, whatever the messages', async () => {
    const log = vi.spyOn(console, 'error').mockImplementation(() => {})
    const h = hub()
    for (let i = 0; i < 3; i++) {
      h.subscribe('s', sink(), {
        filter: () => {
          throw new Error(`message ${i}`)
        },
      })
    }
    h.publish('s', { data: 'a' })
    await flushTurn()
    expect(log).toHaveBeenCalledTimes(1)
    expect(h.stats().errors).toBe(3)
  })
})

describe('a subscriber on its own', () => {
  it('runs on a plain owner object, with no hub: replays after its position, then takes live events', () => {
    const store = createMemoryStore()
    const ids = ['a', 'b', 'c'].map((data) => store.append('s', { data, event: undefined, value: data }).id)
    const released: CloseReason[] = []
    const owner: SubscriberOwner = {
      store,
      counters: { delivered: 0, replayed: 0 },
      maxQueueBytes: 1024 * 1024,
      gapEvent: 'gap',
      clock: new TurnClock(),
      release: (_connection, reason) => released.push(reason),
      decideGap: () => 'replay',
      readHistory: () => Promise.reject(new Error('a synchronous store is read directly')),
      reportError: (error) => {
        throw error
      },
    }
    const s = sink()
    const subscriber = new Subscriber(owner, s, { stream: 's' })
    subscriber.open(undefined, false)
    subscriber.start(ids[0], undefined)
    expect(events(s).map((e) => e.data)).toEqual(['b', 'c'])
    expect(owner.counters.replayed).toBe(2)
    const live = store.append('s', { data: 'd', event: undefined, value: 'd' })
    subscriber.deliver(new Batch([live], live.frame))
    expect(events(s).map((e) => e.data)).toEqual(['b', 'c', 'd'])
    expect(owner.counters.delivered).toBe(1)
    subscriber.close()
    expect(released).toEqual(['end'])
  })
})
