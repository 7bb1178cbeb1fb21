import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { isAfter, type Position } from '../src/store.js'

const at = (major: number, minor: number): Position => ({ id: `${major}-${minor}`, major, minor })

describe('isAfter', () => {
  it('orders positions by major, then minor, strictly', () => {
    expect(isAfter(at(1, 5), at(1, 0))).toBe(true)
    expect(isAfter(at(0, 5), at(1, 0))).toBe(false)
    expect(isAfter(at(1, 0), at(1, 0))).toBe(false)
    const position = fc
      .tuple(fc.integer({ min: 0, max: 3 }), fc.integer({ min: 0, max: 3 }))
      .map(([major, minor]) => at(major, minor))
    fc.assert(
      fc.property(position, position, (a, b) => {
        const lexicographic = a.major !== b.major ? a.major > b.major : a.minor > b.minor
        expect(isAfter(a, b)).toBe(lexicographic)
      }),
    )
  })
})
