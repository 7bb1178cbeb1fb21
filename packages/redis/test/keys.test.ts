/**
 * The key layout: every key of a stream in the slot of its hash tag, whatever braces its name holds,
 * and no two streams on one key. The slot function itself is checked against known vectors here and
 * against a real cluster's `CLUSTER KEYSLOT` in cluster.test.ts.
 */
import { RewindError } from '@rewind/core'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { thrownBy } from '../../../test/support/throws.js'
import { checkPrefix, streamKey } from '../src/keys.js'
import { keySlot } from '../src/slots.js'

/** Names made mostly of braces and a few other characters, so tags and near-tags are common. */
const name = fc.string({
  unit: fc.constantFrom('{', '}', 'a', 'b', ':', '#', 'é', '0'),
  minLength: 1,
  maxLength: 12,
})
const anyName = fc.oneof(name, fc.string({ minLength: 1, maxLength: 40, unit: 'grapheme' }))
const prefix = fc.string({ maxLength: 8 }).filter((p) => !p.includes('{') && !p.includes('}'))

describe('streamKey', () => {
  it('keeps the layout stable: the name as its tag, or a hash of it when it has a brace', () => {
    expect(streamKey('rewind:', 'news')).toBe('rewind:{news}')
    expect(streamKey('rewind:', 'rewind:response:abc')).toBe('rewind:{rewind:response:abc}')
    expect(streamKey('rewind:', 'a{b}')).toBe('rewind:{#28abe73a16bdb998}#a{b}')
  })

  it('gives distinct streams distinct keys', () => {
    fc.assert(
      fc.property(prefix, anyName, anyName, (p, a, b) => {
        fc.pre(a !== b)
        expect(streamKey(p, a)).not.toBe(streamKey(p, b))
      }),
      { numRuns: 2000 },
    )
  })

  it('puts a stream and its record (the key plus a suffix) in one slot, whatever the prefix', () => {
    fc.assert(
      fc.property(prefix, prefix, anyName, (p, q, stream) => {
        const slot = keySlot(streamKey(p, stream))
        expect(keySlot(`${streamKey(p, stream)}:record`)).toBe(slot)
        // The tag alone chooses the slot: the prefix does not.
        expect(keySlot(streamKey(q, stream))).toBe(slot)
      }),
      { numRuns: 2000 },
    )
  })

  it("does not let a name's braces choose the slot", () => {
    // Were `a{b}` used as is, Redis would hash `b`; its key is tagged with a hash of the whole name.
    expect(keySlot(streamKey('p:', 'a{b}'))).toBe(keySlot('{#28abe73a16bdb998}'))
    expect(keySlot(streamKey('p:', 'a{b}'))).not.toBe(keySlot('b'))
  })

  it('refuses a prefix with a brace, naming the option', () => {
    for (const bad of ['{app}:', 'a}', '{']) {
      const caught = thrownBy(() => checkPrefix(bad))
      expect(caught).toBeInstanceOf(RewindError)
      expect((caught as RewindError).field).toBe('prefix')
    }
    expect(checkPrefix('rewind:')).toBe('rewind:')
  })
})

describe('keySlot', () => {
  it('agrees with Redis on known keys', () => {
    // Values from CLUSTER KEYSLOT on Redis 7.0; 123456789 is CRC16/XMODEM's check value (0x31C3).
    const known: [string, number][] = [
      ['123456789', 12739],
      ['foo', 12182],
      ['bar', 5061],
      ['foo{}{bar}', 8363],
      ['foo{{bar}}zap', 4015],
      ['foo{bar}{zap}', 5061],
      ['é{x', 8265],
      ['x{é}', 10180],
    ]
    for (const [key, slot] of known) expect(keySlot(key), key).toBe(slot)
  })

  it('is always a slot number', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 64 }), (key) => {
        const slot = keySlot(key)
        expect(Number.isInteger(slot) && slot >= 0 && slot < 16384).toBe(true)
      }),
    )
  })
})
