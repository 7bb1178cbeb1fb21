import { describe, expect, it } from 'vitest'
import { hubFromOptions } from '../src/adapter.js'
import { RewindError } from '../src/errors.js'
import { defaultErrorReport } from '../src/hub-options.js'
import { createHub, createMemoryStore, type HubOptions, MAX_TIMER_DELAY } from '../src/index.js'
import { caught, cleanUpAfterEach, hub, sink } from './helpers/hubs.js'
import { ManualStore } from './helpers/manual-store.js'

cleanUpAfterEach()

describe('hub options', () => {
  function optionError(options: HubOptions): RewindError {
    return caught(() => createHub(options))
  }

  it('refuses maxEventBytes above maxQueueBytes, since one event would disconnect every subscriber', () => {
    const error = optionError({ maxEventBytes: 2048, maxQueueBytes: 1024 })
    expect(error.code).toBe('ERR_INVALID_ARGUMENT')
    expect(error.field).toBe('maxEventBytes')
    // The default maxEventBytes (256 KiB) must fit too.
    expect(optionError({ maxQueueBytes: 1024 }).code).toBe('ERR_INVALID_ARGUMENT')
    expect(() => hub({ maxEventBytes: 1024, maxQueueBytes: 1024 })).not.toThrow()
  })

  it.each<[HubOptions, string]>([
    [{ maxQueueBytes: 0 }, 'maxQueueBytes'],
    [{ maxEventBytes: -1 }, 'maxEventBytes'],
    [{ maxEventBytes: 1.5 }, 'maxEventBytes'],
    [{ heartbeatInterval: -1 }, 'heartbeatInterval'],
    [{ heartbeatInterval: Number.NaN }, 'heartbeatInterval'],
    [{ gapPolicy: 'skip' as never }, 'gapPolicy'],
    [{ maxConnections: 0 }, 'maxConnections'],
    [{ maxSubscribersPerStream: -1 }, 'maxSubscribersPerStream'],
    [{ overloadRetry: -1 }, 'overloadRetry'],
    [{ closeGrace: 0.5 }, 'closeGrace'],
    [{ onGap: 'nope' as never }, 'onGap'],
    [{ onConnect: 1 as never }, 'onConnect'],
    [{ onDisconnect: {} as never }, 'onDisconnect'],
    [{ onReject: true as never }, 'onReject'],
    [{ onError: 'x' as never }, 'onError'],
    [{ serialize: 5 as never }, 'serialize'],
    [{ history: { maxEvents: 0 } }, 'maxEvents'],
  ])('refuses %o with ERR_INVALID_ARGUMENT naming %s', (options, field) => {
    const error = optionError(options)
    expect(error.code).toBe('ERR_INVALID_ARGUMENT')
    expect(error.field).toBe(field)
  })

  it('refuses a retry hint or gap event name that cannot go on the wire, like any bad option', () => {
    for (const retry of [-1, 1.5, Number.NaN]) {
      expect(optionError({ retry })).toMatchObject({ code: 'ERR_INVALID_ARGUMENT', field: 'retry' })
    }
    expect(optionError({ gapEvent: 'gap\nid: 1' })).toMatchObject({
      code: 'ERR_INVALID_ARGUMENT',
      field: 'gapEvent',
    })
  })

  it.each(['heartbeatInterval', 'closeGrace', 'retry', 'overloadRetry'] as const)(
    'refuses %s above MAX_TIMER_DELAY (Node would run the timer every millisecond), with the rule and the fix',
    (name) => {
      expect(MAX_TIMER_DELAY).toBe(2 ** 31 - 1)
      for (const value of [MAX_TIMER_DELAY + 1, 2 ** 40, Number.MAX_SAFE_INTEGER]) {
        const error = optionError({ [name]: value })
        expect(error).toBeInstanceOf(RewindError)
        expect(error).toMatchObject({ code: 'ERR_INVALID_ARGUMENT', field: name })
        expect(error.message).toContain(`${name} must be at most 2147483647 ms`)
        expect(error.message).toContain('give a delay of at most 2147483647')
      }
      const h = hub({ [name]: MAX_TIMER_DELAY })
      expect(h.closed).toBe(false)
    },
  )

  it('refuses close({ retry }) above MAX_TIMER_DELAY, and caps jittered hints at it', async () => {
    const h = hub({ heartbeatInterval: 0, overloadRetry: MAX_TIMER_DELAY, maxConnections: 1 })
    await expect(h.close({ retry: MAX_TIMER_DELAY + 1 })).rejects.toMatchObject({
      code: 'ERR_INVALID_ARGUMENT',
      field: 'retry',
    })
    expect(h.closed).toBe(false)
    // A client turned away gets a hint of at most MAX_TIMER_DELAY, however the jitter falls.
    const kept = sink()
    h.subscribe('s', kept)
    for (let i = 0; i < 20; i++) {
      const turned = sink()
      h.subscribe('s', turned)
      const retry = Number(/retry: (\d+)/.exec(turned.text())![1])
      expect(retry).toBeGreaterThanOrEqual(Math.floor(MAX_TIMER_DELAY / 2))
      expect(retry).toBeLessThanOrEqual(MAX_TIMER_DELAY)
    }
    await h.close({ retry: MAX_TIMER_DELAY })
  })

  it('refuses history bounds together with a store, which would silently not apply to it', () => {
    for (const store of [createMemoryStore(), new ManualStore()]) {
      const error = optionError({ store, history: { maxEvents: 5 } })
      expect(error).toMatchObject({ code: 'ERR_INVALID_ARGUMENT', field: 'history' })
      expect(error.message).toContain("configure the store's own bounds")
      expect(() => hubFromOptions({ store, history: {} })).toThrow(
        expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT', field: 'history' }),
      )
    }
    expect(() => hub({ store: createMemoryStore({ maxEvents: 5 }) })).not.toThrow()
    expect(() => hub({ history: { maxEvents: 5 } })).not.toThrow()
  })

  it('accepts Infinity for the connection limits', () => {
    expect(() =>
      hub({ maxConnections: Number.POSITIVE_INFINITY, maxSubscribersPerStream: Number.POSITIVE_INFINITY }),
    ).not.toThrow()
  })
})

describe('the exact refusals of hub options', () => {
  it('says why maxEventBytes must fit in maxQueueBytes, and the fix', () => {
    expect(caught(() => createHub({ maxEventBytes: 2048, maxQueueBytes: 1024 })).message).toBe(
      'maxEventBytes (2048) must not exceed maxQueueBytes (1024): one event would disconnect every subscriber; raise maxQueueBytes or lower maxEventBytes',
    )
  })

  it('names endEvent when its name cannot go on the wire', () => {
    expect(caught(() => createHub({ endEvent: 'end\nid: 1' }))).toMatchObject({
      code: 'ERR_INVALID_ARGUMENT',
      field: 'endEvent',
    })
  })
})

describe('the default error report', () => {
  it('logs each kind once a minute, naming the stream and the errors suppressed since', () => {
    const logged: [string, unknown][] = []
    let time = 0
    const report = defaultErrorReport(
      (message, error) => logged.push([message, error]),
      () => time,
    )
    const first = new Error('first')
    report(first, { stream: 'a"b' })
    report(new Error('again'), { stream: undefined })
    report(new Error('again'), { stream: undefined })
    time = 60_000
    const later = new Error('later')
    report(later, { stream: undefined })
    expect(logged).toEqual([
      [
        '[rewind] stream error on "a\\"b" (each kind is logged at most once a minute; set onError to handle them):',
        first,
      ],
      [
        '[rewind] stream error (each kind is logged at most once a minute; 2 more since the last one; set onError to handle them):',
        later,
      ],
    ])
  })
})
