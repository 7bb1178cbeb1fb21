/** The shared heartbeat timer, under fake timers: when comments go out, and that nothing is left behind. */
import { Writable } from 'node:stream'
import { createParser } from 'eventsource-parser'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { createHub } from '../src/index.js'
import { cleanUpAfterEach, hub as makeHub, publishAll, sink } from './helpers/hubs.js'
import { flushTurn, lastEventIdOf, parseStream } from './helpers/memory-sink.js'

/** A real Writable that keeps what it is given, parsed as SSE. */
function recordingSink() {
  const record = { comments: 0, ids: [] as (string | undefined)[], text: '' }
  const parser = createParser({
    onEvent: (event) => record.ids.push(event.id),
    onComment: () => {
      record.comments++
    },
  })
  const sink = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      record.text += chunk.toString()
      parser.feed(chunk.toString())
      callback()
    },
  })
  return { sink, record }
}

beforeEach(() => {
  vi.useFakeTimers({
    toFake: ['setInterval', 'clearInterval', 'setTimeout', 'clearTimeout', 'setImmediate', 'clearImmediate'],
  })
})
afterEach(() => {
  vi.useRealTimers()
})
cleanUpAfterEach()

describe('heartbeats', () => {
  it('sends a comment at each tick to connections that were silent since the previous one', async () => {
    const hub = createHub({ heartbeatInterval: 15_000 })
    const { sink, record } = recordingSink()
    hub.subscribe('news', sink)
    /** The comments sent by the time `ms` more have passed. */
    const commentsAfter = async (ms: number): Promise<number> => {
      await vi.advanceTimersByTimeAsync(ms)
      return record.comments
    }
    // Opening wrote the retry hint and the position, so the first tick finds the stream busy.
    expect(await commentsAfter(15_000)).toBe(0)
    expect(await commentsAfter(14_999)).toBe(0)
    expect(await commentsAfter(1)).toBe(1)
    // Traffic in every period postpones heartbeats.
    for (let i = 0; i < 4; i++) {
      await vi.advanceTimersByTimeAsync(10_000)
      hub.publish('news', { data: String(i) })
      await vi.advanceTimersByTimeAsync(5_000)
    }
    expect(record.comments).toBe(1)
    // Idle again since the last event (85 s), whose tick (90 s) found it busy: one comment per
    // period from 105 s on.
    expect(await commentsAfter(14_999)).toBe(1)
    expect(await commentsAfter(30_001)).toBe(4)
    // A heartbeat is a comment only: it must never move the client's resume point.
    const heartbeatFrames = record.text.split('\n\n').filter((frame) => frame.startsWith(':'))
    expect(heartbeatFrames).toHaveLength(4)
    for (const frame of heartbeatFrames)
      expect(frame.split('\n').every((line) => line.startsWith(':'))).toBe(true)
    expect(record.ids).toHaveLength(4)
    await hub.close()
  })

  it('uses one timer for every connection, and none once they are gone', async () => {
    const hub = createHub({ heartbeatInterval: 1000 })
    expect(vi.getTimerCount()).toBe(0)
    const subscriptions = Array.from({ length: 50 }, (_, i) =>
      hub.subscribe(`s${i % 5}`, recordingSink().sink),
    )
    expect(vi.getTimerCount()).toBe(1)
    await vi.advanceTimersByTimeAsync(1000)
    for (const subscription of subscriptions) subscription.close()
    expect(hub.stats().connections).toBe(0)
    expect(vi.getTimerCount()).toBe(0)
    hub.subscribe('again', recordingSink().sink)
    expect(vi.getTimerCount()).toBe(1)
    await hub.close()
    expect(vi.getTimerCount()).toBe(0)
  })

  it('can be turned off', async () => {
    const hub = createHub({ heartbeatInterval: 0 })
    const { sink, record } = recordingSink()
    hub.subscribe('news', sink)
    expect(vi.getTimerCount()).toBe(0)
    await vi.advanceTimersByTimeAsync(60_000)
    expect(record.comments).toBe(0)
    await hub.close()
  })

  it('leaves no timer after close(), even with events pending and streams open', async () => {
    const hub = createHub()
    for (let i = 0; i < 10; i++) hub.subscribe('news', recordingSink().sink)
    hub.publish('news', { data: 'pending' })
    expect(vi.getTimerCount()).toBeGreaterThan(0)
    await hub.close()
    expect(vi.getTimerCount()).toBe(0)
    expect(hub.stats()).toMatchObject({ connections: 0, subscribers: 0, streams: 0 })
  })
})

describe('heartbeat of subscribers', () => {
  // These tests fake only the interval timer: end-of-turn batching must run for real.
  beforeEach(() => {
    vi.useRealTimers()
  })

  it('writes a comment to silent connections only, and never moves the resume point', async () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] })
    const h = makeHub({ heartbeatInterval: 1000 })
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
