import { createParser, type EventSourceMessage } from 'eventsource-parser'
import fc from 'fast-check'
import { afterEach, describe, expect, it } from 'vitest'
import { listen } from '../../../test/support/listen.js'
import { RawHttpClient } from '../../../test/support/raw-client.js'
import { thrownBy } from '../../../test/support/throws.js'
import { waitUntil } from '../../../test/support/wait.js'
import { RewindError } from '../src/errors.js'
import { encodeEvent } from '../src/frame.js'
import { createHub, type Hub } from '../src/index.js'
import { MemoryHistory } from '../src/memory-history.js'
import {
  createMemoryStore,
  MEMORY_STORE_DEFAULTS,
  type MemoryStore,
  type MemoryStoreOptions,
} from '../src/memory-store.js'
import { isAfter, type NewEvent, type Position, type ReadResult, type ResponseLimits } from '../src/store.js'
import { unicodeString } from './helpers/arbitraries.js'

function newEvent(data: string, event?: string): NewEvent {
  return { event, data, value: data }
}

function parseFrame(frame: Buffer): EventSourceMessage[] {
  const events: EventSourceMessage[] = []
  createParser({ onEvent: (event) => events.push(event) }).feed(frame.toString('utf8'))
  return events
}

const responseLimits: ResponseLimits = {
  maxEvents: 100,
  maxBytes: 1 << 20,
  maxLifetime: 60_000,
  ttl: 60_000,
  lease: 10_000,
}

function event(data: string): NewEvent {
  return { event: undefined, data, value: data }
}

function expectInvalidArgument(fn: () => unknown, field: string): void {
  const caught = thrownBy(fn)
  expect(caught).toBeInstanceOf(RewindError)
  expect((caught as RewindError).code).toBe('ERR_INVALID_ARGUMENT')
  expect((caught as RewindError).field).toBe(field)
}

interface ModelEvent {
  id: string
  event: string | undefined
  data: string
  at: number
  bytes: number
}

/**
 * What a bounded history must hold: every event ever appended, and the index of the oldest retained
 * one. Bounds only ever evict from the old end, so the retained events are always a suffix.
 */
class Model {
  readonly all: ModelEvent[] = []
  oldest = 0

  constructor(
    private readonly bounds: { maxEvents: number; maxBytes: number; maxAge: number },
    private readonly clock: () => number,
  ) {}

  append(event: ModelEvent): void {
    this.all.push(event)
    while (
      this.all.length - this.oldest > this.bounds.maxEvents ||
      this.retainedBytes() > this.bounds.maxBytes
    ) {
      this.oldest++
    }
    this.expire()
  }

  expire(): void {
    const now = this.clock()
    while (this.oldest < this.all.length && now - this.all[this.oldest]!.at > this.bounds.maxAge)
      this.oldest++
  }

  retainedBytes(): number {
    let bytes = 0
    for (let i = this.oldest; i < this.all.length; i++) bytes += this.all[i]!.bytes
    return bytes
  }
}

type Target =
  | { kind: 'index'; pick: number }
  | { kind: 'null' }
  | { kind: 'undefined' }
  | { kind: 'beforeFirst' }
  | { kind: 'future'; ahead: number }
  | { kind: 'garbage'; text: string }
  | { kind: 'foreign' }

type Op =
  | { op: 'append'; event: string | undefined; data: string }
  | { op: 'advance'; ms: number }
  | { op: 'read'; target: Target; limit: number }
  | { op: 'readAll'; target: Target; limit: number }

const target: fc.Arbitrary<Target> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ kind: fc.constant('index' as const), pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'null' as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'undefined' as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'beforeFirst' as const }) },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant('future' as const), ahead: fc.integer({ min: 1, max: 1e6 }) }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('garbage' as const),
      text: fc.oneof(
        unicodeString({ maxLength: 20 }),
        fc.constantFrom('', '-', '1', '-1', 'abc-', 'ABC-1', '42', ' ', '0-0'),
      ),
    }),
  },
  { weight: 1, arbitrary: fc.constant({ kind: 'foreign' as const }) },
)

const op: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.record({
      op: fc.constant('append' as const),
      event: fc.option(fc.constantFrom('tick', 'price', 'é'), { nil: undefined }),
      data: unicodeString({ maxLength: 60 }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ op: fc.constant('advance' as const), ms: fc.integer({ min: 0, max: 40 }) }),
  },
  {
    weight: 3,
    arbitrary: fc.record({ op: fc.constant('read' as const), target, limit: fc.integer({ min: 0, max: 8 }) }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      op: fc.constant('readAll' as const),
      target,
      limit: fc.integer({ min: 1, max: 5 }),
    }),
  },
)

const bounds = fc.record({
  // Above 16 the ring buffer has to grow (and wrap) before it evicts.
  maxEvents: fc.oneof(fc.integer({ min: 1, max: 12 }), fc.integer({ min: 15, max: 30 })),
  maxBytes: fc.oneof(fc.constant(Number.POSITIVE_INFINITY), fc.integer({ min: 20, max: 600 })),
  maxAge: fc.oneof(fc.constant(Number.POSITIVE_INFINITY), fc.integer({ min: 1, max: 100 })),
})

/** Runs `ops` against a MemoryHistory and the model, checking every read against the model. */
function runHistory(
  options: { maxEvents: number; maxBytes: number; maxAge: number },
  ops: readonly Op[],
): void {
  let now = 1_000_000
  const clock = () => now
  const history = new MemoryHistory({ ...options, now: clock })
  const model = new Model(options, clock)
  const foreign = new MemoryHistory()
  const foreignId = foreign.append(newEvent('x')).id
  expect(history.epoch).not.toBe(foreign.epoch)
  // The position a fresh reader of the empty history is given: "before the first event".
  const beforeFirst = history.read(undefined, 10)
  expect(beforeFirst.events).toEqual([])
  expect(beforeFirst.done).toBe(true)
  expect(beforeFirst.gap).toBeUndefined()
  const ids = new Map<string, number>()
  let lastStored: Position = beforeFirst.position

  const positionId = (index: number): string =>
    index === -1 ? beforeFirst.position.id : model.all[index]!.id

  const resolve = (t: Target): { after: string | null | undefined; index?: number; gap?: string } => {
    const n = model.all.length
    switch (t.kind) {
      case 'index': {
        if (n === 0) return { after: beforeFirst.position.id, index: -1 }
        const index = t.pick % n
        return { after: model.all[index]!.id, index }
      }
      case 'beforeFirst':
        return { after: beforeFirst.position.id, index: -1 }
      case 'null':
        return { after: null }
      case 'undefined':
        return { after: undefined }
      case 'future':
        return { after: `${history.epoch}-${n + t.ahead}`, gap: 'unknown' }
      case 'garbage':
        // Whether an id-shaped stranger ('0-0') reads as another epoch or as unknown is the store's call.
        return { after: ids.has(t.text) ? `${t.text}?` : t.text, gap: 'unknown|epoch' }
      case 'foreign':
        return { after: foreignId, gap: 'epoch' }
    }
  }

  /** The expected page after model index `from` (-1: before the first event). */
  const expectedPage = (from: number, limit: number) => {
    const end = Math.min(model.all.length, from + 1 + limit)
    const events = model.all.slice(from + 1, end)
    return {
      ids: events.map((e) => e.id),
      position: events.length > 0 ? events[events.length - 1]!.id : positionId(from),
      done: end >= model.all.length,
    }
  }

  const checkEvents = (result: ReadResult): void => {
    for (const event of result.events) {
      const expected = model.all[ids.get(event.id)!]!
      expect(event.event).toBe(expected.event)
      expect(event.data).toBe(expected.data)
      expect(event.frame.toString('utf8')).toBe(
        encodeEvent({ id: expected.id, event: expected.event, data: expected.data }),
      )
    }
    for (let i = 1; i < result.events.length; i++)
      expect(isAfter(result.events[i]!, result.events[i - 1]!)).toBe(true)
  }

  /** Checks one read and returns the model index it continues from. */
  const checkRead = (t: Target, limit: number, after: string | null | undefined, result: ReadResult) => {
    model.expire()
    const resolved = resolve(t)
    const n = model.all.length
    checkEvents(result)
    const got = result.events.map((e) => e.id)
    if (after === undefined) {
      expect(got).toEqual([])
      expect(result.gap).toBeUndefined()
      expect(result.done).toBe(true)
      expect(result.position.id).toBe(positionId(n - 1))
      return
    }
    const gapFrom = model.oldest - 1
    let expectedGap: string | undefined = resolved.gap
    let from: number
    // `null`, and any position that cannot be resolved, give no events and the position just before
    // the oldest retained event, from which the caller reads on.
    let pageLimit = limit
    if (after === null) {
      from = gapFrom
      pageLimit = 0
    } else if (resolved.index !== undefined) {
      // The position just before the oldest retained event is still exact: nothing after it is missing.
      if (resolved.index >= gapFrom) from = resolved.index
      else {
        from = gapFrom
        expectedGap = 'evicted'
      }
    } else from = gapFrom
    if (expectedGap !== undefined) pageLimit = 0
    const expected = expectedPage(from, pageLimit)
    if (expectedGap === 'unknown|epoch') expect(['unknown', 'epoch']).toContain(result.gap)
    else expect(result.gap).toBe(expectedGap)
    expect(got).toEqual(expected.ids)
    expect(result.done).toBe(expected.done)
    expect(result.position.id).toBe(expected.position)
    if (expectedGap !== undefined) {
      // The gap position fed back must resolve exactly: a client never gets the same gap twice.
      const again = history.read(positionId(gapFrom), limit)
      expect(again.gap).toBeUndefined()
      expect(again.events.map((e) => e.id)).toEqual(expectedPage(gapFrom, limit).ids)
    }
  }

  for (const step of ops) {
    if (step.op === 'append') {
      const stored = history.append(newEvent(step.data, step.event))
      expect(ids.has(stored.id)).toBe(false)
      expect(stored.id).toMatch(/^[\x21-\x7e]{1,128}$/)
      // Ids must order by the (major, minor) key, which is what subscribers compare.
      expect(isAfter(stored, lastStored)).toBe(true)
      expect(isAfter(lastStored, stored)).toBe(false)
      lastStored = stored
      ids.set(stored.id, model.all.length)
      model.append({ id: stored.id, event: step.event, data: step.data, at: now, bytes: stored.frame.length })
      expect(parseFrame(stored.frame)).toEqual([
        { id: stored.id, event: step.event, data: step.data.replace(/\r\n|\r/g, '\n') },
      ])
    } else if (step.op === 'advance') {
      now += step.ms
    } else if (step.op === 'read') {
      const { after } = resolve(step.target)
      checkRead(step.target, step.limit, after, history.read(after, step.limit))
    } else {
      // Page through to the end: the pages must join into exactly the retained events after the start.
      const { after } = resolve(step.target)
      const first = history.read(after, step.limit)
      checkRead(step.target, step.limit, after, first)
      const collected = first.events.map((e) => e.id)
      let result = first
      let pages = 0
      while (!result.done) {
        const position =
          result.events.length > 0 ? result.events[result.events.length - 1]!.id : result.position.id
        result = history.read(position, step.limit)
        expect(result.gap).toBeUndefined()
        expect(result.events.length).toBeGreaterThan(0)
        expect(result.events.length).toBeLessThanOrEqual(step.limit)
        collected.push(...result.events.map((e) => e.id))
        expect(++pages).toBeLessThanOrEqual(model.all.length)
      }
      if (after !== undefined && collected.length > 0) {
        const start = ids.get(collected[0]!)!
        expect(collected).toEqual(model.all.slice(start).map((e) => e.id))
      }
    }
    model.expire()
    // `size` applies maxAge first; `retainedBytes` is read after it so both see the same clock.
    expect(history.size).toBe(model.all.length - model.oldest)
    expect(history.retainedBytes).toBe(model.retainedBytes())
  }
}

describe('MemoryHistory against a model', () => {
  it('reads, pages, bounds and reports gaps exactly as the model says, under random operations', () => {
    fc.assert(
      fc.property(bounds, fc.array(op, { maxLength: 60, size: 'max' }), (options, ops) => {
        runHistory(options, ops)
      }),
      { numRuns: 100 },
    )
  })
})

describe('MemoryHistory', () => {
  it('starts a fresh reader at the newest event and then gives it only later events', () => {
    const history = new MemoryHistory()
    const a = history.append(newEvent('a'))
    const fresh = history.read(undefined, 100)
    expect(fresh.position.id).toBe(a.id)
    expect(fresh.events).toEqual([])
    const b = history.append(newEvent('b'))
    expect(history.read(fresh.position.id, 100).events.map((e) => e.id)).toEqual([b.id])
  })

  it('gives the position before the first event to a fresh reader of an empty history, which later resumes without loss', () => {
    const history = new MemoryHistory()
    const fresh = history.read(undefined, 100)
    const a = history.append(newEvent('a'))
    const resumed = history.read(fresh.position.id, 100)
    expect(resumed.gap).toBeUndefined()
    expect(resumed.events.map((e) => e.id)).toEqual([a.id])
    expect(isAfter(a, fresh.position)).toBe(true)
  })

  it('gives the position just before the oldest retained event for null, to read on from', () => {
    const history = new MemoryHistory({ maxEvents: 2 })
    const ids = ['a', 'b', 'c'].map((data) => history.append(newEvent(data)).id)
    const start = history.read(null, 10)
    expect(start.events).toEqual([])
    expect(start.gap).toBeUndefined()
    expect(start.position.id).toBe(ids[0])
    expect(start.done).toBe(false)
    const result = history.read(start.position.id, 10)
    expect(result.events.map((e) => e.data)).toEqual(['b', 'c'])
    expect(result.gap).toBeUndefined()
    expect(result.done).toBe(true)
  })

  it('reports an evicted position with the position just before the oldest retained event', () => {
    const history = new MemoryHistory({ maxEvents: 3 })
    const ids = ['0', '1', '2', '3', '4', '5'].map((data) => history.append(newEvent(data)).id)
    const result = history.read(ids[0], 10)
    expect(result.gap).toBe('evicted')
    expect(result.events).toEqual([])
    expect(result.position.id).toBe(ids[2])
    expect(result.done).toBe(false)
    // The gap position resolves without a gap, to exactly the retained events.
    const after = history.read(result.position.id, 10)
    expect(after.gap).toBeUndefined()
    expect(after.events.map((e) => e.data)).toEqual(['3', '4', '5'])
    expect(history.read(ids[1], 10).gap).toBe('evicted')
  })

  it('recognises ids of another history as epoch, and garbage or future ids as unknown', () => {
    const history = new MemoryHistory()
    const other = new MemoryHistory()
    const mine = history.append(newEvent('a'))
    const theirs = other.append(newEvent('a'))
    expect(mine.id).not.toBe(theirs.id)
    expect(history.read(theirs.id, 10).gap).toBe('epoch')
    expect(history.read('not an id', 10).gap).toBe('unknown')
    expect(history.read('', 10).gap).toBe('unknown')
    const next = history.append(newEvent('b'))
    // An id one past the newest is the id the next event will get: not issued yet, so unknown.
    const future = next.id.replace(/\d+$/, (seq) => String(Number(seq) + 1))
    expect(history.read(future, 10).gap).toBe('unknown')
    const third = history.append(newEvent('c'))
    expect(third.id).toBe(future)
    expect(history.read(future, 10).gap).toBeUndefined()
  })

  it('evicts by frame bytes, counting the whole encoded frame', () => {
    const first = new MemoryHistory().append(newEvent('xxxx'))
    const frameBytes = first.frame.length
    const history = new MemoryHistory({ maxBytes: frameBytes * 2 })
    history.append(newEvent('xxxx'))
    history.append(newEvent('xxxx'))
    expect(history.size).toBe(2)
    expect(history.retainedBytes).toBe(frameBytes * 2)
    history.append(newEvent('xxxx'))
    expect(history.size).toBe(2)
    // Multi-byte characters count as their UTF-8 bytes.
    history.append(newEvent('éééé'))
    expect(history.size).toBe(1)
  })

  it('keeps no event larger than maxBytes, yet still resolves its id', () => {
    const history = new MemoryHistory({ maxBytes: 10 })
    const big = history.append(newEvent('much longer than ten bytes'))
    expect(history.size).toBe(0)
    expect(history.retainedBytes).toBe(0)
    const read = history.read(big.id, 10)
    expect(read.gap).toBeUndefined()
    expect(read.events).toEqual([])
  })

  it('expires events older than maxAge by the injected clock, on read', () => {
    let now = 0
    const history = new MemoryHistory({ maxAge: 100, now: () => now })
    const a = history.append(newEvent('a'))
    now = 50
    history.append(newEvent('b'))
    now = 100
    expect(history.size).toBe(2)
    now = 101
    expect(history.read(history.read(null, 0).position.id, 10).events.map((e) => e.data)).toEqual(['b'])
    expect(history.read(a.id, 10).gap).toBeUndefined()
    now = 1000
    const read = history.read(a.id, 10)
    expect(read.events).toEqual([])
    // Everything expired: the oldest position is the newest event, and `a` is before it.
    expect(read.gap).toBe('evicted')
    expect(history.size).toBe(0)
  })

  it('rejects invalid bounds with ERR_INVALID_ARGUMENT naming the option', () => {
    for (const maxEvents of [0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, '10' as unknown as number]) {
      expectInvalidArgument(() => new MemoryHistory({ maxEvents }), 'maxEvents')
    }
    for (const maxBytes of [0, -1, Number.NaN, '10' as unknown as number]) {
      expectInvalidArgument(() => new MemoryHistory({ maxBytes }), 'maxBytes')
    }
    for (const maxAge of [0, -5, Number.NaN]) {
      expectInvalidArgument(() => new MemoryHistory({ maxAge }), 'maxAge')
    }
    expect(
      () => new MemoryHistory({ maxBytes: Number.POSITIVE_INFINITY, maxAge: Number.POSITIVE_INFINITY }),
    ).not.toThrow()
  })

  it('has the documented defaults', () => {
    expect(MEMORY_STORE_DEFAULTS.maxEvents).toBe(1000)
    expect(MEMORY_STORE_DEFAULTS.maxBytes).toBe(16 * 1024 * 1024)
    expect(MEMORY_STORE_DEFAULTS.maxStreams).toBe(10_000)
    const history = new MemoryHistory()
    for (let i = 0; i < 1001; i++) history.append(newEvent(String(i)))
    expect(history.size).toBe(1000)
    expect(history.read(history.read(null, 0).position.id, 1).events[0]?.data).toBe('1')
  })

  it('keeps every retained event readable after the ring grows and wraps around', () => {
    for (const maxEvents of [15, 16, 17, 31, 32, 33, 100]) {
      const history = new MemoryHistory({ maxEvents })
      const ids: string[] = []
      for (let i = 0; i < maxEvents * 3 + 7; i++) {
        ids.push(history.append(newEvent(String(i))).id)
        const retained = ids.slice(-maxEvents)
        // Reading after the position before the oldest retained event gives them all, in order.
        const from =
          ids.length > maxEvents ? ids[ids.length - maxEvents - 1] : history.read(null, 0).position.id
        const read = history.read(from, maxEvents + 1)
        expect(read.events.map((e) => e.id)).toEqual(retained)
        expect(read.events.map((e) => e.data)).toEqual(retained.map((id) => String(ids.indexOf(id))))
      }
      expect(history.size).toBe(maxEvents)
    }
  })

  it('reads the last event of a large history after the newest-but-one id', () => {
    // Behavioural stand-in for the O(k) claim: the read is located by sequence number, whatever the size.
    const history = new MemoryHistory({ maxEvents: 100_000 })
    let previous = ''
    let last = ''
    for (let i = 0; i < 100_000; i++) {
      previous = last
      last = history.append(newEvent(String(i))).id
    }
    const read = history.read(previous, 10)
    expect(read.events.map((e) => e.id)).toEqual([last])
    expect(read.done).toBe(true)
  })
})

describe('MemoryStore', () => {
  function store(options: MemoryStoreOptions = {}): MemoryStore {
    return createMemoryStore(options)
  }

  it('is synchronous and keeps a separate history per stream', () => {
    const s = store()
    expect(s.synchronous).toBe(true)
    const a = s.append('a', newEvent('1'))
    const b = s.append('b', newEvent('2'))
    expect(s.read('a', s.read('a', null, 0).position.id, 10).events.map((e) => e.data)).toEqual(['1'])
    expect(s.read('b', s.read('b', null, 0).position.id, 10).events.map((e) => e.data)).toEqual(['2'])
    // An id of another stream is from another history: an epoch gap, never a wrong match.
    expect(s.read('a', b.id, 10).gap).toBe('epoch')
    expect(s.read('b', a.id, 10).gap).toBe('epoch')
    expect(s.size('a')).toBe(1)
    expect(s.size('nothing')).toBe(0)
  })

  it('passes the history bounds to every stream', () => {
    const s = store({ maxEvents: 2 })
    for (const data of ['1', '2', '3']) s.append('a', newEvent(data))
    expect(s.size('a')).toBe(2)
    expect(s.history('a')?.size).toBe(2)
  })

  it('drops the least recently published unwatched history past maxStreams', () => {
    const s = store({ maxStreams: 2 })
    const a = s.append('a', newEvent('1'))
    s.append('b', newEvent('1'))
    s.append('a', newEvent('2'))
    s.append('c', newEvent('1'))
    expect(s.streams).toBe(2)
    expect(s.history('b')).toBeUndefined()
    expect(s.history('a')).toBeDefined()
    expect(s.history('c')).toBeDefined()
    expect(s.read('a', a.id, 10).gap).toBeUndefined()
  })

  it('gives resuming clients of a dropped history an epoch gap', () => {
    const s = store({ maxStreams: 1 })
    const a = s.append('a', newEvent('1'))
    s.append('b', newEvent('1'))
    expect(s.history('a')).toBeUndefined()
    s.watch('a')
    expect(s.read('a', a.id, 10).gap).toBe('epoch')
  })

  it('keeps watched histories past maxStreams and drops them once unwatched and least recent', () => {
    const s = store({ maxStreams: 2 })
    s.watch('a')
    s.append('a', newEvent('1'))
    s.append('b', newEvent('1'))
    s.append('c', newEvent('1'))
    expect(s.history('a')).toBeDefined()
    expect(s.history('b')).toBeUndefined()
    s.watch('c')
    s.append('d', newEvent('1'))
    // Everything else is watched: the cap yields rather than drop a watched history.
    expect(s.history('a')).toBeDefined()
    expect(s.history('c')).toBeDefined()
    expect(s.history('d')).toBeDefined()
    s.unwatch('a')
    s.append('e', newEvent('1'))
    expect(s.history('a')).toBeUndefined()
    expect(s.history('c')).toBeDefined()
  })

  it('never drops a watched history under random publishing, and stays within the cap otherwise', () => {
    const action = fc.oneof(
      fc.record({ op: fc.constant('append' as const), stream: fc.integer({ min: 0, max: 7 }) }),
      fc.record({ op: fc.constant('watch' as const), stream: fc.integer({ min: 0, max: 7 }) }),
      fc.record({ op: fc.constant('unwatch' as const), stream: fc.integer({ min: 0, max: 7 }) }),
    )
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 4 }),
        fc.array(action, { maxLength: 60, size: 'max' }),
        (maxStreams, actions) => {
          const s = store({ maxStreams })
          const watched = new Set<string>()
          const epochs = new Map<string, string>()
          for (const { op, stream } of actions) {
            const name = `s${stream}`
            if (op === 'append') {
              const created = s.history(name) === undefined
              s.append(name, newEvent('x'))
              // The cap is applied when a history is created: only watched ones and the new one may exceed it.
              if (created) expect(s.streams).toBeLessThanOrEqual(Math.max(maxStreams, watched.size + 1))
            } else if (op === 'watch') {
              s.watch(name)
              watched.add(name)
            } else {
              s.unwatch(name)
              watched.delete(name)
            }
            for (const w of watched) {
              const history = s.history(w)
              expect(history).toBeDefined()
              // A watched history is never replaced behind its subscribers' back.
              const epoch = epochs.get(w)
              if (epoch !== undefined) expect(history!.epoch).toBe(epoch)
              epochs.set(w, history!.epoch)
            }
            for (const name of epochs.keys()) if (!watched.has(name)) epochs.delete(name)
          }
        },
      ),
    )
  })

  it('rejects invalid options with ERR_INVALID_ARGUMENT when created, not at the first publish', () => {
    for (const maxStreams of [0, -1, 2.5, Number.NaN]) {
      expectInvalidArgument(() => createMemoryStore({ maxStreams }), 'maxStreams')
    }
    expectInvalidArgument(() => createMemoryStore({ maxEvents: 0 }), 'maxEvents')
    expectInvalidArgument(() => createMemoryStore({ maxBytes: -1 }), 'maxBytes')
    expectInvalidArgument(() => createMemoryStore({ maxAge: 0 }), 'maxAge')
    expectInvalidArgument(() => createMemoryStore({ maxResponses: 0 }), 'maxResponses')
  })

  it('keeps maxStreams unpublished streams besides the watched ones, dropping the least recent unwatched', () => {
    const s = store({ maxStreams: 2 })
    s.watch('w') // stays watched throughout
    for (const name of ['a', 'b', 'c']) {
      s.watch(name)
      s.unwatch(name)
    }
    // Four unpublished streams, two of them watched (w, c) when the last came: all kept.
    expect(['w', 'a', 'b', 'c'].map((name) => s.history(name) !== undefined)).toEqual([
      true,
      true,
      true,
      true,
    ])
    s.watch('d')
    // Five, two of them watched (w, d): only the least recent unwatched one, a, goes.
    expect(['w', 'a'].map((name) => s.history(name) !== undefined)).toEqual([true, false])
    expect(['w', 'b', 'c', 'd'].map((name) => s.history(name) !== undefined)).toEqual([
      true,
      true,
      true,
      true,
    ])
  })

  it('does not count a published or response stream that is watched among the unpublished ones', () => {
    const s = store({ maxStreams: 1 })
    s.append('p', event('x'))
    s.responses.create('r', 'resp', responseLimits)
    s.watch('e')
    s.watch('p')
    s.watch('resp')
    for (const name of ['e', 'p', 'resp']) s.unwatch(name)
    // Only e is unpublished: watching f makes two, within maxStreams (1) + watched (f), so e stays.
    s.watch('f')
    expect(s.history('e')).toBeDefined()
    expect(s.history('f')).toBeDefined()
    s.close()
  })

  it('forgets its responses when closed, and their expiry timers with them', () => {
    const s = store()
    s.responses.create('r', 'resp', responseLimits)
    s.responses.end('r', 'resp', event('end'), 'done', responseLimits)
    s.close()
    expect(s.responses.size).toBe(0)
    expect(s.history('resp')).toBeUndefined()
  })
})

describe('MemoryStore and its hub', () => {
  const cleanups: (() => unknown)[] = []
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
  })
  /** Closes `hub` after the test (a hub the store should have refused would otherwise stay open). */
  function track<H extends { close(): Promise<void> }>(hub: H): H {
    cleanups.push(() => hub.close())
    return hub
  }

  it("refuses a second hub: it would never see the first one's events, so say what to do instead", () => {
    const store = createMemoryStore()
    const first = createHub({ store, heartbeatInterval: 0 })
    cleanups.push(() => first.close())
    const caught = thrownBy(() => track(createHub({ store, heartbeatInterval: 0 })))
    expect(caught).toBeInstanceOf(RewindError)
    expect(caught).toMatchObject({ code: 'ERR_INVALID_ARGUMENT', field: 'store' })
    const message = (caught as RewindError).message
    expect(message).toContain('one hub per store')
    expect(message).toContain('share that hub')
    expect(message).toContain('@rewind/redis')
    // The first hub keeps working on it.
    expect(() => first.publish('s', { data: 'still here' })).not.toThrow()
  })

  it('is free for another hub once the first has closed, which takes it over with its history', async () => {
    const store = createMemoryStore()
    const first = createHub({ store, heartbeatInterval: 0, retry: null }) as Hub<string>
    const seen = first.publish('s', { data: 'before' })
    first.publish('s', { data: 'missed' })
    const closing = first.close()
    // Not while it is still closing: both would use the store at once.
    expect(() => track(createHub({ store }))).toThrow(expect.objectContaining({ field: 'store' }))
    await closing
    const second = createHub({ store, heartbeatInterval: 0, retry: null }) as Hub<string>
    cleanups.push(() => second.close())
    second.publish('s', { data: 'after' })
    const server = await listen((req, res) => second.serve(req, res, 's'))
    cleanups.push(() => server.close())
    const client = new RawHttpClient(server.port, { path: '/', headers: [`last-event-id: ${seen}`] })
    cleanups.push(() => client.destroy())
    await client.until(() => client.events.length === 2)
    expect(client.events.map((event) => [event.event, event.data])).toEqual([
      [undefined, 'missed'],
      [undefined, 'after'],
    ])
  })

  it("is released by a hub that made it too, and by no other hub's close", async () => {
    const made = createHub({ heartbeatInterval: 0 })
    // The store the hub made is private to it: reach it as the hub does, to share it with another.
    const store = (made as unknown as { store: MemoryStore }).store
    const other = createHub({ heartbeatInterval: 0 })
    await other.close()
    expect(() => track(createHub({ store }))).toThrow(expect.objectContaining({ field: 'store' }))
    await made.close()
    const next = createHub({ store, heartbeatInterval: 0 })
    await next.close()
  })
})

describe('MemoryStore over HTTP', () => {
  const cleanups: (() => unknown)[] = []
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
  })

  it('keeps published rooms when more than maxStreams clients subscribe to made-up names', async () => {
    const maxStreams = 4
    const hub = createHub({ heartbeatInterval: 0, retry: null, history: { maxStreams } }) as Hub<string>
    cleanups.push(() => hub.close())
    // Each request follows the stream named by its path.
    const server = await listen((req, res) => hub.serve(req, res, decodeURIComponent(req.url!.slice(1))))
    cleanups.push(() => server.close())
    const rooms = ['lobby', 'kitchen', 'garden']
    const firsts = rooms.map((room) => hub.publish(room, { data: `${room} 1` }))
    for (const room of rooms) hub.publish(room, { data: `${room} 2` })

    const strangers: RawHttpClient[] = []
    for (let i = 0; i < maxStreams * 3; i++) {
      const client = new RawHttpClient(server.port, { transcript: true, path: `/made-up-${i}` })
      cleanups.push(() => client.destroy())
      strangers.push(client)
    }
    await waitUntil(
      () => hub.stats().subscribers === strangers.length,
      'hub.stats().subscribers === strangers.length',
      5000,
    )
    // Each learns the position of its empty stream (an id-only frame).
    for (const client of strangers) await client.until(() => client.transcript().includes('id: '))
    for (const client of strangers) client.destroy()
    await waitUntil(() => hub.stats().subscribers === 0, 'hub.stats().subscribers === 0', 5000)

    // Every room resumes exactly: its second event, no gap signal.
    for (const [i, room] of rooms.entries()) {
      const client = new RawHttpClient(server.port, {
        path: `/${room}`,
        headers: [`last-event-id: ${firsts[i]!}`],
      })
      cleanups.push(() => client.destroy())
      await client.until(() => client.events.length === 1)
      await new Promise((resolve) => setTimeout(resolve, 20))
      expect(client.events.map((event) => [event.event, event.data])).toEqual([[undefined, `${room} 2`]])
    }
  })

  it('lets a client that subscribed to an empty stream resume exactly once events arrive', async () => {
    const hub = createHub({ heartbeatInterval: 0, retry: null }) as Hub<string>
    cleanups.push(() => hub.close())
    const server = await listen((req, res) => hub.serve(req, res, 'quiet'))
    cleanups.push(() => server.close())
    const early = new RawHttpClient(server.port, { transcript: true, path: '/' })
    cleanups.push(() => early.destroy())
    // A fresh client learns the position of the empty stream (an id-only frame).
    await early.until(() => /id: (\S+)\n\n/.test(early.transcript()))
    const position = /id: (\S+)\n\n/.exec(early.transcript())![1]!
    // Another client keeps the stream watched meanwhile.
    const keeper = new RawHttpClient(server.port, { transcript: true, path: '/' })
    cleanups.push(() => keeper.destroy())
    await keeper.until(() => keeper.transcript().includes('id: '))
    early.destroy()
    hub.publish('quiet', { data: 'first' })
    const resumed = new RawHttpClient(server.port, { path: '/', headers: [`last-event-id: ${position}`] })
    cleanups.push(() => resumed.destroy())
    await resumed.until(() => resumed.events.length === 1)
    expect(resumed.events.map((event) => [event.event, event.data])).toEqual([[undefined, 'first']])
  })
})
