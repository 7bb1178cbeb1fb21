/**
 * Streaming an async iterable to one sink: how it ends (the iterable's end, its failure, a bad item,
 * the client leaving), when the iterator's return() runs, and the items' encoding.
 */
import { describe, expect, it } from 'vitest'
import { RewindError } from '../src/errors.js'
import type { HubOptions } from '../src/index.js'
import type { StreamItem } from '../src/iterable.js'
import { cleanUpAfterEach, hub } from './helpers/hubs.js'
import { MemorySink } from './helpers/memory-sink.js'

cleanUpAfterEach()

/** Settles the promise callbacks queued so far (the iterator's return() runs in one). */
const settled = () => new Promise((resolve) => setImmediate(resolve))

/**
 * An async iterator driven by the test: each next() waits for the test to answer it. Counts the
 * calls, and records return() calls (absent when `withReturn` is false).
 */
function driven(options: { withReturn?: boolean; returnThrows?: unknown } = {}) {
  const pending: { resolve(result: IteratorResult<StreamItem>): void; reject(error: unknown): void }[] = []
  const calls = { next: 0, return: 0 }
  const iterator: AsyncIterator<StreamItem> = {
    next: () => {
      calls.next++
      return new Promise((resolve, reject) => pending.push({ resolve, reject }))
    },
  }
  if (options.withReturn !== false) {
    iterator.return = async () => {
      calls.return++
      if (options.returnThrows !== undefined) throw options.returnThrows
      return { done: true, value: undefined }
    }
  }
  const iterable: AsyncIterable<StreamItem> = { [Symbol.asyncIterator]: () => iterator }
  const answer = async (result: IteratorResult<StreamItem> | { error: unknown }) => {
    await until(() => pending.length > 0)
    const next = pending.shift()!
    if ('error' in result) next.reject(result.error)
    else next.resolve(result)
    await settled()
  }
  return { iterable, calls, answer }
}

async function until(condition: () => boolean): Promise<void> {
  for (let i = 0; i < 1000 && !condition(); i++) await settled()
  expect(condition()).toBe(true)
}

function streaming(options: HubOptions = {}) {
  const errors: [unknown, unknown][] = []
  const serialized: unknown[] = []
  const h = hub({
    retry: null,
    onError: (error, info) => errors.push([error, info]),
    serialize: (value) => {
      serialized.push(value)
      return JSON.stringify(value)
    },
    ...options,
  })
  return { h, errors, serialized, sink: new MemorySink() }
}

describe('an iterable stream', () => {
  it("ends with 'end' when the iterable ends, without calling its return()", async () => {
    const { h, errors, sink } = streaming()
    const source = driven()
    const subscription = h.streamIterable(sink, source.iterable)
    await source.answer({ done: false, value: 'one' })
    await source.answer({ done: true, value: undefined })
    expect(await subscription.done).toBe('end')
    await settled()
    expect(source.calls.return).toBe(0)
    expect(errors).toEqual([])
    expect(sink.parse().events.map((event) => event.data)).toEqual(['one'])
  })

  it("ends with 'error' when next() rejects, reporting it, without calling return()", async () => {
    const { h, errors, sink } = streaming()
    const source = driven()
    const subscription = h.streamIterable(sink, source.iterable)
    const failure = new Error('model failed')
    await source.answer({ error: failure })
    expect(await subscription.done).toBe('error')
    await settled()
    expect(source.calls.return).toBe(0)
    expect(errors).toEqual([[failure, { stream: undefined }]])
  })

  it('stops when the client leaves while next() is pending: the late item is not encoded, nor a late failure reported', async () => {
    for (const late of [{ done: false, value: { data: { n: 2 } } }, { error: new Error('late') }] as const) {
      const { h, errors, serialized, sink } = streaming()
      const source = driven()
      const subscription = h.streamIterable(sink, source.iterable)
      await until(() => source.calls.next === 1)
      sink.disconnect()
      expect(await subscription.done).toBe('client')
      await source.answer(late)
      expect(serialized).toEqual([])
      expect(errors).toEqual([])
      expect(source.calls).toEqual({ next: 1, return: 1 })
    }
  })

  it('asks for no further item once the client leaves while the sink is full', async () => {
    const { h, sink } = streaming()
    const source = driven()
    sink.stall()
    const subscription = h.streamIterable(sink, source.iterable)
    await source.answer({ done: false, value: 'one' })
    sink.disconnect()
    expect(await subscription.done).toBe('client')
    await settled()
    expect(source.calls.next).toBe(1)
  })

  it('lets an iterator without return() go quietly, and reports one whose return() throws', async () => {
    const quiet = streaming()
    const withoutReturn = driven({ withReturn: false })
    quiet.h.streamIterable(quiet.sink, withoutReturn.iterable).close()
    await settled()
    expect(quiet.errors).toEqual([])

    const loud = streaming()
    const failure = new Error('cleanup failed')
    const throwing = driven({ returnThrows: failure })
    loud.h.streamIterable(loud.sink, throwing.iterable).close()
    await until(() => loud.errors.length > 0)
    expect(loud.errors).toEqual([[failure, { stream: undefined }]])
  })

  it.each([null, 5, { event: 'x' }])(
    'refuses the item %o, naming data, and ends with error',
    async (item) => {
      const { h, errors, sink } = streaming()
      const source = driven()
      const subscription = h.streamIterable(sink, source.iterable)
      await source.answer({ done: false, value: item as never })
      expect(await subscription.done).toBe('error')
      expect(errors).toHaveLength(1)
      expect(errors[0]?.[0]).toBeInstanceOf(RewindError)
      expect(errors[0]?.[0]).toMatchObject({
        code: 'ERR_INVALID_ARGUMENT',
        field: 'data',
        message: 'items of a streamed iterable must be strings or { data, event?, id?, retry? } objects',
      })
    },
  )

  it('sends an item with its id, event and retry hint, the hint first', async () => {
    const { h, sink } = streaming()
    const source = driven()
    const subscription = h.streamIterable(sink, source.iterable)
    await source.answer({ done: false, value: { data: 'x', event: 'token', id: '7', retry: 5000 } })
    await source.answer({ done: true, value: undefined })
    await subscription.done
    expect(sink.text()).toContain('retry: 5000\n\nid: 7\nevent: token\ndata: x\n\n')
    expect(sink.parse().retries).toEqual([5000])
  })
})
