/**
 * The slow, exact side of stream ids: `orderOf` reads short ids without BigInt, and everything else
 * (a long part, or text that is no id at all) through the parser, which never orders a non-id as a
 * real position. And the constants the store starts an empty stream from.
 */
import { describe, expect, it } from 'vitest'
import {
  compareStreamIds,
  MAX_ID_PART,
  orderOf,
  type StreamId,
  toPosition,
  ZERO_ID,
  ZERO_POSITION,
} from '../src/ids.js'

const NOT_AN_ORDER = { major: Number.NaN, minor: Number.NaN }

describe('orderOf', () => {
  it('gives no order (NaN) to text that is not an id, without throwing', () => {
    for (const text of [
      '',
      'x',
      '12',
      '-5',
      '-',
      // Digits, but a part past 2^64 - 1: no Redis id.
      '18446744073709551616-1',
      '99999999999999999999-1',
      '1-99999999999999999999',
      '123456789012345678901-0',
    ]) {
      expect(orderOf(text), text).toEqual(NOT_AN_ORDER)
    }
  })

  it('reads long parts exactly through the parser', () => {
    expect(orderOf('1234567890123456-7')).toEqual({ major: 1234567890123456, minor: 7 })
    expect(orderOf('7-1234567890123456')).toEqual({ major: 7, minor: 1234567890123456 })
    expect(orderOf(`3-${MAX_ID_PART}`)).toEqual({ major: 3, minor: Number.POSITIVE_INFINITY })
    expect(orderOf(`${MAX_ID_PART}-0`)).toEqual({ major: Number(MAX_ID_PART), minor: 0 })
  })

  it('reads the shortest and the longest short ids the same way', () => {
    expect(orderOf('1-0')).toEqual({ major: 1, minor: 0 })
    expect(orderOf('123456789012345-123456789012345')).toEqual({
      major: 123456789012345,
      minor: 123456789012345,
    })
  })
})

describe('compareStreamIds', () => {
  it('is 0 for equal ids, and orders by milliseconds, then by sequence', () => {
    const id = (ms: bigint, seq: bigint): StreamId => ({ ms, seq })
    const cases: [StreamId, StreamId, number][] = [
      [id(5n, 5n), id(5n, 5n), 0],
      [id(0n, 0n), id(0n, 0n), 0],
      [id(MAX_ID_PART, MAX_ID_PART), id(MAX_ID_PART, MAX_ID_PART), 0],
      [id(5n, 6n), id(5n, 5n), 1],
      [id(5n, 4n), id(5n, 5n), -1],
      [id(6n, 0n), id(5n, 9n), 1],
      [id(4n, 9n), id(5n, 0n), -1],
    ]
    for (const [a, b, expected] of cases)
      expect(compareStreamIds(a, b), `${a.ms}-${a.seq} vs ${b.ms}-${b.seq}`).toBe(expected)
  })
})

describe('the zero id', () => {
  it('is 0-0, and its position orders before every entry', () => {
    expect(ZERO_ID).toEqual({ ms: 0n, seq: 0n })
    expect(ZERO_POSITION).toEqual({ id: '0-0', major: 0, minor: 0 })
    expect(ZERO_POSITION).toEqual(toPosition(ZERO_ID))
    expect(Object.isFrozen(ZERO_ID) && Object.isFrozen(ZERO_POSITION)).toBe(true)
  })
})
