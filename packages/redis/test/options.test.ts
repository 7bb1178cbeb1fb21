/**
 * The store's options on their own (no Redis): the defaults in full, every refusal a typed
 * `ERR_INVALID_ARGUMENT` naming its option with a message that says what was wrong, and the one
 * bound between two options (the tail waits for `blockMs + commandTimeout` in one timer).
 */
import { MAX_TIMER_DELAY, RewindError } from '@rewind/core'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { thrownAs } from '../../../test/support/throws.js'
import { CommandConnection } from '../src/connection.js'
import { type RedisStoreOptions, resolveOptions } from '../src/options.js'

/** The error `resolveOptions(options)` throws, which must be an `ERR_INVALID_ARGUMENT`. */
function refusal(options: unknown): RewindError {
  const error = thrownAs(() => resolveOptions(options as RedisStoreOptions), RewindError)
  expect(error.code).toBe('ERR_INVALID_ARGUMENT')
  return error
}

describe('resolveOptions', () => {
  it('gives every default', () => {
    const { deserialize, onError, ...rest } = resolveOptions({})
    expect(rest).toEqual({
      prefix: 'rewind:',
      maxLen: 1000,
      trim: 'approximate',
      maxAge: Number.POSITIVE_INFINITY,
      streamTtl: 86_400_000,
      blockMs: 5000,
      commandTimeout: 2000,
      minReconnectDelay: 100,
      maxReconnectDelay: 5000,
    })
    expect(deserialize).toBe(JSON.parse)
    expect(onError).toBeUndefined()
  })

  it('keeps every value given', () => {
    const given = {
      prefix: '',
      maxLen: 7,
      trim: 'exact',
      maxAge: 60_000,
      streamTtl: 5000,
      deserialize: (data: string) => data.length,
      onError: () => {},
      blockMs: 250,
      commandTimeout: 300,
      minReconnectDelay: 20,
      maxReconnectDelay: 40,
    } as const
    expect(resolveOptions(given)).toEqual(given)
  })

  it('refuses what is not an options object', () => {
    for (const [options, shown] of [
      [null, 'null'],
      ['redis://x', '"redis://x"'],
      [5, '5'],
    ] as const) {
      const error = refusal(options)
      expect(error.field).toBe('options')
      expect(error.message).toBe(`createRedisStore takes an options object, got ${shown}`)
    }
  })

  it('refuses a prefix that is not a string, or that has a brace', () => {
    const notString = refusal({ prefix: 3 })
    expect(notString.field).toBe('prefix')
    expect(notString.message).toBe('prefix must be a string, got 3')
    const braced = refusal({ prefix: 'a{b}' })
    expect(braced.field).toBe('prefix')
    expect(braced.message).toBe(
      'prefix must not contain "{" or "}", got "a{b}": the store puts each stream\'s hash tag after the prefix itself, so Redis Cluster keeps each stream\'s keys in one slot; remove the braces',
    )
  })

  it('refuses a trim mode other than approximate or exact', () => {
    for (const trim of ['sometimes', 'Exact', '', 1]) {
      const error = refusal({ trim })
      expect(error.field).toBe('trim')
      expect(error.message).toBe(
        `trim must be 'approximate' or 'exact', got ${typeof trim === 'string' ? JSON.stringify(trim) : trim}`,
      )
    }
    expect(resolveOptions({ trim: 'approximate' }).trim).toBe('approximate')
  })

  it('refuses bounds that are not positive integers or Infinity, naming the unit', () => {
    for (const field of ['maxAge', 'streamTtl'] as const) {
      for (const value of [0, -1, 1.5, Number.NaN, Number.NEGATIVE_INFINITY, '10']) {
        const error = refusal({ [field]: value })
        expect(error.field).toBe(field)
        expect(error.message).toMatch(
          new RegExp(`^${field} must be a positive integer \\(milliseconds\\) or Infinity, got `),
        )
      }
      expect(resolveOptions({ [field]: 1 })[field]).toBe(1)
    }
  })

  it('refuses delays that are not positive, for blockMs and commandTimeout', () => {
    for (const field of ['blockMs', 'commandTimeout'] as const) {
      for (const value of [0, -5, 2.5, '100']) expect(refusal({ [field]: value }).field).toBe(field)
      expect(resolveOptions({ [field]: 1 })[field]).toBe(1)
    }
  })

  it('takes blockMs + commandTimeout up to the longest timer, and refuses one millisecond more', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: MAX_TIMER_DELAY - 1 }),
        fc.integer({ min: 0, max: 1 }),
        (blockMs, over) => {
          const commandTimeout = MAX_TIMER_DELAY - blockMs + over
          if (over === 0) {
            expect(resolveOptions({ blockMs, commandTimeout })).toMatchObject({ blockMs, commandTimeout })
            return
          }
          const error = refusal({ blockMs, commandTimeout })
          expect(error.field).toBe('blockMs')
          expect(error.message).toBe(
            `blockMs + commandTimeout (${blockMs} + ${commandTimeout}) must be at most ${MAX_TIMER_DELAY} ms: the live tail waits for both in one timer, and Node runs a longer timer after 1 ms; lower blockMs`,
          )
        },
      ),
    )
  })

  it('lets maxReconnectDelay default up to a larger minReconnectDelay', () => {
    expect(resolveOptions({ minReconnectDelay: 9000 })).toMatchObject({
      minReconnectDelay: 9000,
      maxReconnectDelay: 9000,
    })
  })

  it('connects to redis://127.0.0.1:6379 when given no server', async () => {
    const connection = new CommandConnection(undefined, undefined, resolveOptions({}), () => {})
    try {
      const { host, port } = (connection.client as unknown as { options: { host: string; port: number } })
        .options
      expect({ host, port }).toEqual({ host: '127.0.0.1', port: 6379 })
    } finally {
      await connection.close()
    }
  })
})
