import { describe, expect, it, vi } from 'vitest'
import { listen } from '../../../test/support/listen.js'
import { RawHttpClient } from '../../../test/support/raw-client.js'
import { waitUntil } from '../../../test/support/wait.js'
import { Batch } from '../src/fan-out.js'
import { encodeEvent } from '../src/frame.js'
import {
  type CloseReason,
  createHub,
  createMemoryStore,
  type GapInfo,
  HUB_DEFAULTS,
  type Hub,
  type HubOptions,
} from '../src/index.js'
import type { StoredEvent } from '../src/store.js'
import { Subscriber, type SubscriberOwner } from '../src/subscriber.js'
import { TurnClock } from '../src/wire-writer.js'
import { closesAfterEach } from './helpers/http.js'
import { caught, cleanUpAfterEach, events, gaps, hub, publishAll, sink, track } from './helpers/hubs.js'
import { ManualStore, microtasks } from './helpers/manual-store.js'
import { flushTurn, lastEventIdOf, MemorySink } from './helpers/memory-sink.js'

cleanUpAfterEach()

describe('subscribe', () => {
  it('starts every stream with the retry hint, 3 s by default', () => {
    expect(HUB_DEFAULTS.retry).toBe(3000)
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
    expect(all.some((e) => e.event === HUB_DEFAULTS.gapEvent && e.data === 'evicted')).toBe(true)
    let position = 0
    for (const event of all) {
      if (event.event === HUB_DEFAULTS.gapEvent) position = ids.indexOf(event.id!)
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
    expect(all.filter((e) => e.event === HUB_DEFAULTS.gapEvent)).toHaveLength(1)
    let position = 0
    for (const event of all) {
      if (event.event === HUB_DEFAULTS.gapEvent) {
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
      closed: false,
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

describe('the selective path (a filter, part of a batch, or events queued during a read)', () => {
  /** The chunks written that carry events (not the retry hint or the id-only frame). */
  function eventWrites(s: ReturnType<typeof sink>): Buffer[] {
    return s.written.filter((chunk) => chunk.includes('\ndata:'))
  }

  it('writes nothing for a live batch its filter accepts none of, and the batch still reaches the others', async () => {
    const h = hub()
    const filtered = sink()
    h.subscribe('s', filtered, { filter: (event) => event.data === 'keep' })
    const all = sink()
    h.subscribe('s', all)
    publishAll(h, 's', ['a', 'b'])
    await flushTurn()
    expect(events(filtered)).toEqual([])
    expect(events(all).map((e) => e.data)).toEqual(['a', 'b'])
    const kept = h.publish('s', { data: 'keep' })
    await flushTurn()
    expect(events(filtered).map((e) => e.id)).toEqual([kept])
  })

  it('pauses a filtered replay of more than 64 KiB on a full socket, with a bounded buffer, then finishes it', async () => {
    const h = hub({ history: { maxEvents: 100 } })
    const big = 'x'.repeat(50_000)
    const ids = Array.from({ length: 40 }, (_, i) => h.publish('s', { data: `${i}:${big}` }))
    const s = sink({ full: true })
    h.subscribe('s', s, { lastEventId: null, filter: () => true })
    expect(events(s).length).toBeLessThan(ids.length)
    expect(s.writableLength).toBeLessThan(256 * 1024 + 64 * 1024 + 50_100)
    for (let i = 0; i < 40 && events(s).length < ids.length; i++) {
      s.drain()
      await flushTurn()
    }
    expect(events(s).map((e) => e.id)).toEqual(ids)
  })

  it('combines a filtered replay into writes of 64 KiB, cut as soon as a write reaches it', () => {
    const h = hub({ history: { maxEvents: 1000 } })
    // A frame is `id: <id>\ndata: <data>\n\n`: 13 bytes around the id and the data.
    const first = h.publish('s', { data: 'x'.repeat(1000) })
    const secondId = `${first.slice(0, -1)}2`
    const second = h.publish('s', {
      data: 'y'.repeat(64 * 1024 - (13 + first.length + 1000) - 13 - secondId.length),
    })
    expect(second).toBe(secondId)
    h.publish('s', { data: 'z' })
    // All in one page of history (256 events): each page ends with its own, shorter, write.
    for (let i = 0; i < 200; i++) h.publish('s', { data: 'w'.repeat(500) })
    const s = sink()
    // Resumes from before the first event (no gap signal, which is written on its own).
    h.subscribe('s', s, { lastEventId: `${first.slice(0, -1)}0`, filter: () => true })
    const writes = eventWrites(s)
    // The first two frames make exactly 64 KiB: that write ends there.
    expect(writes[0]!.length).toBe(64 * 1024)
    expect(events(s)).toHaveLength(203)
    // Then ~105 KB of small frames in writes of at least 64 KiB, not one write per event.
    expect(writes.length).toBe(3)
    for (const write of writes.slice(0, -1)) expect(write.length).toBeGreaterThanOrEqual(64 * 1024)
  })

  it('does not wait for a drain until 256 KiB is buffered for a replaying client', () => {
    const h = hub({ history: { maxEvents: 2000 } })
    for (let i = 0; i < 2000; i++) h.publish('s', { data: `${i}:${'x'.repeat(500)}` })
    const s = sink({ full: true })
    h.subscribe('s', s, { lastEventId: null })
    // A socket buffer fills at 16 KiB: pausing at the first false write would cost a round trip per chunk.
    expect(s.writableLength).toBeGreaterThanOrEqual(256 * 1024)
    expect(s.writableLength).toBeLessThan(256 * 1024 + 64 * 1024 + 1024)
    expect(events(s).length).toBeLessThan(2000)
  })

  it('counts the events a filtered subscriber is sent as replayed and delivered, and no others', async () => {
    const h = hub()
    publishAll(h, 's', ['a', 'skip', 'b'])
    const s = sink()
    h.subscribe('s', s, { lastEventId: null, filter: (event) => event.data !== 'skip' })
    expect(h.stats()).toMatchObject({ replayed: 2, delivered: 0 })
    publishAll(h, 's', ['c', 'skip', 'd', 'e'])
    await flushTurn()
    expect(h.stats()).toMatchObject({ replayed: 2, delivered: 3 })
    expect(events(s).map((e) => e.data)).toEqual(['a', 'b', 'c', 'd', 'e'])
  })

  it('sends the events queued during a read after it, without reading history again', async () => {
    const store = new ManualStore()
    const h = createHub({ heartbeatInterval: 0, store })
    track(h as unknown as Hub)
    const first = await h.publish('s', { data: '0' })
    const s = sink()
    h.subscribe('s', s, { lastEventId: first })
    await microtasks()
    expect(store.reads).toHaveLength(1)
    // Delivered while the read is in flight: queued, and well under maxQueueBytes.
    await h.publish('s', { data: '1' })
    store.deliver('s')
    await flushTurn()
    store.answer('call')
    await microtasks()
    expect(store.reads).toHaveLength(0)
    expect(events(s).map((e) => e.data)).toEqual(['1'])
  })

  it('reports a store failure that comes after the client has left to nobody', async () => {
    const onError = vi.fn()
    let fail: (error: Error) => void = () => {}
    const store = new ManualStore()
    store.read = () => new Promise((_, reject) => (fail = reject))
    const h = createHub({ heartbeatInterval: 0, store, onError })
    track(h as unknown as Hub)
    const s = sink()
    const subscription = h.subscribe('s', s, { lastEventId: null })
    await microtasks()
    s.disconnect()
    expect(await subscription.done).toBe('client')
    fail(new Error('store down'))
    await microtasks()
    expect(onError).not.toHaveBeenCalled()
  })
})

describe("a response's subscriber", () => {
  const { cleanups, hubFor } = closesAfterEach()

  it('closes with reason end once it has sent the terminal event', async () => {
    const onDisconnect = vi.fn()
    const h = hubFor({ heartbeatInterval: 0, onDisconnect })
    const server = await listen((req, res) => h.serve(req, res, { response: 'r1' }))
    cleanups.push(() => server.close())
    const { done } = await h.responses.start(
      async function* () {
        yield 'a'
      },
      { id: 'r1' },
    )
    expect(await done).toBe('done')
    const client = new RawHttpClient(server.port, { path: '/' })
    cleanups.push(() => client.destroy())
    await client.until(() => client.events.length === 2)
    expect(client.events.map((e) => e.data)).toEqual(['a', 'done'])
    // `end` is API: what Subscription.done resolves to and what onDisconnect is told.
    await waitUntil(() => onDisconnect.mock.calls.length > 0, 'onDisconnect.mock.calls.length > 0', 5000)
    expect(onDisconnect).toHaveBeenCalledWith(expect.objectContaining({ reason: 'end' }))
  })
})

describe('shared buffers and the queue limit', () => {
  /** A sink that keeps the very buffers it is handed, to tell a shared buffer from a copy. */
  class KeepingSink extends MemorySink {
    readonly handed: Uint8Array[] = []
    override write(chunk: Uint8Array): boolean {
      this.handed.push(chunk)
      return super.write(chunk)
    }
  }

  it('hands every unfiltered subscriber the same buffer for a live batch and for a replayed page', async () => {
    const h = hub({ retry: null })
    const first = h.publish('s', { data: 'a' })
    publishAll(h, 's', ['b', 'b2'])
    const a = new KeepingSink()
    const b = new KeepingSink()
    h.subscribe('s', a, { lastEventId: first })
    h.subscribe('s', b, { lastEventId: first })
    // The replayed page (events after `first`): one write, the same object for both.
    expect(a.handed).toHaveLength(1)
    expect(b.handed[0]).toBe(a.handed[0])
    publishAll(h, 's', ['c', 'd'])
    await flushTurn()
    expect(a.handed).toHaveLength(2)
    expect(b.handed[1]).toBe(a.handed[1])
    expect(events(a).map((e) => e.data)).toEqual(['b', 'b2', 'c', 'd'])
  })

  it('keeps a client whose backlog is exactly maxQueueBytes, and cuts it off past that', async () => {
    const h = hub({ retry: null, maxQueueBytes: 1024, maxEventBytes: 1024 })
    const first = h.publish('s', { data: 'first' })
    const s = sink({ full: true })
    const subscription = h.subscribe('s', s, { lastEventId: first })
    expect(s.writableLength).toBe(0)
    // A frame is `id: <id>\ndata: <data>\n\n`: 13 bytes around the id and the data.
    const secondId = `${first.slice(0, -1)}2`
    h.publish('s', { data: 'x'.repeat(1024 - 13 - secondId.length) })
    await flushTurn()
    expect(s.writableLength).toBe(1024)
    h.publish('s', { data: 'y' })
    await flushTurn()
    expect(subscription.closed).toBe(false)
    h.publish('s', { data: 'z' })
    await flushTurn()
    expect(await subscription.done).toBe('slow')
  })
})

describe('what a subscriber does after it has ended or been cut', () => {
  it('stops calling a filter that threw, in replay and live', async () => {
    const h = hub({ onError: () => {} })
    publishAll(h, 's', ['a', 'boom', 'c', 'd'])
    let replayCalls = 0
    const replaying = sink()
    h.subscribe('s', replaying, {
      lastEventId: null,
      filter: (event) => {
        replayCalls++
        if (event.data === 'boom') throw new Error('filter broke')
        return true
      },
    })
    expect(replayCalls).toBe(2)
    let liveCalls = 0
    const live = sink()
    h.subscribe('s', live, {
      filter: (event) => {
        liveCalls++
        if (event.data === 'boom') throw new Error('filter broke')
        return true
      },
    })
    publishAll(h, 's', ['a', 'boom', 'c', 'd'])
    await flushTurn()
    expect(liveCalls).toBe(2)
    expect(h.stats().delivered).toBe(0)
  })

  it('counts as delivered only what it wrote before it was cut as slow', async () => {
    const h = hub({ maxQueueBytes: 1024, maxEventBytes: 512 })
    const slow = sink({ full: true })
    const subscription = h.subscribe('s', slow)
    for (let i = 0; i < 5; i++) {
      h.publish('s', { data: 'x'.repeat(300) })
      await flushTurn()
    }
    expect(await subscription.done).toBe('slow')
    expect(h.stats().delivered).toBe(events(slow).length)
    expect(events(slow).length).toBeLessThan(5)
  })

  it('neither signals nor counts a gap for a client that left while its read was in flight', async () => {
    const onGap = vi.fn()
    const store = new ManualStore()
    const h = createHub({ heartbeatInterval: 0, store, onGap })
    track(h as unknown as Hub)
    await h.publish('s', { data: 'a' })
    const s = sink()
    h.subscribe('s', s, { lastEventId: 'not-an-id-of-this-stream' })
    await microtasks()
    s.disconnect()
    store.answer()
    await microtasks()
    expect(onGap).not.toHaveBeenCalled()
    expect(h.stats().gaps).toBe(0)
  })
})

describe('the edges of a filtered replay', () => {
  it('never writes an empty chunk for a page whose events the filter all skips', () => {
    const h = hub()
    publishAll(h, 's', ['a', 'b', 'c'])
    const s = sink()
    h.subscribe('s', s, { lastEventId: null, filter: () => false })
    // An empty write would be an empty HTTP chunk, which ends a chunked body.
    expect(s.written.filter((chunk) => chunk.length === 0)).toEqual([])
    expect(events(s)).toEqual([])
  })

  it('pauses when the last write of a page fills the buffer, not only in the middle of one', () => {
    // Pages of 256 small events make one write each, under 64 KiB: only the end-of-page write
    // can reach the replay buffer.
    const h = hub({ history: { maxEvents: 4000 } })
    for (let i = 0; i < 4000; i++) h.publish('s', { data: `${i}:${'x'.repeat(150)}` })
    const s = sink({ full: true })
    h.subscribe('s', s, { lastEventId: null, filter: () => true })
    expect(events(s).length).toBeLessThan(4000)
    expect(s.writableLength).toBeLessThan(256 * 1024 + 64 * 1024)
  })

  it('pauses once exactly 256 KiB is buffered', () => {
    const h = hub({ retry: null, history: { maxEvents: 100 } })
    const first = h.publish('s', { data: 'first' })
    // Frames of exactly 64 KiB: `id: <id>\ndata: <data>\n\n` is 13 bytes around the id and the data.
    for (let i = 2; i <= 7; i++) h.publish('s', { data: 'x'.repeat(64 * 1024 - 13 - first.length) })
    const s = sink({ full: true })
    h.subscribe('s', s, { lastEventId: first })
    expect(s.writableLength).toBe(256 * 1024)
    expect(events(s)).toHaveLength(4)
  })

  it('writes a lone accepted frame as stored, in replay and live, without copying it', async () => {
    const store = createMemoryStore()
    const h = hub({ store, retry: null })
    const first = h.publish('s', { data: 'a' })
    h.publish('s', { data: 'b' })
    const kept: Uint8Array[] = []
    const s = new (class extends MemorySink {
      override write(chunk: Uint8Array): boolean {
        kept.push(chunk)
        return super.write(chunk)
      }
    })()
    h.subscribe('s', s, { lastEventId: first, filter: (event) => event.data !== 'skip' })
    expect(kept[0]).toBe(store.read('s', first, 1).events[0]!.frame)
    const live = h.publish('s', { data: 'c' })
    h.publish('s', { data: 'skip' })
    await flushTurn()
    const after = store.read('s', first, 10).events.find((e) => e.id === live)!
    expect(kept[1]).toBe(after.frame)
  })
})

describe('the queue of events that arrive during a read', () => {
  it('holds exactly maxQueueBytes without overflowing into a second read', async () => {
    const store = new ManualStore()
    const h = createHub({ heartbeatInterval: 0, store, maxQueueBytes: 1024, maxEventBytes: 1024 })
    track(h as unknown as Hub)
    const first = await h.publish('s', { data: '0' })
    store.deliver('s')
    const s = sink()
    h.subscribe('s', s, { lastEventId: first })
    await microtasks()
    // One frame of exactly 1024 bytes: `id: <id>\ndata: <data>\n\n` is 13 bytes around them.
    await h.publish('s', { data: 'x'.repeat(1024 - 13 - first.length) })
    store.deliver('s')
    await flushTurn()
    store.answer('call')
    await microtasks()
    expect(store.reads).toHaveLength(0)
    expect(events(s)).toHaveLength(1)
  })
})
