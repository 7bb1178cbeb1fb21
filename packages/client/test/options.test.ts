/**
 * The options, without a server: every default, every rule a value must follow (its edges on both
 * sides), and the message that says how to fix a value that breaks one.
 */
import { afterEach, describe, expect, it, vi } from 'vitest'
import { RewindClientError } from '../src/errors.js'
import { type EventSourceOptions, isRetryableStatus, resolveOptions } from '../src/options.js'
import type { PositionStore } from '../src/position.js'
import { memoryStore } from './support/store.js'

/** The error `resolveOptions` throws for `options`, which must be an `ERR_INVALID_ARGUMENT`. */
function refusal(options: unknown): RewindClientError {
  let thrown: unknown
  try {
    resolveOptions(options as EventSourceOptions)
  } catch (error) {
    thrown = error
  }
  expect(thrown, JSON.stringify(options)).toBeInstanceOf(RewindClientError)
  const error = thrown as RewindClientError
  expect(error.code).toBe('ERR_INVALID_ARGUMENT')
  return error
}

/** `[field, message]` of the refusal of each of `options`. */
function refusals(options: unknown[]): [string | undefined, string][] {
  return options.map((option) => {
    const error = refusal(option)
    return [error.field, error.message]
  })
}

afterEach(() => {
  vi.unstubAllGlobals()
})

describe('resolveOptions', () => {
  it('fills in every default', () => {
    expect(resolveOptions({})).toEqual({
      method: 'GET',
      body: undefined,
      headers: undefined,
      credentials: 'same-origin',
      signal: undefined,
      fetch: globalThis.fetch,
      resume: undefined,
      lastEventId: '',
      storageKey: undefined,
      store: undefined,
      json: false,
      gapEvent: 'rewind-gap',
      endEvent: 'rewind-end',
      retry: 1000,
      maxRetryDelay: 30_000,
      backoffFactor: 2,
      maxRetries: Infinity,
      shouldRetry: isRetryableStatus,
      stallTimeout: 0,
      dedupeWindow: 1000,
      maxEventSize: 1024 * 1024,
    })
  })

  it('keeps every value given, the method upper-cased', () => {
    const fetch = (() => Promise.reject(new Error('unused'))) as typeof globalThis.fetch
    const resume = () => undefined
    const shouldRetry = () => true
    const headers = () => ({ authorization: 'Bearer x' })
    const store = memoryStore()
    const signal = new AbortController().signal
    const given = {
      body: '{}',
      headers,
      credentials: 'include',
      signal,
      fetch,
      resume,
      lastEventId: '7',
      storageKey: 'answer',
      store,
      json: true,
      gapEvent: 'gap',
      endEvent: 'done',
      retry: 0,
      maxRetryDelay: 5,
      backoffFactor: 1,
      maxRetries: 0,
      shouldRetry,
      stallTimeout: 45_000,
      dedupeWindow: 0,
      maxEventSize: 1,
    } satisfies EventSourceOptions
    expect(resolveOptions({ ...given, method: 'post' })).toEqual({ ...given, method: 'POST' })
  })

  it('parses JSON only for json: true itself', () => {
    expect(resolveOptions({ json: 'yes' } as unknown as EventSourceOptions).json).toBe(false)
  })

  it('caps retry at maxRetryDelay, and takes fractions and Infinity only where they mean something', () => {
    expect(resolveOptions({ retry: 60_000 }).retry).toBe(30_000)
    expect(resolveOptions({ retry: 500, maxRetryDelay: 200 }).retry).toBe(200)
    expect(
      resolveOptions({ retry: 0.5, maxRetryDelay: 1.5, backoffFactor: 1.5, stallTimeout: 0.5 }),
    ).toMatchObject({ retry: 0.5, maxRetryDelay: 1.5, backoffFactor: 1.5, stallTimeout: 0.5 })
    expect(resolveOptions({ maxRetries: Infinity }).maxRetries).toBe(Infinity)
    expect(resolveOptions({ maxRetries: 3, dedupeWindow: 10, maxEventSize: 2 })).toMatchObject({
      maxRetries: 3,
      dedupeWindow: 10,
      maxEventSize: 2,
    })
  })

  it('refuses a number out of range, a fraction where a count is due, and Infinity or NaN where it means nothing', () => {
    expect(
      refusals([
        { retry: -1 },
        { retry: Infinity },
        { retry: '5' },
        { maxRetryDelay: 0.5 },
        { maxRetryDelay: Number.NaN },
        { backoffFactor: 0.99 },
        { maxRetries: -1 },
        { maxRetries: 1.5 },
        { maxRetries: -Infinity },
        { maxRetries: Number.NaN },
        { stallTimeout: -0.5 },
        { dedupeWindow: 2.5 },
        { dedupeWindow: Infinity },
        { maxEventSize: 0 },
      ]),
    ).toEqual([
      ['retry', 'retry must be a number of at least 0; got -1'],
      ['retry', 'retry must be a number of at least 0; got Infinity'],
      ['retry', 'retry must be a number of at least 0; got 5'],
      ['maxRetryDelay', 'maxRetryDelay must be a number of at least 1; got 0.5'],
      ['maxRetryDelay', 'maxRetryDelay must be a number of at least 1; got NaN'],
      ['backoffFactor', 'backoffFactor must be a number of at least 1; got 0.99'],
      ['maxRetries', 'maxRetries must be an integer of at least 0 (or Infinity); got -1'],
      ['maxRetries', 'maxRetries must be an integer of at least 0 (or Infinity); got 1.5'],
      ['maxRetries', 'maxRetries must be an integer of at least 0 (or Infinity); got -Infinity'],
      ['maxRetries', 'maxRetries must be an integer of at least 0 (or Infinity); got NaN'],
      ['stallTimeout', 'stallTimeout must be a number of at least 0; got -0.5'],
      ['dedupeWindow', 'dedupeWindow must be an integer of at least 0; got 2.5'],
      ['dedupeWindow', 'dedupeWindow must be an integer of at least 0; got Infinity'],
      ['maxEventSize', 'maxEventSize must be an integer of at least 1; got 0'],
    ])
  })

  it('refuses an options value that is no object', () => {
    expect(refusals([null, 'GET', 42])).toEqual([
      ['options', 'options must be an object'],
      ['options', 'options must be an object'],
      ['options', 'options must be an object'],
    ])
  })

  it('refuses an empty or non-string method, and a body with GET or HEAD', () => {
    expect(
      refusals([{ method: '' }, { method: 42 }, { body: 'x' }, { method: 'head', body: new Blob([]) }]),
    ).toEqual([
      ['method', "method must be an HTTP method such as 'GET' or 'POST'"],
      ['method', "method must be an HTTP method such as 'GET' or 'POST'"],
      ['body', "body can't be sent with GET: pass method: 'POST' as well"],
      ['body', "body can't be sent with HEAD: pass method: 'POST' as well"],
    ])
    expect(resolveOptions({ body: null }).body).toBeNull()
    expect(resolveOptions({ method: 'DELETE', body: 'x' }).method).toBe('DELETE')
  })

  it('refuses a fetch, resume or shouldRetry that is no function, and a runtime without fetch', () => {
    expect(refusals([{ fetch: 'fetch' }, { resume: {} }, { shouldRetry: true }])).toEqual([
      ['fetch', 'fetch must be a function; got string'],
      ['resume', 'resume must be a function; got object'],
      ['shouldRetry', 'shouldRetry must be a function; got boolean'],
    ])
    vi.stubGlobal('fetch', undefined)
    expect(refusals([{}])).toEqual([['fetch', 'fetch is required: this runtime has no global fetch']])
    const fetch = (() => Promise.reject(new Error('unused'))) as typeof globalThis.fetch
    expect(resolveOptions({ fetch }).fetch).toBe(fetch)
  })

  it('takes headers in every form, or a function, and refuses anything else', () => {
    for (const headers of [{ a: '1' }, [['a', '1']], new Headers({ a: '1' }), () => ({ a: '1' })]) {
      expect(resolveOptions({ headers: headers as NonNullable<EventSourceOptions['headers']> }).headers).toBe(
        headers,
      )
    }
    const message =
      'headers must be headers (an object, an array of pairs or Headers) or a function returning them'
    expect(refusals([{ headers: null }, { headers: 'a: 1' }, { headers: 1 }])).toEqual([
      ['headers', message],
      ['headers', message],
      ['headers', message],
    ])
  })

  it('refuses a lastEventId that is no string or that a header cannot carry', () => {
    const message = 'lastEventId must be a string without CR, LF or NUL'
    expect(
      refusals([
        { lastEventId: 1 },
        { lastEventId: 'a\rb' },
        { lastEventId: 'a\nb' },
        { lastEventId: 'a\0b' },
      ]),
    ).toEqual([
      ['lastEventId', message],
      ['lastEventId', message],
      ['lastEventId', message],
      ['lastEventId', message],
    ])
    expect(resolveOptions({ lastEventId: 'a b:c' }).lastEventId).toBe('a b:c')
  })

  it('refuses an empty storageKey, and a store without get or set', () => {
    const store = memoryStore()
    const message = 'store must have get(key) and set(key, id) methods'
    expect(
      refusals([
        { storageKey: '' },
        { storageKey: 1, store },
        { store: null },
        { store: { get: store.get } },
        { store: { set: store.set } },
      ]),
    ).toEqual([
      ['storageKey', 'storageKey must be a non-empty string'],
      ['storageKey', 'storageKey must be a non-empty string'],
      ['store', message],
      ['store', message],
      ['store', message],
    ])
    // A store without storageKey saves nothing, and is accepted.
    expect(resolveOptions({ store }).store).toBe(store)
  })

  it('keeps the position in sessionStorage where there is one, and asks for a store where there is none', () => {
    expect(refusals([{ storageKey: 'k' }])).toEqual([
      ['store', 'store is required with storageKey where there is no sessionStorage (Node): pass a store'],
    ])
    const values = new Map<string, string>()
    vi.stubGlobal('sessionStorage', {
      getItem: (key: string) => values.get(key) ?? null,
      setItem: (key: string, value: string) => void values.set(key, value),
      removeItem: (key: string) => void values.delete(key),
    })
    const store = resolveOptions({ storageKey: 'k' }).store as PositionStore
    store.set('k', '5')
    expect(store.get('k')).toBe('5')
    expect(values.get('k')).toBe('5')
  })

  it('refuses a signal that is no AbortSignal', () => {
    expect(refusals([{ signal: new AbortController() }])).toEqual([
      ['signal', 'signal must be an AbortSignal'],
    ])
  })

  it('refuses a gap or end event name that is empty, no string, or holds a line break', () => {
    const gap = 'gapEvent must be a non-empty event name without CR or LF'
    const end = 'endEvent must be a non-empty event name without CR or LF'
    expect(
      refusals([
        { gapEvent: '' },
        { gapEvent: 1 },
        { gapEvent: 'a\rb' },
        { endEvent: 'a\nb' },
        { endEvent: '' },
      ]),
    ).toEqual([
      ['gapEvent', gap],
      ['gapEvent', gap],
      ['gapEvent', gap],
      ['endEvent', end],
      ['endEvent', end],
    ])
  })
})

describe('isRetryableStatus', () => {
  it('retries 5xx, 408 and 429, and no other status', () => {
    const statuses = [400, 401, 404, 407, 408, 409, 428, 429, 430, 499, 500, 503, 599]
    expect(statuses.filter(isRetryableStatus)).toEqual([408, 429, 500, 503, 599])
  })
})
