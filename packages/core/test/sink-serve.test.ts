/**
 * `serveSink` on its own, on an in-memory sink: what the Fetch adapter builds its `Response` from.
 * A stream's answer comes when its head is due, a client that left already still gets one (with a
 * body that has ended), an iterable is served as such, and `finish` ends a stream with its `retry:`
 * hint and the reason `end`. The Fetch adapter's tests reach the same code through real requests.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { createHub } from '../src/create-hub.js'
import type { Hub } from '../src/hub.js'
import type { HubOptions } from '../src/hub-options.js'
import type { MemoryStore } from '../src/memory-store.js'
import { serveSink } from '../src/sink-serve.js'
import { flushTurn, MemorySink } from './helpers/memory-sink.js'
import { unreadableResponses } from './helpers/unreadable-responses.js'

const hubs: Hub<string>[] = []
function hub(options: HubOptions & { store?: MemoryStore } = {}): Hub<string> {
  const created = createHub({ heartbeatInterval: 0, ...options })
  hubs.push(created)
  return created
}
afterEach(async () => {
  await Promise.all(hubs.splice(0).map((h) => h.close()))
})

describe('serveSink', () => {
  it('answers 200 with the stream from the client position, head first', async () => {
    const h = hub()
    h.publish('news', { data: 'one' })
    h.publish('news', { data: 'two' })
    const sink = new MemorySink()
    const answer = await serveSink(h, sink, 'news', { lastEventId: undefined })
    expect(answer.status).toBe(200)
    if (answer.status !== 200) return
    expect(answer.subscription.closed).toBe(false)
    h.publish('news', { data: 'three' })
    await flushTurn()
    expect(sink.parse().events.map((e) => e.data)).toEqual(['three'])
  })

  it('still answers when the client left before the head was due, with a body that has ended', async () => {
    const h = hub()
    const sink = new MemorySink()
    sink.destroy()
    const answer = await serveSink(h, sink, 'news', { lastEventId: undefined })
    expect(answer.status).toBe(200)
    if (answer.status !== 200) return
    expect(answer.subscription.closed).toBe(true)
    // Nothing to end: `finish` on a stream that never started does nothing, and does not throw.
    answer.finish(100)
    expect(sink.written).toEqual([])
  })

  it('serves an async iterable as its events, not as a stream name', async () => {
    const h = hub()
    async function* words() {
      yield { data: 'a' }
      yield { event: 'word', data: 'b' }
    }
    const sink = new MemorySink()
    const answer = await serveSink(h, sink, words(), { lastEventId: undefined })
    expect(answer.status).toBe(200)
    for (let i = 0; i < 20 && !sink.ended; i++) await flushTurn()
    expect(sink.parse().events.map((e) => [e.event, e.data])).toEqual([
      [undefined, 'a'],
      ['word', 'b'],
    ])
  })

  it('finish ends the stream with its retry hint, told as an end to onDisconnect', async () => {
    const disconnects: Parameters<NonNullable<HubOptions['onDisconnect']>>[0][] = []
    const h = hub({ onDisconnect: (info) => disconnects.push(info) })
    const sink = new MemorySink()
    const answer = await serveSink(h, sink, 'news', { lastEventId: undefined })
    if (answer.status !== 200) throw new Error(`expected 200, got ${answer.status}`)
    answer.finish(250)
    expect(answer.subscription.closed).toBe(true)
    expect(sink.ended).toBe(true)
    // The head's default hint first, then the one `finish` gave.
    expect(sink.parse().retries).toEqual([3000, 250])
    expect(disconnects).toEqual([{ stream: 'news', reason: 'end' }])
    // Once ended, finishing again writes nothing more.
    answer.finish(500)
    expect(sink.parse().retries).toEqual([3000, 250])
  })

  it('refuses a bad source before anything is written, saying what a source is', async () => {
    const h = hub()
    const sink = new MemorySink()
    const refusal = (source: unknown) => {
      try {
        void serveSink(h, sink, source as string, { lastEventId: undefined })
      } catch (error) {
        const e = error as { code?: string; field?: string; message: string }
        return { code: e.code, field: e.field, message: e.message }
      }
      return undefined
    }
    expect(refusal({ response: 42 })).toEqual({
      code: 'ERR_INVALID_ARGUMENT',
      field: 'response',
      message: 'a response source is { response: id } with a string id',
    })
    expect(refusal(42)).toEqual({
      code: 'ERR_INVALID_ARGUMENT',
      field: 'source',
      message: 'the source of an event stream must be a stream name, { response: id } or an async iterable',
    })
    expect(refusal('rewind:response:x')?.code).toBe('ERR_INVALID_STREAM')
    expect(refusal('')?.code).toBe('ERR_INVALID_STREAM')
    expect(sink.written).toEqual([])
  })

  it('answers 404 for an unknown response', async () => {
    const h = hub()
    const unknown = await serveSink(h, new MemorySink(), { response: 'nope' }, { lastEventId: undefined })
    expect(unknown.status).toBe(404)
  })

  it('answers 503 and reports the error when the store cannot say what a response is', async () => {
    const errors: unknown[] = []
    const { store, failure } = unreadableResponses()
    const h = hub({ store, onError: (error) => errors.push(error) })
    const answer = await serveSink(h, new MemorySink(), { response: 'r1' }, { lastEventId: undefined })
    expect(answer).toEqual({ status: 503, body: expect.stringContaining('"error"') })
    expect(errors).toEqual([failure])
  })
})
