/**
 * A response's producer (response-producer.ts) on the in-memory store: what it accepts as items,
 * how a bad producer or item ends the response, and the events it leaves in the response's stream.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { createHub, createMemoryStore, type Hub, type MemoryStore, RewindError } from '../src/index.js'
import { RESPONSE_STREAM_PREFIX } from '../src/responses.js'

const hubs: Hub[] = []
afterEach(async () => {
  await Promise.all(hubs.splice(0).map((h) => h.close()))
})

/** The store each hub of these tests was given (the hub keeps its own private). */
const stores = new WeakMap<Hub, MemoryStore>()

function newHub(): { hub: Hub; errors: unknown[] } {
  const errors: unknown[] = []
  const store = createMemoryStore()
  const hub = createHub({ store, heartbeatInterval: 0, onError: (error) => errors.push(error) }) as Hub
  stores.set(hub, store)
  hubs.push(hub)
  return { hub, errors }
}

/** The events of a response's stream, as the memory store holds them. */
function eventsOf(hub: Hub, id: string): { event: string | undefined; data: string }[] {
  const store = stores.get(hub)!
  const stream = RESPONSE_STREAM_PREFIX + id
  // `null` gives the position before the oldest event; the events are read after it.
  const oldest = store.read(stream, null, 0).position.id
  return store.read(stream, oldest, 1000).events.map(({ event, data }) => ({ event, data }))
}

async function* items(...values: unknown[]): AsyncGenerator<never> {
  for (const value of values) yield value as never
}

describe('a response producer', () => {
  it('writes { data, event } items under their event name, and strings as messages', async () => {
    const { hub, errors } = newHub()
    const { id, done } = await hub.responses.start(
      items('a', { data: 'b', event: 'token' }, { data: { n: 1 } }),
    )
    expect(await done).toBe('done')
    expect(eventsOf(hub, id)).toEqual([
      { event: undefined, data: 'a' },
      { event: 'token', data: 'b' },
      { event: undefined, data: '{"n":1}' },
      { event: 'rewind-end', data: 'done' },
    ])
    expect(errors).toEqual([])
  })

  it('fails the response on an item that is neither a string nor a { data } object, and reports it', async () => {
    for (const bad of [42, null, undefined, { event: 'x' }, ['a']]) {
      const { hub, errors } = newHub()
      const { id, done } = await hub.responses.start(items('a', bad, 'never'))
      expect(await done).toBe('failed')
      expect(eventsOf(hub, id).map((e) => e.data)).toEqual(['a', 'failed'])
      expect(errors).toHaveLength(1)
      expect(errors[0]).toBeInstanceOf(RewindError)
      expect(errors[0]).toMatchObject({ code: 'ERR_INVALID_ARGUMENT', field: 'data' })
    }
  })

  it('fails the response on an item named as the terminal event, which only the end may use', async () => {
    const { hub, errors } = newHub()
    const { id, done } = await hub.responses.start(items({ data: 'fake', event: 'rewind-end' }))
    expect(await done).toBe('failed')
    expect(eventsOf(hub, id)).toEqual([{ event: 'rewind-end', data: 'failed' }])
    expect(errors[0]).toMatchObject({ code: 'ERR_INVALID_ARGUMENT', field: 'event' })
    expect((errors[0] as Error).message).toContain('"rewind-end" is reserved')
  })

  it('fails the response when the producer function returns no async iterable', async () => {
    for (const returned of [['a'], null, 'abc', { next: () => ({ done: true }) }]) {
      const { hub, errors } = newHub()
      const { id, done } = await hub.responses.start(() => returned as never)
      expect(await done).toBe('failed')
      expect(eventsOf(hub, id)).toEqual([{ event: 'rewind-end', data: 'failed' }])
      expect(errors).toHaveLength(1)
      expect(errors[0]).toMatchObject({ code: 'ERR_INVALID_ARGUMENT', field: 'producer' })
    }
  })

  it('refuses a producer that is neither a function nor an async iterable, null included', async () => {
    const { hub } = newHub()
    for (const bad of [null, undefined, 42, ['a'], {}]) {
      const error = await hub.responses.start(bad as never).then(
        () => undefined,
        (e: unknown) => e,
      )
      expect(error).toBeInstanceOf(RewindError)
      expect(error).toMatchObject({ code: 'ERR_INVALID_ARGUMENT', field: 'producer' })
    }
  })

  it('gives the producer a signal that aborts when the response is cancelled, and runs its finally', async () => {
    const { hub, errors } = newHub()
    const seen: string[] = []
    const { done, cancel } = await hub.responses.start(async function* (signal) {
      try {
        yield 'a'
        await new Promise((resolve) => signal.addEventListener('abort', resolve))
        seen.push(`aborted ${signal.aborted}`)
        yield 'never'
      } finally {
        seen.push('finally')
      }
    })
    await new Promise((resolve) => setImmediate(resolve))
    expect(await cancel()).toBe('cancelled')
    expect(await done).toBe('cancelled')
    await new Promise((resolve) => setImmediate(resolve))
    expect(seen).toEqual(['aborted true', 'finally'])
    expect(errors).toEqual([])
  })
})
