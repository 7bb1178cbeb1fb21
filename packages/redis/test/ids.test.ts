/**
 * Stream ids: parsing, ordering, the id just before another, and positions that order exactly.
 */

import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { isAfter } from '../../core/src/store.js'
import {
  compareStreamIds,
  formatStreamId,
  MAX_ID_PART,
  orderOf,
  parseStreamId,
  previousStreamId,
  type StreamId,
  toPosition,
} from '../src/ids.js'

const part = fc.oneof(
  fc.bigInt({ min: 0n, max: 20n }),
  fc.bigInt({ min: 0n, max: 2n ** 53n }),
  fc.bigInt({ min: MAX_ID_PART - 3n, max: MAX_ID_PART }),
)
const streamId = fc.record({ ms: part, seq: part })
/** Ids Redis generates with `*`: real clock milliseconds and short sequences. */
const generatedId = fc.record({
  ms: fc.bigInt({ min: 0n, max: 2n ** 50n }),
  seq: fc.oneof(fc.bigInt({ min: 0n, max: 10_000n }), fc.constant(MAX_ID_PART)),
})

describe('stream ids', () => {
  it('parses complete ids only', () => {
    expect(parseStreamId('1526919030474-55')).toEqual({ ms: 1526919030474n, seq: 55n })
    expect(parseStreamId('0-0')).toEqual({ ms: 0n, seq: 0n })
    expect(parseStreamId('007-01')).toEqual({ ms: 7n, seq: 1n })
    expect(parseStreamId('18446744073709551615-18446744073709551615')).toEqual({
      ms: MAX_ID_PART,
      seq: MAX_ID_PART,
    })
    for (const bad of [
      '',
      '12',
      '12-',
      '-12',
      '1-2-3',
      '1_2',
      ' 1-2',
      '1-2 ',
      '+1-2',
      '1.5-2',
      '0x1-2',
      'k3f9x-42',
      '18446744073709551616-0',
      '0-18446744073709551616',
      '123456789012345678901-0',
      '١-٢',
    ]) {
      expect(parseStreamId(bad), bad).toBeUndefined()
    }
  })

  it('formats canonically and round-trips', () => {
    fc.assert(
      fc.property(streamId, (id) => {
        expect(parseStreamId(formatStreamId(id))).toEqual(id)
      }),
    )
  })

  it('steps back across the millisecond boundary, and not before 0-0', () => {
    expect(previousStreamId({ ms: 5n, seq: 3n })).toEqual({ ms: 5n, seq: 2n })
    expect(previousStreamId({ ms: 5n, seq: 0n })).toEqual({ ms: 4n, seq: MAX_ID_PART })
    expect(previousStreamId({ ms: 0n, seq: 1n })).toEqual({ ms: 0n, seq: 0n })
    expect(previousStreamId({ ms: 0n, seq: 0n })).toBeUndefined()
  })

  it('the previous id is the greatest id before: nothing fits between', () => {
    fc.assert(
      fc.property(streamId, streamId, (a, b) => {
        const previous = previousStreamId(a)
        if (previous === undefined) return
        expect(compareStreamIds(previous, a)).toBe(-1)
        // Any id before `a` is at most `previous`.
        if (compareStreamIds(b, a) < 0) expect(compareStreamIds(b, previous)).toBeLessThanOrEqual(0)
      }),
    )
  })

  it('orders like the numbers they are', () => {
    fc.assert(
      fc.property(streamId, streamId, (a, b) => {
        const expected = a.ms !== b.ms ? Math.sign(Number(a.ms - b.ms)) : Math.sign(Number(a.seq - b.seq))
        expect(compareStreamIds(a, b)).toBe(expected)
      }),
    )
  })

  it('gives positions that order exactly like the ids, the 2^64 - 1 sequence included', () => {
    const max = toPosition({ ms: 9n, seq: MAX_ID_PART })
    expect(max).toEqual({ id: '9-18446744073709551615', major: 9, minor: Number.POSITIVE_INFINITY })
    expect(isAfter(toPosition({ ms: 10n, seq: 0n }), max)).toBe(true)
    expect(isAfter(toPosition({ ms: 9n, seq: 123456n }), max)).toBe(false)
    fc.assert(
      fc.property(generatedId, generatedId, (a: StreamId, b: StreamId) => {
        const pa = toPosition(a)
        const pb = toPosition(b)
        expect(Number.isInteger(pa.major)).toBe(true)
        expect(isAfter(pa, pb)).toBe(compareStreamIds(a, b) > 0)
        expect(isAfter(pb, pa)).toBe(compareStreamIds(b, a) > 0)
      }),
    )
  })

  it('reads the order of a Redis id with or without BigInt alike', () => {
    fc.assert(
      fc.property(generatedId, (id) => {
        const position = toPosition(id)
        expect(orderOf(formatStreamId(id))).toEqual({ major: position.major, minor: position.minor })
      }),
    )
  })
})
