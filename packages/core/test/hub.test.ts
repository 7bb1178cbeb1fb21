import type { EventSourceMessage } from 'eventsource-parser'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { hubFromOptions } from '../src/adapter.js'
import type { CloseReason } from '../src/connection.js'
import { RewindError } from '../src/errors.js'
import { encodeEvent } from '../src/frame.js'
import {
  createHub,
  createMemoryStore,
  DEFAULT_GAP_EVENT,
  DEFAULT_RETRY,
  type GapInfo,
  type Hub,
  type HubOptions,
  MAX_TIMER_DELAY,
} from '../src/index.js'
import type { StoredEvent } from '../src/store.js'
import { ManualStore, microtasks } from './helpers/manual-store.js'
import { flushTurn, lastEventIdOf, MemorySink, parseStream } from './helpers/memory-sink.js'

const hubs: Hub[] = []
const sinks: MemorySink[] = []

function hub(options: HubOptions = {}): Hub {
  // No heartbeat unless a test asks for one: its timer would only add noise.
  const created = createHub({ heartbeatInterval: 0, ...options }) as Hub
  hubs.push(created)
  return created
}

function sink(options: { full?: boolean } = {}): MemorySink {
  const created = new MemorySink(options)
  sinks.push(created)
  return created
}

afterEach(async () => {
  await Promise.all(hubs.splice(0).map((h) => h.close()))
  // The hub must never write to a response it has ended or that has closed.
  for (const s of sinks.splice(0)) expect(s.writesAfterEnd).toBe(0)
  vi.restoreAllMocks()
  vi.useRealTimers()
})

function events(s: MemorySink, gapEvent = DEFAULT_GAP_EVENT): EventSourceMessage[] {
  return s.parse().events.filter((e) => e.event !== gapEvent)
}

function gaps(s: MemorySink, gapEvent = DEFAULT_GAP_EVENT): EventSourceMessage[] {
  return s.parse().events.filter((e) => e.event === gapEvent)
}

function caught(fn: () => unknown): RewindError {
  try {
    fn()
  } catch (error) {
    expect(error).toBeInstanceOf(RewindError)
    return error as RewindError
  }
  throw new Error('expected a RewindError, nothing was thrown')
}

function publishAll(h: Hub, stream: string, data: readonly string[]): string[] {
  return data.map((d) => h.publish(stream, { data: d }))
}

describe('publish', () => {
  it('returns strictly new ids and keeps events in history for later subscribers', () => {
    const h = hub()
    const ids = publishAll(h, 'news', ['a', 'b', 'c'])
    expect(new Set(ids).size).toBe(3)
    const s = sink()
    h.subscribe('news', s, { lastEventId: ids[0] })
    expect(events(s).map((e) => [e.id, e.data])).toEqual([
      [ids[1], 'b'],
      [ids[2], 'c'],
    ])
  })

  it('serializes non-string data as JSON once and sends strings as they are', async () => {
    const h = hub()
    const s = sink()
    h.subscribe('s', s)
    h.publish('s', { data: { n: 1, text: 'é' } })
    h.publish('s', { data: '{"raw":true}' })
    h.publish('s', { data: 'two\nlines', event: 'multi' })
    await flushTurn()
    expect(events(s).map((e) => [e.event, e.data])).toEqual([
      [undefined, '{"n":1,"text":"é"}'],
      [undefined, '{"raw":true}'],
      ['multi', 'two\nlines'],
    ])
  })

  it('treats an empty event name as a message event', async () => {
    const h = hub()
    const s = sink()
    h.subscribe('s', s)
    h.publish('s', { data: 'x', event: '' })
    await flushTurn()
    expect(events(s)).toEqual([expect.objectContaining({ event: undefined, data: 'x' })])
  })

  it.each(['a\nb', 'a\rb', 'a\r\nb', 'a\0b', '\n'])(
    'refuses the event name %j with ERR_INVALID_FIELD, appends nothing and leaves subscribers alone',
    async (name) => {
      const h = hub()
      const s = sink()
      h.publish('s', { data: 'before' })
      h.subscribe('s', s)
      const error = caught(() => h.publish('s', { event: name, data: 'evil' }))
      expect(error.code).toBe('ERR_INVALID_FIELD')
      expect(error.field).toBe('event')
      expect(h.store.synchronous && h.store.size?.('s')).toBe(1)
      const after = h.publish('s', { data: 'after' })
      await flushTurn()
      expect(events(s).map((e) => [e.id, e.data])).toEqual([[after, 'after']])
      expect(s.closed).toBe(false)
      expect(h.stats().published).toBe(2)
    },
  )

  it('refuses an input that is not an event object with ERR_INVALID_ARGUMENT', () => {
    const h = hub()
    for (const input of [null, undefined, 'text', 42, true]) {
      const error = caught(() => h.publish('s', input as never))
      expect(error.code).toBe('ERR_INVALID_ARGUMENT')
    }
    expect(h.stats().published).toBe(0)
  })

  it('refuses data that cannot be serialized with ERR_SERIALIZE and appends nothing', () => {
    const cyclic: { self?: unknown } = {}
    cyclic.self = cyclic
    const h = hub()
    for (const data of [cyclic, 10n, undefined, () => 1]) {
      expect(caught(() => h.publish('s', { data })).code).toBe('ERR_SERIALIZE')
    }
    const custom = hub({ serialize: () => 42 as unknown as string })
    expect(caught(() => custom.publish('s', { data: {} })).code).toBe('ERR_SERIALIZE')
    // Strings bypass the serializer.
    expect(() => custom.publish('s', { data: 'ok' })).not.toThrow()
    expect(h.store.synchronous && h.store.size?.('s')).toBe(0)
  })

  it('refuses data larger than maxEventBytes, counted in UTF-8 bytes of the serialized data', () => {
    const h = hub({ maxEventBytes: 10 })
    expect(() => h.publish('s', { data: 'x'.repeat(10) })).not.toThrow()
    expect(caught(() => h.publish('s', { data: 'x'.repeat(11) })).code).toBe('ERR_EVENT_TOO_LARGE')
    expect(() => h.publish('s', { data: 'é'.repeat(5) })).not.toThrow()
    // Six characters, twelve bytes.
    expect(caught(() => h.publish('s', { data: 'é'.repeat(6) })).code).toBe('ERR_EVENT_TOO_LARGE')
    // '{"a":"xxxxx"}' is 13 bytes once serialized.
    expect(caught(() => h.publish('s', { data: { a: 'xxxxx' } })).code).toBe('ERR_EVENT_TOO_LARGE')
    expect(h.store.synchronous && h.store.size?.('s')).toBe(2)
  })

  it('refuses bad stream names with ERR_INVALID_STREAM', () => {
    const h = hub()
    for (const stream of ['', 'x'.repeat(257), 42, undefined, null, {}]) {
      const error = caught(() => h.publish(stream as string, { data: 'x' }))
      expect(error.code).toBe('ERR_INVALID_STREAM')
      expect(error.field).toBe('stream')
    }
    expect(() => h.publish('x'.repeat(256), { data: 'x' })).not.toThrow()
  })

  it('refuses to publish after close() with ERR_CLOSED', async () => {
    const h = hub()
    await h.close()
    expect(h.closed).toBe(true)
    expect(caught(() => h.publish('s', { data: 'x' })).code).toBe('ERR_CLOSED')
  })

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

describe('hub options', () => {
  function optionError(options: HubOptions): RewindError {
    return caught(() => createHub(options))
  }

  it('refuses maxEventBytes above maxQueueBytes, since one event would disconnect every subscriber', () => {
    const error = optionError({ maxEventBytes: 2048, maxQueueBytes: 1024 })
    expect(error.code).toBe('ERR_INVALID_ARGUMENT')
    expect(error.field).toBe('maxEventBytes')
    // The default maxEventBytes (256 KiB) must fit too.
    expect(optionError({ maxQueueBytes: 1024 }).code).toBe('ERR_INVALID_ARGUMENT')
    expect(() => hub({ maxEventBytes: 1024, maxQueueBytes: 1024 })).not.toThrow()
  })

  it.each<[HubOptions, string]>([
    [{ maxQueueBytes: 0 }, 'maxQueueBytes'],
    [{ maxEventBytes: -1 }, 'maxEventBytes'],
    [{ maxEventBytes: 1.5 }, 'maxEventBytes'],
    [{ heartbeatInterval: -1 }, 'heartbeatInterval'],
    [{ heartbeatInterval: Number.NaN }, 'heartbeatInterval'],
    [{ gapPolicy: 'skip' as never }, 'gapPolicy'],
    [{ maxConnections: 0 }, 'maxConnections'],
    [{ maxSubscribersPerStream: -1 }, 'maxSubscribersPerStream'],
    [{ overloadRetry: -1 }, 'overloadRetry'],
    [{ closeGrace: 0.5 }, 'closeGrace'],
    [{ onGap: 'nope' as never }, 'onGap'],
    [{ onConnect: 1 as never }, 'onConnect'],
    [{ onDisconnect: {} as never }, 'onDisconnect'],
    [{ onReject: true as never }, 'onReject'],
    [{ onError: 'x' as never }, 'onError'],
    [{ serialize: 5 as never }, 'serialize'],
    [{ history: { maxEvents: 0 } }, 'maxEvents'],
  ])('refuses %o with ERR_INVALID_ARGUMENT naming %s', (options, field) => {
    const error = optionError(options)
    expect(error.code).toBe('ERR_INVALID_ARGUMENT')
    expect(error.field).toBe(field)
  })

  it('refuses a retry hint or gap event name that cannot go on the wire, like any bad option', () => {
    for (const retry of [-1, 1.5, Number.NaN]) {
      expect(optionError({ retry })).toMatchObject({ code: 'ERR_INVALID_ARGUMENT', field: 'retry' })
    }
    expect(optionError({ gapEvent: 'gap\nid: 1' })).toMatchObject({
      code: 'ERR_INVALID_ARGUMENT',
      field: 'gapEvent',
    })
  })

  it.each(['heartbeatInterval', 'closeGrace', 'retry', 'overloadRetry'] as const)(
    'refuses %s above MAX_TIMER_DELAY (Node would run the timer every millisecond), with the rule and the fix',
    (name) => {
      expect(MAX_TIMER_DELAY).toBe(2 ** 31 - 1)
      for (const value of [MAX_TIMER_DELAY + 1, 2 ** 40, Number.MAX_SAFE_INTEGER]) {
        const error = optionError({ [name]: value })
        expect(error).toBeInstanceOf(RewindError)
        expect(error).toMatchObject({ code: 'ERR_INVALID_ARGUMENT', field: name })
        expect(error.message).toContain(`${name} must be at most 2147483647 ms`)
        expect(error.message).toContain('give a delay of at most 2147483647')
      }
      const h = hub({ [name]: MAX_TIMER_DELAY })
      expect(h.closed).toBe(false)
    },
  )

  it('refuses close({ retry }) above MAX_TIMER_DELAY, and caps jittered hints at it', async () => {
    const h = hub({ heartbeatInterval: 0, overloadRetry: MAX_TIMER_DELAY, maxConnections: 1 })
    await expect(h.close({ retry: MAX_TIMER_DELAY + 1 })).rejects.toMatchObject({
      code: 'ERR_INVALID_ARGUMENT',
      field: 'retry',
    })
    expect(h.closed).toBe(false)
    // A client turned away gets a hint of at most MAX_TIMER_DELAY, however the jitter falls.
    const kept = sink()
    h.subscribe('s', kept)
    for (let i = 0; i < 20; i++) {
      const turned = sink()
      h.subscribe('s', turned)
      const retry = Number(/retry: (\d+)/.exec(turned.text())![1])
      expect(retry).toBeGreaterThanOrEqual(Math.floor(MAX_TIMER_DELAY / 2))
      expect(retry).toBeLessThanOrEqual(MAX_TIMER_DELAY)
    }
    await h.close({ retry: MAX_TIMER_DELAY })
  })

  it('refuses history bounds together with a store, which would silently not apply to it', () => {
    for (const store of [createMemoryStore(), new ManualStore()]) {
      const error = optionError({ store, history: { maxEvents: 5 } })
      expect(error).toMatchObject({ code: 'ERR_INVALID_ARGUMENT', field: 'history' })
      expect(error.message).toContain("configure the store's own bounds")
      expect(() => hubFromOptions({ store, history: {} })).toThrow(
        expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT', field: 'history' }),
      )
    }
    expect(() => hub({ store: createMemoryStore({ maxEvents: 5 }) })).not.toThrow()
    expect(() => hub({ history: { maxEvents: 5 } })).not.toThrow()
  })

  it('accepts Infinity for the connection limits', () => {
    expect(() =>
      hub({ maxConnections: Number.POSITIVE_INFINITY, maxSubscribersPerStream: Number.POSITIVE_INFINITY }),
    ).not.toThrow()
  })
})

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
    hubs.push(created as unknown as Hub)
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

describe('limits', () => {
  it('answers a client past maxConnections with a jittered retry hint and an ended body', async () => {
    const onReject = vi.fn()
    const onConnect = vi.fn()
    const onDisconnect = vi.fn()
    const h = hub({ maxConnections: 1, overloadRetry: 1000, onReject, onConnect, onDisconnect })
    const first = sink()
    h.subscribe('a', first)
    const turnedAway = sink()
    const subscription = h.subscribe('b', turnedAway)
    expect(subscription.closed).toBe(true)
    expect(await subscription.done).toBe('rejected')
    expect(turnedAway.ended).toBe(true)
    const parsed = turnedAway.parse()
    expect(parsed.events).toEqual([])
    expect(parsed.retries).toHaveLength(1)
    expect(parsed.retries[0]).toBeGreaterThanOrEqual(500)
    expect(parsed.retries[0]).toBeLessThanOrEqual(1500)
    expect(lastEventIdOf(turnedAway.text())).toBeUndefined()
    expect(onReject).toHaveBeenCalledWith({ stream: 'b', reason: 'limit' })
    // A client that never got in neither connected nor disconnected.
    expect(onConnect).toHaveBeenCalledTimes(1)
    expect(onDisconnect).not.toHaveBeenCalled()
    expect(h.stats()).toMatchObject({ rejected: 1, connections: 1 })
    expect(first.closed).toBe(false)
    // Once the first leaves, there is room again.
    first.disconnect()
    const later = sink()
    expect(h.subscribe('b', later).closed).toBe(false)
  })

  it('spreads the retry hints of turned-away clients between half and one and a half times overloadRetry', () => {
    const h = hub({ maxConnections: 1 })
    h.subscribe('s', sink())
    const hints = Array.from({ length: 30 }, () => {
      const s = sink()
      h.subscribe('s', s)
      return s.parse().retries[0]!
    })
    for (const hint of hints) {
      expect(hint).toBeGreaterThanOrEqual(5000)
      expect(hint).toBeLessThanOrEqual(15000)
      expect(Number.isInteger(hint)).toBe(true)
    }
    expect(new Set(hints).size).toBeGreaterThan(1)
  })

  it('turns away subscribers past maxSubscribersPerStream on that stream only', () => {
    const onReject = vi.fn()
    const h = hub({ maxSubscribersPerStream: 1, onReject })
    h.subscribe('a', sink())
    const second = sink()
    expect(h.subscribe('a', second).closed).toBe(true)
    expect(second.ended).toBe(true)
    expect(second.parse().retries).toHaveLength(1)
    expect(h.subscribe('b', sink()).closed).toBe(false)
    expect(onReject).toHaveBeenCalledWith({ stream: 'a', reason: 'limit' })
    expect(h.stats().rejected).toBe(1)
  })

  it('disconnects a subscriber whose unsent bytes pass maxQueueBytes, and only that one', async () => {
    const onDisconnect = vi.fn()
    const h = hub({ maxQueueBytes: 1024, maxEventBytes: 512, onDisconnect })
    const slow = sink({ full: true })
    const fast = sink()
    const subscription = h.subscribe('s', slow)
    h.subscribe('s', fast)
    for (let i = 0; i < 5; i++) {
      h.publish('s', { data: 'x'.repeat(300) })
      await flushTurn()
    }
    expect(await subscription.done).toBe('slow')
    // Ending gracefully would keep the queued bytes alive until the client reads them.
    expect(slow.destroyed).toBe(true)
    expect(onDisconnect).toHaveBeenCalledWith({ stream: 's', reason: 'slow' })
    expect(h.stats().slowClosed).toBe(1)
    expect(events(fast)).toHaveLength(5)
    expect(fast.closed).toBe(false)
  })

  it('lets a slow-closed client resume from the last event it received', async () => {
    const h = hub({ maxQueueBytes: 1024, maxEventBytes: 512 })
    const s = sink()
    h.subscribe('s', s)
    const first = h.publish('s', { data: 'first' })
    await flushTurn()
    s.stall()
    const rest: string[] = []
    for (let i = 0; i < 5; i++) {
      rest.push(h.publish('s', { data: 'x'.repeat(300) }))
      await flushTurn()
    }
    expect(s.destroyed).toBe(true)
    const lastReceived = lastEventIdOf(s.receivedText())
    expect(lastReceived).toBe(first)
    const again = sink()
    h.subscribe('s', again, { lastEventId: lastReceived })
    expect(gaps(again)).toEqual([])
    expect(events(again).map((e) => e.id)).toEqual(rest)
  })
})

describe('stats', () => {
  it('counts connections, deliveries, replays, gaps and queued bytes', async () => {
    const h = hub()
    const ids = publishAll(h, 's', ['1', '2'])
    const a = sink()
    const b = sink()
    const c = sink()
    h.subscribe('s', a)
    h.subscribe('s', b, { lastEventId: ids[0] })
    h.subscribe('s', c, { lastEventId: 'garbage' })
    expect(h.stats()).toMatchObject({ replayed: 3, gaps: 1, published: 2, delivered: 0 })
    h.publish('s', { data: '3' })
    await flushTurn()
    expect(h.stats()).toEqual({
      connections: 3,
      subscribers: 3,
      streams: 1,
      published: 3,
      delivered: 3,
      replayed: 3,
      gaps: 1,
      slowClosed: 0,
      rejected: 0,
      errors: 0,
      queuedBytes: 0,
    })
    a.stall()
    h.publish('s', { data: '4' })
    await flushTurn()
    expect(h.stats().queuedBytes).toBe(a.writableLength)
    expect(h.stats().queuedBytes).toBeGreaterThan(0)
    expect(h.stats().delivered).toBe(6)
    h.subscribe('t', sink())
    expect(h.stats()).toMatchObject({ connections: 4, subscribers: 4, streams: 2 })
    b.disconnect()
    c.disconnect()
    expect(h.stats()).toMatchObject({ connections: 2, subscribers: 2, streams: 2 })
  })
})

describe('hooks', () => {
  it('reports each connection and each disconnect with its reason', async () => {
    const onConnect = vi.fn()
    const reasons: (CloseReason | undefined)[] = []
    const h = hub({ onConnect, onDisconnect: (info) => reasons.push(info.reason) })
    const client = sink()
    const ended = sink()
    const shutdown = sink()
    const byClient = h.subscribe('s', client)
    const byApp = h.subscribe('s', ended)
    const byShutdown = h.subscribe('t', shutdown)
    expect(onConnect.mock.calls).toEqual([[{ stream: 's' }], [{ stream: 's' }], [{ stream: 't' }]])
    client.disconnect()
    expect(await byClient.done).toBe('client')
    // The client is gone: nothing to end.
    expect(client.endCalls).toBe(0)
    byApp.close()
    expect(await byApp.done).toBe('end')
    expect(ended.ended).toBe(true)
    await h.close()
    expect(await byShutdown.done).toBe('shutdown')
    expect(reasons).toEqual(['client', 'end', 'shutdown'])
  })

  it('treats a transport error as the client leaving', async () => {
    const h = hub()
    const s = sink()
    const subscription = h.subscribe('s', s)
    s.emit('error', new Error('ECONNRESET'))
    expect(await subscription.done).toBe('client')
    expect(h.stats().connections).toBe(0)
  })

  it('survives every hook throwing, including onError', async () => {
    const thrower = () => {
      throw new Error('hook failed')
    }
    const h = hub({
      maxConnections: 2,
      onConnect: thrower,
      onDisconnect: thrower,
      onReject: thrower,
      onGap: thrower,
      onError: thrower,
    })
    const ids = publishAll(h, 's', ['a'])
    const s = sink()
    expect(() => h.subscribe('s', s, { lastEventId: 'stale' })).not.toThrow()
    expect(() => h.subscribe('s', sink())).not.toThrow()
    expect(() => h.subscribe('s', sink())).not.toThrow()
    const b = h.publish('s', { data: 'b' })
    await flushTurn()
    expect(events(s).map((e) => e.id)).toEqual([ids[0], b])
    expect(gaps(s)).toHaveLength(1)
    const subscription = h.subscribe('s', sink())
    expect(subscription.closed).toBe(true)
    expect(() => s.disconnect()).not.toThrow()
    await expect(h.close()).resolves.toBeUndefined()
  })
})

describe('heartbeat', () => {
  it('writes a comment to silent connections only, and never moves the resume point', async () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] })
    const h = hub({ heartbeatInterval: 1000 })
    const ids = publishAll(h, 's', ['a'])
    const quiet = sink()
    const busy = sink()
    h.subscribe('s', quiet)
    h.subscribe('t', busy)
    // The subscription itself wrote; the first tick only clears that mark.
    vi.advanceTimersByTime(1000)
    h.publish('t', { data: 'traffic' })
    await flushTurn()
    vi.advanceTimersByTime(1000)
    expect(quiet.parse().comments).toEqual([''])
    expect(busy.parse().comments).toEqual([])
    expect(lastEventIdOf(quiet.text())).toBe(ids[0])
    vi.advanceTimersByTime(3000)
    expect(quiet.parse().comments.length).toBe(4)
    expect(parseStream(quiet.text()).events).toEqual([])
  })
})

describe('close', () => {
  it('sends events published before it, then ends every stream and resolves', async () => {
    const h = hub()
    const a = sink()
    const b = sink()
    const sa = h.subscribe('a', a)
    h.subscribe('b', b)
    const ids = publishAll(h, 'a', ['1', '2'])
    await h.close()
    expect(events(a).map((e) => e.id)).toEqual(ids)
    expect(a.ended && b.ended).toBe(true)
    expect(sa.closed).toBe(true)
    expect(h.stats()).toMatchObject({ connections: 0, subscribers: 0, streams: 0 })
  })

  it('returns the same promise when called again', () => {
    const h = hub()
    const first = h.close()
    expect(h.close()).toBe(first)
    return first
  })

  it('sends each client a jittered retry hint within half and one and a half times the given delay, after its events', async () => {
    const h = hub({ retry: null })
    const clients = Array.from({ length: 20 }, () => {
      const s = sink()
      h.subscribe('s', s)
      return s
    })
    h.publish('s', { data: 'last words' })
    await h.close({ retry: 2000 })
    const hints = clients.map((s) => {
      const parsed = s.parse()
      expect(parsed.events.at(-1)?.data).toBe('last words')
      expect(s.text().endsWith('\n\n')).toBe(true)
      expect(s.text().lastIndexOf('retry:')).toBeGreaterThan(s.text().lastIndexOf('last words'))
      expect(parsed.retries).toHaveLength(1)
      return parsed.retries[0]!
    })
    for (const hint of hints) {
      expect(hint).toBeGreaterThanOrEqual(1000)
      expect(hint).toBeLessThanOrEqual(3000)
    }
    expect(new Set(hints).size).toBeGreaterThan(1)
  })

  it('refuses an invalid retry without closing the hub', async () => {
    const h = hub()
    let error: unknown
    try {
      await h.close({ retry: -1 })
    } catch (e) {
      error = e
    }
    expect(error).toBeInstanceOf(RewindError)
    expect((error as RewindError).code).toBe('ERR_INVALID_ARGUMENT')
    expect(h.closed).toBe(false)
  })

  it('destroys streams that have not finished after closeGrace', async () => {
    class StubbornSink extends MemorySink {
      override end(): this {
        this.endCalls++
        this.ended = true
        return this
      }
    }
    const h = hub({ closeGrace: 5 })
    const s = new StubbornSink()
    h.subscribe('s', s)
    await h.close()
    expect(s.ended).toBe(true)
    expect(s.destroyed).toBe(true)
  })

  it('turns away subscribers after close with a retry hint and onReject closed', async () => {
    const onReject = vi.fn()
    const h = hub({ onReject })
    await h.close()
    const s = sink()
    const subscription = h.subscribe('s', s)
    expect(subscription.closed).toBe(true)
    expect(await subscription.done).toBe('rejected')
    expect(s.ended).toBe(true)
    expect(s.parse().retries).toHaveLength(1)
    expect(onReject).toHaveBeenCalledWith({ stream: 's', reason: 'closed' })
    expect(h.stats().rejected).toBe(1)
  })

  it('resolves at once with no connections', async () => {
    await expect(hub().close()).resolves.toBeUndefined()
  })
})

describe('hubFromOptions', () => {
  it('returns the given hub, or builds one from the options over the defaults', async () => {
    const shared = createHub()
    expect(hubFromOptions({ hub: shared })).toBe(shared)
    const built = hubFromOptions({ gapEvent: 'gap' }, { gapEvent: 'ignored', retry: null })
    expect(built).not.toBe(shared)
    // The options win over the defaults: the gap signal of a malformed position is named 'gap'.
    const s = new MemorySink()
    built.subscribe('s', s, { lastEventId: null })
    expect(s.parse().events.map((e) => e.event)).toEqual(['gap'])
    await Promise.all([shared.close(), built.close()])
  })

  it('refuses a hub together with hub options, naming the ones that would be ignored', async () => {
    const shared = createHub()
    try {
      hubFromOptions({ hub: shared, history: { maxEvents: 5 }, retry: undefined as never })
      expect.unreachable()
    } catch (error) {
      expect(error).toBeInstanceOf(RewindError)
      expect(error).toMatchObject({ code: 'ERR_INVALID_ARGUMENT', field: 'hub' })
      expect((error as Error).message).toContain('history')
      expect((error as Error).message).not.toContain('retry')
    }
    expect(() => hubFromOptions({ hub: {} as never })).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT' }),
    )
    await shared.close()
  })
})
