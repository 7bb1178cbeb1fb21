import { existsSync, readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { describe, expect, it, vi } from 'vitest'
import { REWIND_ERROR_CODES, RewindError, reportOncePerMessage } from '../src/errors.js'
import * as api from '../src/index.js'

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

describe('reportOncePerMessage', () => {
  it('reports each distinct error once, with the arguments of its first occurrence', () => {
    const report = vi.fn()
    const once = reportOncePerMessage(report)
    once(new Error('store down'), { stream: 'a' })
    once(new Error('store down'), { stream: 'b' })
    once(new TypeError('store down'), { stream: 'c' })
    once('plain string', { stream: 'd' })
    once('plain string', { stream: 'e' })
    expect(report.mock.calls.map(([error, info]) => [String(error), info])).toEqual([
      ['Error: store down', { stream: 'a' }],
      ['TypeError: store down', { stream: 'c' }],
      ['plain string', { stream: 'd' }],
    ])
  })

  it('stops after the given number of distinct messages, so a flood of new ones stays bounded', () => {
    const report = vi.fn()
    const once = reportOncePerMessage(report, 3)
    for (let i = 0; i < 10; i++) once(new Error(`failure ${i}`))
    expect(report).toHaveBeenCalledTimes(3)
  })
})
