/**
 * What the hub turns away, and how: a bad call throws a `RewindError` that names the argument at
 * fault (or, for `publish` on an asynchronous store, rejects with it), and a client that cannot be
 * served (it left already, or a limit is reached) gets a closed subscription whose source is never
 * run.
 */
import { describe, expect, it } from 'vitest'
import { serveSink } from '../src/adapter.js'
import { RewindError } from '../src/errors.js'
import { serveHostOf } from '../src/hub.js'
import type { Hub } from '../src/index.js'
import type { StreamItem } from '../src/iterable.js'
import { caught, cleanUpAfterEach, hub, sink } from './helpers/hubs.js'
import { ManualStore } from './helpers/manual-store.js'

cleanUpAfterEach()

const RESPONSE_STREAM = 'rewind:response:abc'

/** An async iterable that records whether it was ever pulled or stopped. */
function recordingIterable() {
  const record = { pulled: 0, returned: false }
  const iterable: AsyncIterable<StreamItem> = {
    [Symbol.asyncIterator]: () => ({
      next: () => {
        record.pulled++
        return new Promise<IteratorResult<StreamItem>>(() => {})
      },
      return: () => {
        record.returned = true
        return Promise.resolve({ done: true, value: undefined })
      },
    }),
  }
  return { iterable, record }
}

describe('serving on a sink of something that is not a hub', () => {
  it('is refused with ERR_INVALID_ARGUMENT naming the hub', () => {
    const notAHub = {} as Hub
    for (const call of [
      () => serveHostOf(notAHub),
      () => serveSink(notAHub, sink(), 'news', { lastEventId: undefined }),
    ]) {
      const error = caught(call)
      expect(error).toMatchObject({
        code: 'ERR_INVALID_ARGUMENT',
        field: 'hub',
        message: 'hub must be a hub made by createHub()',
      })
    }
  })

  it('is served for a hub made by createHub()', () => {
    expect(serveHostOf(hub())).toBeDefined()
  })
})

describe("a response's stream name", () => {
  it('is refused by publish with a rejected promise on an asynchronous store, not a throw', async () => {
    const h = hub({ store: new ManualStore() }) as unknown as Hub<Promise<string>>
    let published: Promise<string> | undefined
    expect(() => {
      published = h.publish(RESPONSE_STREAM, { data: 'x' })
    }).not.toThrow()
    const error = await published!.then(
      () => undefined,
      (e: unknown) => e,
    )
    expect(error).toBeInstanceOf(RewindError)
    expect(error).toMatchObject({ code: 'ERR_INVALID_STREAM', field: 'stream' })
  })

  it('is refused by publish with a throw on a synchronous store', () => {
    expect(caught(() => hub().publish(RESPONSE_STREAM, { data: 'x' })).code).toBe('ERR_INVALID_STREAM')
  })

  it('is refused by subscribe, which leaves the sink alone', () => {
    const h = hub()
    const s = sink()
    const error = caught(() => h.subscribe(RESPONSE_STREAM, s))
    expect(error).toMatchObject({ code: 'ERR_INVALID_STREAM', field: 'stream' })
    expect(s.written).toEqual([])
    expect(h.stats().connections).toBe(0)
  })
})

describe('subscribe options', () => {
  it('refuses a filter that is not a function, naming filter', () => {
    const error = caught(() => hub().subscribe('s', sink(), { filter: 'all' as never }))
    expect(error).toMatchObject({ code: 'ERR_INVALID_ARGUMENT', field: 'filter' })
    expect(error.message).toMatch(/^filter must be a function/)
  })

  it('refuses an unknown gapPolicy, naming gapPolicy', () => {
    const error = caught(() => hub().subscribe('s', sink(), { gapPolicy: 'skip' as never }))
    expect(error).toMatchObject({ code: 'ERR_INVALID_ARGUMENT', field: 'gapPolicy' })
    expect(error.message).toMatch(/^gapPolicy must be/)
  })
})

describe('a sink whose client has left already', () => {
  it('gets a closed subscription to the stream, done with client', async () => {
    const h = hub()
    const s = sink()
    s.destroy()
    const subscription = h.subscribe('s', s)
    expect(subscription.closed).toBe(true)
    expect(await subscription.done).toBe('client')
    expect(h.stats()).toMatchObject({ connections: 0, streams: 0 })
  })

  it('gets a closed iterable stream, done with client, whose iterable is never pulled', async () => {
    const h = hub()
    const s = sink()
    s.destroy()
    const { iterable, record } = recordingIterable()
    const subscription = h.streamIterable(s, iterable)
    expect(subscription.closed).toBe(true)
    expect(await subscription.done).toBe('client')
    expect(record.pulled).toBe(0)
    expect(s.written).toEqual([])
    expect(h.stats().connections).toBe(0)
  })
})

describe('streamIterable', () => {
  it('refuses what is not an async iterable with ERR_INVALID_ARGUMENT naming the iterable, writing nothing', () => {
    const h = hub()
    const s = sink()
    for (const value of [[1, 2], 'text', null, { next: () => undefined }]) {
      const error = caught(() => h.streamIterable(s, value as never))
      expect(error).toMatchObject({
        code: 'ERR_INVALID_ARGUMENT',
        field: 'iterable',
        message: 'streamIterable needs an async iterable (an async generator, for example)',
      })
    }
    expect(s.written).toEqual([])
    expect(h.stats().connections).toBe(0)
  })

  it('does not run an iterable turned away by maxConnections', async () => {
    const h = hub({ maxConnections: 1 })
    h.subscribe('s', sink())
    const s = sink()
    const { iterable, record } = recordingIterable()
    const subscription = h.streamIterable(s, iterable)
    expect(await subscription.done).toBe('rejected')
    await new Promise((resolve) => setImmediate(resolve))
    expect(record.pulled).toBe(0)
    expect(s.ended).toBe(true)
    expect(h.stats()).toMatchObject({ connections: 1, rejected: 1 })
  })
})

describe('publishing after close', () => {
  it('throws ERR_CLOSED saying what to do', async () => {
    const h = hub()
    await h.close()
    const error = caught(() => h.publish('s', { data: 'x' }))
    expect(error.code).toBe('ERR_CLOSED')
    expect(error.message).toBe('the hub is closed; create a new hub to publish again')
  })
})
