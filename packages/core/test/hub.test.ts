import { describe, expect, it, vi } from 'vitest'
import { RewindError } from '../src/errors.js'
import { createMemoryStore } from '../src/memory-store.js'
import type { CloseReason } from '../src/types.js'
import { caught, cleanUpAfterEach, events, gaps, hub, publishAll, sink } from './helpers/hubs.js'
import { flushTurn, lastEventIdOf, MemorySink } from './helpers/memory-sink.js'

cleanUpAfterEach()

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
      const store = createMemoryStore()
      const h = hub({ store })
      const s = sink()
      h.publish('s', { data: 'before' })
      h.subscribe('s', s)
      const error = caught(() => h.publish('s', { event: name, data: 'evil' }))
      expect(error.code).toBe('ERR_INVALID_FIELD')
      expect(error.field).toBe('event')
      expect(store.size('s')).toBe(1)
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
    const store = createMemoryStore()
    const h = hub({ store })
    for (const data of [cyclic, 10n, undefined, () => 1]) {
      expect(caught(() => h.publish('s', { data })).code).toBe('ERR_SERIALIZE')
    }
    const custom = hub({ serialize: () => 42 as unknown as string })
    expect(caught(() => custom.publish('s', { data: {} })).code).toBe('ERR_SERIALIZE')
    // Strings bypass the serializer.
    expect(() => custom.publish('s', { data: 'ok' })).not.toThrow()
    expect(store.size('s')).toBe(0)
  })

  it('refuses data larger than maxEventBytes, counted in UTF-8 bytes of the serialized data', () => {
    const store = createMemoryStore()
    const h = hub({ store, maxEventBytes: 10 })
    expect(() => h.publish('s', { data: 'x'.repeat(10) })).not.toThrow()
    expect(caught(() => h.publish('s', { data: 'x'.repeat(11) })).code).toBe('ERR_EVENT_TOO_LARGE')
    expect(() => h.publish('s', { data: 'é'.repeat(5) })).not.toThrow()
    // Six characters, twelve bytes.
    expect(caught(() => h.publish('s', { data: 'é'.repeat(6) })).code).toBe('ERR_EVENT_TOO_LARGE')
    // '{"a":"xxxxx"}' is 13 bytes once serialized.
    expect(caught(() => h.publish('s', { data: { a: 'xxxxx' } })).code).toBe('ERR_EVENT_TOO_LARGE')
    expect(store.size('s')).toBe(2)
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

  // A filtered subscriber is cut off the same way: its filter does not hide its backlog.
  it.each([
    ['', undefined],
    [' (filtered)', () => true],
  ] as const)(
    'disconnects a subscriber whose unsent bytes pass maxQueueBytes, and only that one%s',
    async (_, filter) => {
      const onDisconnect = vi.fn()
      const h = hub({ maxQueueBytes: 1024, maxEventBytes: 512, onDisconnect })
      const slow = sink({ full: true })
      const fast = sink()
      const subscription = h.subscribe('s', slow, filter === undefined ? {} : { filter })
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
    },
  )

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
