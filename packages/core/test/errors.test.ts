import { existsSync, readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import fc from 'fast-check'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { thrownAs } from '../../../test/support/throws.js'
import { REWIND_ERROR_CODES, RewindError } from '../src/errors.js'
import * as api from '../src/index.js'
import { DEFAULT_ERROR_REPORT_INTERVAL, storeErrorReport, throttleErrors } from '../src/throttle-errors.js'

const README = fileURLToPath(new URL('../README.md', import.meta.url))

describe('REWIND_ERROR_CODES', () => {
  it('lists exactly the documented codes, in order', () => {
    // Codes are public API: adding, removing or renaming one is a breaking change that must be deliberate.
    expect(REWIND_ERROR_CODES).toEqual([
      'ERR_INVALID_FIELD',
      'ERR_SERIALIZE',
      'ERR_EVENT_TOO_LARGE',
      'ERR_INVALID_STREAM',
      'ERR_INVALID_ARGUMENT',
      'ERR_CLOSED',
      'ERR_STORE_UNAVAILABLE',
      'ERR_HISTORY_LOST',
      'ERR_RESPONSE_EXISTS',
      'ERR_RESPONSE_LIMIT',
    ])
  })

  it('is frozen, so no caller can change the list', () => {
    expect(Object.isFrozen(REWIND_ERROR_CODES)).toBe(true)
  })

  it('is exported from the package entry with RewindError', () => {
    expect(api.REWIND_ERROR_CODES).toBe(REWIND_ERROR_CODES)
    expect(api.RewindError).toBe(RewindError)
  })

  // The README does not exist yet; this starts checking as soon as it does.
  it.skipIf(!existsSync(README))('documents every code in packages/core/README.md', () => {
    const readme = readFileSync(README, 'utf8')
    const missing = REWIND_ERROR_CODES.filter((code) => !readme.includes(code))
    expect(missing).toEqual([])
  })
})

describe('RewindError', () => {
  it('is an Error named RewindError with a code, a field and a message', () => {
    const error = new RewindError('ERR_INVALID_FIELD', 'event must not contain CR', { field: 'event' })
    expect(error).toBeInstanceOf(Error)
    expect(error).toBeInstanceOf(RewindError)
    expect(error.name).toBe('RewindError')
    expect(error.code).toBe('ERR_INVALID_FIELD')
    expect(error.field).toBe('event')
    expect(error.message).toBe('event must not contain CR')
    expect(String(error)).toBe('RewindError: event must not contain CR')
    expect(error.stack).toContain('RewindError')
  })

  it('keeps the cause it is given', () => {
    const cause = new TypeError('cyclic')
    const error = new RewindError('ERR_SERIALIZE', 'could not serialize', { field: 'data', cause })
    expect(error.cause).toBe(cause)
  })

  it('keeps a falsy cause too', () => {
    expect(new RewindError('ERR_STORE_UNAVAILABLE', 'down', { cause: 0 }).cause).toBe(0)
    expect(new RewindError('ERR_STORE_UNAVAILABLE', 'down', { cause: null }).cause).toBeNull()
  })

  it('has no field and no cause when none is given', () => {
    const error = new RewindError('ERR_CLOSED', 'closed')
    expect(error.field).toBeUndefined()
    expect('cause' in error).toBe(false)
  })
})

describe('throttleErrors', () => {
  /** A reporter on a clock the test moves, recording (error, suppressed, info) of each report. */
  function throttled(interval?: number) {
    let clock = 1_000_000
    const reports: [unknown, number, unknown][] = []
    const report = throttleErrors<[unknown?]>(
      (error, suppressed, info) => reports.push([error, suppressed, info]),
      { interval, now: () => clock },
    )
    return { report, reports, advance: (ms: number) => (clock += ms) }
  }

  afterEach(() => {
    vi.useRealTimers()
  })

  it('reports the first error of a kind at once, then one per interval with the count suppressed since', () => {
    const { report, reports, advance } = throttled()
    report(new Error('store down for stream a'), { stream: 'a' })
    for (let i = 0; i < 5; i++) report(new Error(`store down for stream s${i}`), { stream: `s${i}` })
    expect(reports).toHaveLength(1)
    expect(reports[0]![1]).toBe(0)
    expect(reports[0]![2]).toEqual({ stream: 'a' })
    advance(DEFAULT_ERROR_REPORT_INTERVAL - 1)
    report(new Error('still down'))
    expect(reports).toHaveLength(1)
    advance(1)
    report(new Error('down again'), { stream: 'b' })
    expect(reports).toHaveLength(2)
    expect(String(reports[1]![0])).toBe('Error: down again')
    // The five, and the one just before the interval ended.
    expect(reports[1]![1]).toBe(6)
    expect(reports[1]![2]).toEqual({ stream: 'b' })
  })

  it('keys on the RewindError code, else the error name, so kinds are throttled apart', () => {
    const { report, reports } = throttled()
    report(new RewindError('ERR_STORE_UNAVAILABLE', 'down'))
    report(new RewindError('ERR_STORE_UNAVAILABLE', 'down differently'))
    report(new RewindError('ERR_HISTORY_LOST', 'lost'))
    report(new TypeError('filter bug'))
    report(new TypeError('another filter bug'))
    report(new Error('plain'))
    report('a string')
    report('another string')
    expect(reports.map(([error]) => (error instanceof RewindError ? error.code : String(error)))).toEqual([
      'ERR_STORE_UNAVAILABLE',
      'ERR_HISTORY_LOST',
      'TypeError: filter bug',
      'Error: plain',
      'a string',
    ])
  })

  it('never goes silent: after a flood of distinct messages (1000 streams failing), it still reports', () => {
    const { report, reports, advance } = throttled(1000)
    for (let i = 0; i < 1000; i++) report(new RewindError('ERR_STORE_UNAVAILABLE', `stream ${i} failed`))
    expect(reports).toHaveLength(1)
    for (let minute = 1; minute <= 3; minute++) {
      advance(1000)
      report(new RewindError('ERR_STORE_UNAVAILABLE', `stream ${1000 + minute} failed`))
      expect(reports).toHaveLength(1 + minute)
    }
    expect(reports[1]![1]).toBe(999)
  })

  it('stays bounded when errors invent new names: at most a fixed number of reports per interval', () => {
    const { report, reports, advance } = throttled(1000)
    for (let i = 0; i < 10_000; i++) {
      const error = new Error('boom')
      error.name = `Error${i}`
      report(error)
    }
    const first = reports.length
    expect(first).toBeLessThanOrEqual(65)
    expect(first).toBeGreaterThan(1)
    advance(1000)
    const error = new Error('boom')
    error.name = 'Brand new'
    report(error)
    expect(reports.length).toBe(first + 1)
  })

  it('holds for any arrivals: per kind, a report at most once per interval, and every error counted once', () => {
    const arrival = fc.record({
      kind: fc.integer({ min: 0, max: 3 }),
      after: fc.integer({ min: 0, max: 400 }),
    })
    fc.assert(
      fc.property(
        fc.array(arrival, { maxLength: 200 }),
        fc.integer({ min: 0, max: 500 }),
        (arrivals, interval) => {
          let clock = 0
          const reported: { kind: number; at: number; suppressed: number }[] = []
          const report = throttleErrors<[number]>(
            (_error, suppressed, kind) => reported.push({ kind, at: clock, suppressed }),
            {
              interval,
              now: () => clock,
            },
          )
          const last = new Map<number, number>()
          for (const { kind, after } of arrivals) {
            clock += after
            const before = reported.length
            report(new RewindError(REWIND_ERROR_CODES[kind]!, 'x'), kind)
            const previous = last.get(kind)
            // Reported exactly when it is the first of its kind or the interval has passed since the last report.
            const due = previous === undefined || clock - previous >= interval
            expect(reported.length - before).toBe(due ? 1 : 0)
            if (due) last.set(kind, clock)
          }
          // Reports plus the suppressed counts they carry never exceed the errors that arrived.
          const accounted = reported.reduce((sum, r) => sum + 1 + r.suppressed, 0)
          expect(accounted).toBeLessThanOrEqual(arrivals.length)
        },
      ),
    )
  })

  it('uses no timer: everything is decided when an error arrives', () => {
    vi.useFakeTimers()
    const report = throttleErrors(() => {})
    for (let i = 0; i < 100; i++) report(new Error(`e${i}`))
    expect(vi.getTimerCount()).toBe(0)
  })

  it('refuses a bad interval or clock with ERR_INVALID_ARGUMENT', () => {
    for (const interval of [-1, 1.5, Number.NaN]) {
      expect(() => throttleErrors(() => {}, { interval })).toThrow(
        expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT', field: 'interval' }),
      )
    }
    expect(() => throttleErrors(() => {}, { now: 5 as never })).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT', field: 'now' }),
    )
  })

  it('refuses a report that is not a function at once, with ERR_INVALID_ARGUMENT on `report`', () => {
    for (const [report, got] of [
      [undefined, 'undefined'],
      ['console.error', 'string'],
      [null, 'object'],
    ] as const) {
      const error = thrownAs(() => throttleErrors(report as never), RewindError)
      expect(error.code).toBe('ERR_INVALID_ARGUMENT')
      expect(error.field).toBe('report')
      expect(error.message).toBe(`report must be a function, got ${got}`)
    }
  })

  it('reports at once when the clock went back, rather than staying silent until it catches up', () => {
    const { report, reports, advance } = throttled(1000)
    report(new Error('first'))
    report(new Error('suppressed'))
    advance(-5000)
    report(new Error('after the clock went back'))
    expect(reports.map(([error, suppressed]) => [String(error), suppressed])).toEqual([
      ['Error: first', 0],
      ['Error: after the clock went back', 1],
    ])
  })

  it('keys a value that is not an Error on its type, so a string and a number are kinds apart', () => {
    const { report, reports } = throttled()
    report('a string')
    report(42)
    report(undefined)
    report({ message: 'an object' })
    // The same kinds again: `null` is of type 'object'.
    report(null)
    report(7)
    expect(reports.map(([error]) => error)).toEqual(['a string', 42, undefined, { message: 'an object' }])
  })

  it('keeps the slot of the kinds past the limit apart from every real kind, an empty name included', () => {
    const { report, reports } = throttled()
    const named = (name: string) => Object.assign(new Error(name), { name })
    // An empty name is a kind of its own; then kinds up to the limit (64 in all).
    for (let i = 0; i < 64; i++) report(named(i === 0 ? '' : `Kind${i}`))
    expect(reports).toHaveLength(64)
    // The first kind past the limit opens the shared slot, which is reported once...
    report(named('Late1'))
    report(named('Late2'))
    expect(reports).toHaveLength(65)
    expect((reports[64]![0] as Error).name).toBe('Late1')
    // ...and the kinds tracked before it keep their own slots.
    report(named(''))
    expect(reports).toHaveLength(65)
  })

  it('is exported from the package entry', () => {
    expect(api.throttleErrors).toBe(throttleErrors)
    expect('reportOncePerMessage' in api).toBe(false)
  })
})

describe('storeErrorReport', () => {
  afterEach(() => {
    vi.restoreAllMocks()
  })

  it("gives every failure to the store's onError, and a hook that throws does not stop the caller", () => {
    const seen: unknown[] = []
    const report = storeErrorReport('rewind/test', (error) => {
      seen.push(error)
      throw new Error('the hook failed')
    })
    const first = new Error('lost the connection')
    expect(() => report(first)).not.toThrow()
    expect(() => report(first)).not.toThrow()
    expect(seen).toEqual([first, first])
  })

  it('without onError, logs with console.error as the hub does, each kind once a minute, naming the store', () => {
    const logged = vi.spyOn(console, 'error').mockImplementation(() => {})
    const warned = vi.spyOn(console, 'warn').mockImplementation(() => {})
    const report = storeErrorReport('rewind/test', undefined)
    report(new RewindError('ERR_STORE_UNAVAILABLE', 'down'))
    report(new RewindError('ERR_STORE_UNAVAILABLE', 'still down'))
    report(new RewindError('ERR_HISTORY_LOST', 'trimmed'))
    expect(logged).toHaveBeenCalledTimes(2)
    expect(String(logged.mock.calls[0]![0])).toMatch(/^\[rewind\/test\] .*set onError to handle them/)
    expect(warned).not.toHaveBeenCalled()
  })

  it('without onError, says how many of a kind were left out since the last line, only when some were', () => {
    vi.useFakeTimers({ toFake: ['Date'] })
    vi.setSystemTime(1_000_000)
    const logged = vi.spyOn(console, 'error').mockImplementation(() => {})
    const report = storeErrorReport('rewind/test', undefined)
    const errors = [1, 2, 3, 4, 5].map((n) => new RewindError('ERR_STORE_UNAVAILABLE', `down ${n}`))
    report(errors[0])
    report(errors[1])
    report(errors[2])
    vi.setSystemTime(1_000_000 + DEFAULT_ERROR_REPORT_INTERVAL)
    report(errors[3])
    vi.setSystemTime(1_000_000 + 2 * DEFAULT_ERROR_REPORT_INTERVAL)
    report(errors[4])
    expect(logged.mock.calls).toEqual([
      ['[rewind/test] (each kind is logged at most once a minute; set onError to handle them):', errors[0]],
      [
        '[rewind/test] (each kind is logged at most once a minute; 2 more since the last one; set onError to handle them):',
        errors[3],
      ],
      ['[rewind/test] (each kind is logged at most once a minute; set onError to handle them):', errors[4]],
    ])
  })
})
