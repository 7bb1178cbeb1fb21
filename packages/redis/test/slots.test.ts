/**
 * The key → slot function against a plain, bit-by-bit CRC16/XMODEM and the hash-tag rule written
 * out once more, for every kind of key: braces anywhere, empty tags, non-ASCII text. Known slots
 * from a real Redis are in keys.test.ts, and a live cluster's in cluster.test.ts.
 */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { keySlot, SLOTS } from '../src/slots.js'

/** CRC16/XMODEM (polynomial 0x1021, initial 0), one bit at a time. */
function crc16(bytes: Uint8Array): number {
  let crc = 0
  for (const byte of bytes) {
    crc ^= byte << 8
    for (let bit = 0; bit < 8; bit++) crc = (crc & 0x8000 ? (crc << 1) ^ 0x1021 : crc << 1) & 0xffff
  }
  return crc
}

/** The cluster spec's rule: hash what lies between the first `{` and the next `}`, if anything does. */
function referenceSlot(key: string): number {
  const open = key.indexOf('{')
  const close = open === -1 ? -1 : key.indexOf('}', open + 1)
  const hashed = close > open + 1 ? key.slice(open + 1, close) : key
  return crc16(new TextEncoder().encode(hashed)) % 16384
}

const keys = fc.oneof(
  fc.string({ unit: fc.constantFrom('{', '}', 'a', 'é', '\u0000', '\uffff', 'z'), maxLength: 10 }),
  fc.string({ unit: 'grapheme', maxLength: 30 }),
  fc.string({ unit: 'binary', maxLength: 30 }),
)

describe('keySlot', () => {
  it('agrees with the plain CRC16 and the hash-tag rule for every key', () => {
    fc.assert(
      fc.property(keys, (key) => {
        expect(keySlot(key)).toBe(referenceSlot(key))
      }),
      { numRuns: 3000 },
    )
  })

  it('hashes the whole key when the tag is empty, unclosed, or closed before it opens', () => {
    for (const key of ['{}', 'a{}b', '{', 'a{b', '}', '}{', 'a}b{c', '{}{y}']) {
      expect(keySlot(key), key).toBe(crc16(new TextEncoder().encode(key)) % 16384)
    }
    expect(keySlot('x{y}z')).toBe(keySlot('y'))
    expect(keySlot('a{{b}')).toBe(keySlot('{b'))
  })

  it('checks every byte value of a one-byte key, and says the slot count', () => {
    expect(SLOTS).toBe(16384)
    for (let byte = 0; byte < 256; byte++) {
      const key = Buffer.from([byte]).toString('latin1')
      expect(keySlot(key), String(byte)).toBe(crc16(Buffer.from(key, 'utf8')) % 16384)
    }
  })
})
