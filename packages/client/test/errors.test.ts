import { existsSync, readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { REWIND_CLIENT_ERROR_CODES, RewindClientError } from '../src/errors.js'
import * as api from '../src/index.js'

const README = fileURLToPath(new URL('../README.md', import.meta.url))

describe('REWIND_CLIENT_ERROR_CODES', () => {
  it('lists exactly the documented codes, in order', () => {
    // Codes are public API: adding, removing or renaming one is a breaking change that must be deliberate.
    expect(REWIND_CLIENT_ERROR_CODES).toEqual([
      'ERR_INVALID_ARGUMENT',
      'ERR_NETWORK',
      'ERR_HTTP_STATUS',
      'ERR_CONTENT_TYPE',
      'ERR_NOT_RESUMABLE',
      'ERR_EVENT_TOO_LARGE',
      'ERR_STALLED',
      'ERR_INVALID_JSON',
    ])
    expect(Object.isFrozen(REWIND_CLIENT_ERROR_CODES)).toBe(true)
  })

  it('is exported from the package entry with RewindClientError', () => {
    expect(api.REWIND_CLIENT_ERROR_CODES).toBe(REWIND_CLIENT_ERROR_CODES)
    expect(api.RewindClientError).toBe(RewindClientError)
  })

  it.skipIf(!existsSync(README))('documents every code in packages/client/README.md', () => {
    const readme = readFileSync(README, 'utf8')
    expect(REWIND_CLIENT_ERROR_CODES.filter((code) => !readme.includes(code))).toEqual([])
  })
})

describe('RewindClientError', () => {
  it('is an Error named RewindClientError with a code, a status, a field and a cause', () => {
    const cause = new TypeError('fetch failed')
    const error = new RewindClientError('ERR_HTTP_STATUS', 'GET /events answered 401', { status: 401, cause })
    expect(error).toBeInstanceOf(Error)
    expect(error.name).toBe('RewindClientError')
    expect(error.code).toBe('ERR_HTTP_STATUS')
    expect(error.status).toBe(401)
    expect(error.field).toBeUndefined()
    expect(error.cause).toBe(cause)
    expect(String(error)).toBe('RewindClientError: GET /events answered 401')
    expect('cause' in new RewindClientError('ERR_STALLED', 'quiet')).toBe(false)
  })
})
