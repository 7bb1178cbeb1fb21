/**
 * The validators behind every option and argument check: each accepts exactly the values it
 * documents, and refuses the rest with a `RewindError` whose code, `field` and message say how to
 * fix the call (messages are part of the contract: callers and logs read them).
 */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { thrownAs, thrownBy } from '../../../test/support/throws.js'
import { RewindError } from '../src/errors.js'
import {
  assertStreamName,
  describeValue,
  gapPolicyOption,
  MAX_STREAM_NAME_LENGTH,
  nonNegativeInteger,
  optionalFunction,
  positiveInteger,
  positiveLimit,
} from '../src/validation.js'

/** The error `call` throws, checked to be a `RewindError` with `code` and `field`. */
function refusal(call: () => unknown, code: string, field: string): RewindError {
  const error = thrownAs(call, RewindError)
  expect(error.code).toBe(code)
  expect(error.field).toBe(field)
  return error
}

/** Every kind of value an untyped caller may pass, numbers of every sort included. */
const anyValue = fc.oneof(
  fc.anything(),
  fc.double(),
  fc.integer(),
  fc.constantFrom(0, -0, 1, -1, Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER + 1, Number.NaN),
  fc.constantFrom(Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, 1.5, '5', true, null, undefined),
  fc.bigInt(),
  fc.constant(Symbol('s')),
  fc.func(fc.anything()),
)

describe('describeValue', () => {
  it('quotes a string, shows a number, boolean, null or undefined as itself, and anything else by its type', () => {
    expect(describeValue('5')).toBe('"5"')
    expect(describeValue('')).toBe('""')
    expect(describeValue('a "b"\n')).toBe('"a \\"b\\"\\n"')
    expect(describeValue(5)).toBe('5')
    expect(describeValue(-1.5)).toBe('-1.5')
    expect(describeValue(Number.NaN)).toBe('NaN')
    expect(describeValue(Number.POSITIVE_INFINITY)).toBe('Infinity')
    expect(describeValue(true)).toBe('true')
    expect(describeValue(false)).toBe('false')
    expect(describeValue(null)).toBe('null')
    expect(describeValue(undefined)).toBe('undefined')
    expect(describeValue({ secret: 'x' })).toBe('object')
    expect(describeValue([1, 2])).toBe('object')
    expect(describeValue(() => 1)).toBe('function')
    expect(describeValue(5n)).toBe('bigint')
    expect(describeValue(Symbol('s'))).toBe('symbol')
  })

  it('holds for any value: never shows the contents of an object, a function or a symbol', () => {
    fc.assert(
      fc.property(anyValue, (value) => {
        const described = describeValue(value)
        if (typeof value === 'string') expect(described).toBe(JSON.stringify(value))
        else if (typeof value === 'number' || typeof value === 'boolean' || value == null) {
          expect(described).toBe(String(value))
        } else expect(described).toBe(typeof value)
      }),
    )
  })
})

describe('positiveInteger and nonNegativeInteger', () => {
  it('accept exactly the safe integers from 1 (from 0), and return them unchanged', () => {
    fc.assert(
      fc.property(anyValue, (value) => {
        const safe = typeof value === 'number' && Number.isSafeInteger(value)
        for (const [check, least] of [
          [positiveInteger, 1],
          [nonNegativeInteger, 0],
        ] as const) {
          if (safe && value >= least) expect(check('count', value)).toBe(value)
          else refusal(() => check('count', value), 'ERR_INVALID_ARGUMENT', 'count')
        }
      }),
    )
  })

  it('say what they want and what they got, naming the option', () => {
    expect(refusal(() => positiveInteger('limit', 0), 'ERR_INVALID_ARGUMENT', 'limit').message).toBe(
      'limit must be a positive integer, got 0',
    )
    expect(refusal(() => positiveInteger('limit', '5'), 'ERR_INVALID_ARGUMENT', 'limit').message).toBe(
      'limit must be a positive integer, got "5"',
    )
    expect(
      refusal(() => nonNegativeInteger('interval', -1), 'ERR_INVALID_ARGUMENT', 'interval').message,
    ).toBe('interval must be a non-negative integer, got -1')
    expect(
      refusal(() => nonNegativeInteger('interval', { ms: 5 }), 'ERR_INVALID_ARGUMENT', 'interval').message,
    ).toBe('interval must be a non-negative integer, got object')
  })
})

describe('positiveLimit', () => {
  it('accepts exactly the positive numbers, Infinity included', () => {
    fc.assert(
      fc.property(anyValue, (value) => {
        if (typeof value === 'number' && value > 0) expect(positiveLimit('maxBytes', value)).toBe(value)
        else refusal(() => positiveLimit('maxBytes', value as number), 'ERR_INVALID_ARGUMENT', 'maxBytes')
      }),
    )
    expect(positiveLimit('maxBytes', Number.POSITIVE_INFINITY)).toBe(Number.POSITIVE_INFINITY)
  })

  it('says that Infinity turns the limit off', () => {
    expect(refusal(() => positiveLimit('maxBytes', 0), 'ERR_INVALID_ARGUMENT', 'maxBytes').message).toBe(
      'maxBytes must be a positive number (or Infinity for no limit), got 0',
    )
  })
})

describe('optionalFunction', () => {
  it('accepts a function or undefined, and refuses anything else naming its type', () => {
    const fn = () => 1
    expect(optionalFunction('now', fn)).toBe(fn)
    expect(optionalFunction('now', undefined)).toBeUndefined()
    expect(refusal(() => optionalFunction('now', 5), 'ERR_INVALID_ARGUMENT', 'now').message).toBe(
      'now must be a function, got number',
    )
    expect(refusal(() => optionalFunction('now', null), 'ERR_INVALID_ARGUMENT', 'now').message).toBe(
      'now must be a function, got object',
    )
  })
})

describe('assertStreamName', () => {
  it(`accepts exactly the strings of 1 to ${MAX_STREAM_NAME_LENGTH} code units`, () => {
    fc.assert(
      fc.property(
        fc.oneof(
          anyValue,
          fc.string({ maxLength: MAX_STREAM_NAME_LENGTH + 2 }),
          fc.string({ minLength: 250 }),
        ),
        (stream) => {
          const valid =
            typeof stream === 'string' && stream.length >= 1 && stream.length <= MAX_STREAM_NAME_LENGTH
          if (valid) expect(thrownBy(() => assertStreamName(stream))).toBeUndefined()
          else refusal(() => assertStreamName(stream), 'ERR_INVALID_STREAM', 'stream')
        },
      ),
    )
  })

  it('says what a stream name is, and gives the length of a bad string (not its contents) or the type', () => {
    const limit = `a stream name must be a non-empty string of at most ${MAX_STREAM_NAME_LENGTH} characters`
    expect(refusal(() => assertStreamName(''), 'ERR_INVALID_STREAM', 'stream').message).toBe(
      `${limit}, got a string of length 0`,
    )
    expect(
      refusal(() => assertStreamName('s'.repeat(MAX_STREAM_NAME_LENGTH + 1)), 'ERR_INVALID_STREAM', 'stream')
        .message,
    ).toBe(`${limit}, got a string of length ${MAX_STREAM_NAME_LENGTH + 1}`)
    expect(refusal(() => assertStreamName(42), 'ERR_INVALID_STREAM', 'stream').message).toBe(
      `${limit}, got number`,
    )
  })
})

describe('gapPolicyOption', () => {
  it("accepts 'replay', 'reset' or undefined, and names the option and the value it refused", () => {
    expect(gapPolicyOption('gapPolicy', 'replay')).toBe('replay')
    expect(gapPolicyOption('gapPolicy', 'reset')).toBe('reset')
    expect(gapPolicyOption('gapPolicy', undefined)).toBeUndefined()
    expect(
      refusal(() => gapPolicyOption('gapPolicy', 'skip' as never), 'ERR_INVALID_ARGUMENT', 'gapPolicy')
        .message,
    ).toBe("gapPolicy must be 'replay' or 'reset', got skip")
  })
})
