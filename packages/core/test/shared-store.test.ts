/**
 * What the shared stores (`@rewind/redis`, `@rewind/postgres`) take from core, checked on its own:
 * their options and the message of each refusal, the bounds a store's server applies, the frame of
 * an event written by other code, and the one hub a store delivers to. The stores' own tests reach
 * this code through real Redis and Postgres; these say exactly what each part promises.
 */
import { describe, expect, it } from 'vitest'
import {
  AttachedHub,
  boundOption,
  encodeStoredFrame,
  readCount,
  resolveSharedStoreOptions,
} from '../src/shared-store.js'
import type { StoreDelivery, StoredEvent } from '../src/store.js'

const DEFAULTS = { maxLen: 1000, minReconnectDelay: 100, maxReconnectDelay: 5000 }

/** Calls `f`, which must throw an `ERR_INVALID_ARGUMENT`, and gives its field and message. */
function refusal(f: () => unknown): { field: unknown; message: string } {
  try {
    f()
  } catch (error) {
    const e = error as { code?: string; field?: unknown; message: string }
    expect(e.code).toBe('ERR_INVALID_ARGUMENT')
    return { field: e.field, message: e.message }
  }
  throw new Error('expected a refusal')
}

describe('resolveSharedStoreOptions', () => {
  it('takes the defaults, JSON.parse and no onError when given nothing', () => {
    expect(resolveSharedStoreOptions({}, DEFAULTS)).toEqual({
      maxLen: 1000,
      deserialize: JSON.parse,
      onError: undefined,
      minReconnectDelay: 100,
      maxReconnectDelay: 5000,
    })
  })

  it('keeps what it is given', () => {
    const deserialize = (data: string) => data.length
    const onError = () => {}
    expect(
      resolveSharedStoreOptions(
        { maxLen: 7, deserialize, onError, minReconnectDelay: 20, maxReconnectDelay: 30 },
        DEFAULTS,
      ),
    ).toEqual({ maxLen: 7, deserialize, onError, minReconnectDelay: 20, maxReconnectDelay: 30 })
  })

  it('raises the default maxReconnectDelay to a larger minReconnectDelay, never lowers it', () => {
    expect(resolveSharedStoreOptions({ minReconnectDelay: 9000 }, DEFAULTS).maxReconnectDelay).toBe(9000)
    expect(resolveSharedStoreOptions({ minReconnectDelay: 10 }, DEFAULTS).maxReconnectDelay).toBe(5000)
  })

  it('refuses each bad option, naming it and what it got', () => {
    expect(refusal(() => resolveSharedStoreOptions({ deserialize: 'json' }, DEFAULTS))).toEqual({
      field: 'deserialize',
      message: 'deserialize must be a function, got "json"',
    })
    expect(refusal(() => resolveSharedStoreOptions({ onError: 42 }, DEFAULTS))).toEqual({
      field: 'onError',
      message: 'onError must be a function, got 42',
    })
    expect(refusal(() => resolveSharedStoreOptions({ onError: null }, DEFAULTS)).field).toBe('onError')
    expect(refusal(() => resolveSharedStoreOptions({ maxLen: 0 }, DEFAULTS)).field).toBe('maxLen')
    expect(
      refusal(() => resolveSharedStoreOptions({ minReconnectDelay: 200, maxReconnectDelay: 100 }, DEFAULTS)),
    ).toEqual({
      field: 'maxReconnectDelay',
      message: 'maxReconnectDelay (100) must not be less than minReconnectDelay (200)',
    })
    expect(refusal(() => resolveSharedStoreOptions({ minReconnectDelay: 0.5 }, DEFAULTS)).field).toBe(
      'minReconnectDelay',
    )
  })
})

describe('boundOption', () => {
  it('takes a positive integer or Infinity, unchanged', () => {
    expect(boundOption('maxAge', 1)).toBe(1)
    expect(boundOption('maxAge', 2 ** 40)).toBe(2 ** 40)
    expect(boundOption('maxAge', Number.POSITIVE_INFINITY)).toBe(Number.POSITIVE_INFINITY)
  })

  it('refuses anything else, saying the unit when there is one', () => {
    expect(refusal(() => boundOption('maxLen', 0))).toEqual({
      field: 'maxLen',
      message: 'maxLen must be a positive integer or Infinity, got 0',
    })
    expect(refusal(() => boundOption('maxAge', -1, 'milliseconds'))).toEqual({
      field: 'maxAge',
      message: 'maxAge must be a positive integer (milliseconds) or Infinity, got -1',
    })
    for (const bad of [1.5, Number.NaN, Number.NEGATIVE_INFINITY, '5', undefined]) {
      expect(refusal(() => boundOption('maxLen', bad)).field).toBe('maxLen')
    }
  })
})

describe('readCount', () => {
  it('asks for every event when the limit is Infinity, and for whole events otherwise', () => {
    expect(readCount(Number.POSITIVE_INFINITY)).toBe(Number.MAX_SAFE_INTEGER)
    expect(readCount(64)).toBe(64)
    expect(readCount(2.7)).toBe(2)
    expect(readCount(0)).toBe(0)
    expect(readCount(-3)).toBe(0)
    expect(readCount(Number.NaN)).toBe(0)
    expect(readCount(Number.NEGATIVE_INFINITY)).toBe(0)
  })
})

describe('encodeStoredFrame', () => {
  it('frames an event with its type', () => {
    expect(encodeStoredFrame('3', 'tick', 'a\nb')).toBe('id: 3\nevent: tick\ndata: a\ndata: b\n\n')
  })

  it('sends an event whose type no frame can hold as a plain message, in its place', () => {
    expect(encodeStoredFrame('4', 'bad\ntype', 'x')).toBe('id: 4\ndata: x\n\n')
  })
})

describe('AttachedHub', () => {
  const event: StoredEvent = { id: '1', data: 'x' } as StoredEvent
  function recorder(): StoreDelivery & { calls: string[] } {
    const calls: string[] = []
    return {
      calls,
      deliver: (stream, events) => calls.push(`deliver ${stream} ${events.length}`),
      reset: (stream) => calls.push(`reset ${stream}`),
    }
  }

  it('passes events on to the hub attached, and drops them while none is', () => {
    const attached = new AttachedHub('one hub per store')
    attached.deliver('s', [event])
    attached.reset('s')
    const hub = recorder()
    attached.attach(hub)
    attached.deliver('s', [event])
    attached.reset('t')
    expect(hub.calls).toEqual(['deliver s 1', 'reset t'])
    attached.detach(hub)
    attached.deliver('s', [event])
    expect(hub.calls).toHaveLength(2)
  })

  it('takes the same hub twice, refuses a second one with its message, and frees on detach', () => {
    const attached = new AttachedHub('this store already delivers to a hub: give each hub its own store')
    const first = recorder()
    const second = recorder()
    attached.attach(first)
    attached.attach(first)
    expect(refusal(() => attached.attach(second))).toEqual({
      field: 'store',
      message: 'this store already delivers to a hub: give each hub its own store',
    })
    // Detaching a hub that is not the attached one changes nothing.
    attached.detach(second)
    attached.deliver('s', [event])
    expect(first.calls).toEqual(['deliver s 1'])
    attached.detach(first)
    attached.attach(second)
    attached.deliver('s', [event])
    expect(second.calls).toEqual(['deliver s 1'])
  })
})
