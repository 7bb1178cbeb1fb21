import fc from 'fast-check'

const SURROGATES = 0xe000 - 0xd800

/**
 * Any Unicode code point but a lone surrogate, as one string. The same set as fast-check's
 * `unit: 'binary'`, whose construction alone costs seconds.
 */
export const codePoint: fc.Arbitrary<string> = fc
  .integer({ min: 0, max: 0x10ffff - SURROGATES })
  .map((code) => String.fromCodePoint(code < 0xd800 ? code : code + SURROGATES))

/** Strings of any code points (no lone surrogates). */
export function unicodeString(
  constraints: { minLength?: number; maxLength?: number } = {},
): fc.Arbitrary<string> {
  return fc.string({ ...constraints, unit: codePoint })
}
