/**
 * The saved position, without a server: what is written where, what reads back, and that storage
 * which fails or holds garbage never stops the stream.
 */
import fc from 'fast-check'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { type PositionStore, SavedPosition, SeenIds, sessionStorageStore } from '../src/position.js'
import { memoryStore } from './support/store.js'

describe('SavedPosition', () => {
  it('saves the position under the key and the URL next to it, and forgets both', async () => {
    const store = memoryStore()
    const saved = new SavedPosition(store, 'answer')
    saved.savePosition('41')
    saved.saveUrl('http://127.0.0.1:9/answers/7')
    expect(Object.fromEntries(store.saved)).toEqual({
      answer: '41',
      'answer:url': 'http://127.0.0.1:9/answers/7',
    })
    expect([await saved.position(), await saved.url()]).toEqual(['41', 'http://127.0.0.1:9/answers/7'])
    saved.forget()
    expect(store.saved.size).toBe(0)
    expect([await saved.position(), await saved.url()]).toEqual(['', ''])
  })

  it('saves an empty value to forget, in a store without delete', () => {
    const values = new Map<string, string>()
    const saved = new SavedPosition(
      { get: (key) => values.get(key), set: (key, id) => void values.set(key, id) },
      'k',
    )
    saved.savePosition('1')
    saved.forget()
    expect(Object.fromEntries(values)).toEqual({ k: '', 'k:url': '' })
  })

  it('saves and reads nothing without a key', async () => {
    // Keys made strings, as Web Storage makes them: a missing key would read and write 'undefined'.
    const values = new Map([['undefined', '1']])
    const store: PositionStore = {
      get: (key) => values.get(String(key)),
      set: (key, id) => void values.set(String(key), id),
    }
    const saved = new SavedPosition(store, undefined)
    saved.savePosition('2')
    saved.saveUrl('http://127.0.0.1:9/')
    expect(Object.fromEntries(values)).toEqual({ undefined: '1' })
    expect([await saved.position(), await saved.url()]).toEqual(['', ''])
  })

  it('reads back every id a header can carry, and nothing for one it cannot', async () => {
    await fc.assert(
      fc.asyncProperty(fc.string({ minLength: 1 }), async (id) => {
        const saved = new SavedPosition(memoryStore(), 'k')
        saved.savePosition(id)
        expect(await saved.position()).toBe(/[\r\n\0]/.test(id) ? '' : id)
      }),
    )
  })

  it('reads a value that is no string as none', async () => {
    for (const value of [null, undefined, 42, { id: '1' }]) {
      const store = { get: () => value, set: () => {} } as unknown as PositionStore
      expect(await new SavedPosition(store, 'k').position()).toBe('')
    }
  })

  it('treats a store that throws or rejects as empty, and never throws to the stream', async () => {
    const failing: PositionStore[] = [
      {
        get: () => {
          throw new Error('SecurityError')
        },
        set: () => {
          throw new Error('QuotaExceededError')
        },
        delete: () => {
          throw new Error('SecurityError')
        },
      },
      {
        get: () => Promise.reject(new Error('offline')),
        set: () => Promise.reject(new Error('offline')),
        delete: () => Promise.reject(new Error('offline')),
      },
    ]
    const unhandled: unknown[] = []
    const onUnhandled = (reason: unknown) => unhandled.push(reason)
    process.on('unhandledRejection', onUnhandled)
    try {
      for (const store of failing) {
        const saved = new SavedPosition(store, 'k')
        expect(await saved.position()).toBe('')
        expect(await saved.url()).toBe('')
        expect(() => {
          saved.savePosition('1')
          saved.saveUrl('http://127.0.0.1:9/')
          saved.forget()
        }).not.toThrow()
      }
      await new Promise((resolve) => setTimeout(resolve, 10))
    } finally {
      process.off('unhandledRejection', onUnhandled)
    }
    expect(unhandled).toEqual([])
  })
})

describe('sessionStorageStore', () => {
  afterEach(() => {
    vi.unstubAllGlobals()
  })

  it('is undefined where there is no sessionStorage, or where reading it throws', () => {
    expect(sessionStorageStore()).toBeUndefined()
    Object.defineProperty(globalThis, 'sessionStorage', {
      configurable: true,
      get() {
        throw new Error('SecurityError')
      },
    })
    try {
      expect(sessionStorageStore()).toBeUndefined()
    } finally {
      delete (globalThis as { sessionStorage?: unknown }).sessionStorage
    }
  })

  it('gets, sets and removes items of sessionStorage', async () => {
    const values = new Map<string, string>()
    vi.stubGlobal('sessionStorage', {
      getItem: (key: string) => values.get(key) ?? null,
      setItem: (key: string, value: string) => void values.set(key, value),
      removeItem: (key: string) => void values.delete(key),
    })
    const store = sessionStorageStore()!
    store.set('k', '3')
    expect([values.get('k'), await store.get('k')]).toEqual(['3', '3'])
    store.delete!('k')
    expect([values.has('k'), await store.get('k')]).toEqual([false, null])
  })
})

describe('SeenIds', () => {
  it('remembers the latest `limit` ids, a repeated id counting as the newest', () => {
    const seen = new SeenIds(3)
    for (const id of ['1', '2', '3', '1', '4']) seen.add(id)
    // '2' was the oldest once '1' came again.
    expect(['1', '2', '3', '4'].map((id) => seen.has(id))).toEqual([true, false, true, true])
    seen.add('5')
    expect(['1', '3', '4', '5'].map((id) => seen.has(id))).toEqual([true, false, true, true])
    seen.clear()
    expect(['3', '4', '5'].some((id) => seen.has(id))).toBe(false)
  })

  it('remembers exactly `limit` ids, and none with a limit of 0', () => {
    const one = new SeenIds(1)
    one.add('a')
    expect(one.has('a')).toBe(true)
    one.add('b')
    expect([one.has('a'), one.has('b')]).toEqual([false, true])
    const none = new SeenIds(0)
    none.add('a')
    expect(none.has('a')).toBe(false)
  })
})
