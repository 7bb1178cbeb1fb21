import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import {
  LAST_EVENT_ID_QUERY_PARAMETER,
  MAX_LAST_EVENT_ID_LENGTH,
  parseLastEventId,
  readResumeId,
} from '../src/last-event-id.js'
import { unicodeString } from './helpers/arbitraries.js'

const PRINTABLE_ASCII = /^[\x20-\x7e]*$/

describe('parseLastEventId', () => {
  it('reads no header and an empty header as a fresh connection', () => {
    expect(parseLastEventId(undefined)).toBeUndefined()
    expect(parseLastEventId('')).toBeUndefined()
    expect(parseLastEventId([])).toBeUndefined()
    expect(parseLastEventId([''])).toBeUndefined()
  })

  it('returns a printable ASCII id unchanged', () => {
    expect(parseLastEventId('k3f9x-42')).toBe('k3f9x-42')
    expect(parseLastEventId('1700000000000-3')).toBe('1700000000000-3')
    expect(parseLastEventId(' spaced id ~')).toBe(' spaced id ~')
    expect(parseLastEventId(['k3f9x-42'])).toBe('k3f9x-42')
  })

  it('accepts 128 characters and reports 129 as malformed', () => {
    expect(MAX_LAST_EVENT_ID_LENGTH).toBe(128)
    expect(parseLastEventId('a'.repeat(128))).toBe('a'.repeat(128))
    expect(parseLastEventId('a'.repeat(129))).toBeNull()
  })

  it('reports UTF-8 bytes decoded as latin1 as malformed', () => {
    // What Node hands over when a client sends "é" (0xC3 0xA9) in the header.
    const latin1 = Buffer.from('é', 'utf8').toString('latin1')
    expect(latin1).toBe('Ã©')
    expect(parseLastEventId(latin1)).toBeNull()
    expect(parseLastEventId(`abc-${latin1}`)).toBeNull()
    expect(parseLastEventId('é')).toBeNull()
    expect(parseLastEventId('😀')).toBeNull()
  })

  it('reports control characters, NUL and DEL as malformed', () => {
    for (const bad of ['\0', 'a\0b', '\t', 'a\tb', '\r', '\n', '\x1b[31m', '\x7f', 'id\x7f']) {
      expect(parseLastEventId(bad)).toBeNull()
    }
  })

  it('reports a repeated header as malformed instead of picking one', () => {
    expect(parseLastEventId(['a-1', 'a-2'])).toBeNull()
    expect(parseLastEventId(['a-1', 'a-1'])).toBeNull()
    expect(parseLastEventId(['', ''])).toBeNull()
  })

  it('never throws, and gives a fresh connection, malformed, or the same printable ASCII string', () => {
    const anyString = fc.oneof(
      unicodeString({ maxLength: 30 }),
      fc.string({ unit: 'binary-ascii', maxLength: 200 }),
      fc.string({ unit: 'grapheme-ascii', maxLength: 200 }),
    )
    fc.assert(
      fc.property(anyString, (value) => {
        const result = parseLastEventId(value)
        if (result === undefined) expect(value).toBe('')
        else if (result === null) {
          expect(value.length > 128 || !PRINTABLE_ASCII.test(value)).toBe(true)
        } else {
          expect(result).toBe(value)
          expect(PRINTABLE_ASCII.test(result)).toBe(true)
          expect(result.length).toBeGreaterThan(0)
          expect(result.length).toBeLessThanOrEqual(128)
        }
      }),
      { numRuns: 300 },
    )
    fc.assert(
      fc.property(fc.array(anyString, { maxLength: 4 }), (values) => {
        const result = parseLastEventId(values)
        if (values.length >= 2) expect(result).toBeNull()
        else expect(result).toBe(parseLastEventId(values[0]))
      }),
    )
  })
})

describe('readResumeId', () => {
  it('prefers the Last-Event-ID header over the query parameter', () => {
    expect(readResumeId({ 'last-event-id': 'a-2' }, '/events?lastEventId=a-1')).toBe('a-2')
  })

  it('reports a malformed header as malformed even when the query has a good id', () => {
    expect(readResumeId({ 'last-event-id': 'Ã©' }, '/events?lastEventId=a-1')).toBeNull()
  })

  it('falls back to the lastEventId query parameter without the header', () => {
    expect(LAST_EVENT_ID_QUERY_PARAMETER).toBe('lastEventId')
    expect(readResumeId({}, '/events?lastEventId=a-1')).toBe('a-1')
    expect(readResumeId({}, '/events?x=1&lastEventId=a-1&y=2')).toBe('a-1')
    expect(readResumeId({ 'last-event-id': undefined }, '/events?lastEventId=a-1')).toBe('a-1')
    // An empty header is what a client sends with no id yet.
    expect(readResumeId({ 'last-event-id': '' }, '/events?lastEventId=a-1')).toBe('a-1')
  })

  it('percent-decodes the query parameter', () => {
    expect(readResumeId({}, '/events?lastEventId=a%2D1%20b')).toBe('a-1 b')
    expect(readResumeId({}, `/events?lastEventId=${encodeURIComponent('1700000000000-3')}`)).toBe(
      '1700000000000-3',
    )
    // UTF-8 escapes decode to non-ASCII characters: malformed.
    expect(readResumeId({}, '/events?lastEventId=%C3%A9')).toBeNull()
    expect(readResumeId({}, '/events?lastEventId=%00')).toBeNull()
  })

  it('treats a missing or empty query parameter as a fresh connection', () => {
    expect(readResumeId({}, undefined)).toBeUndefined()
    expect(readResumeId({}, '/events')).toBeUndefined()
    expect(readResumeId({}, '/events?')).toBeUndefined()
    expect(readResumeId({}, '/events?lastEventId=')).toBeUndefined()
    expect(readResumeId({}, '/events?lastEventIdX=a-1')).toBeUndefined()
    expect(readResumeId({}, '/events?other=lastEventId')).toBeUndefined()
  })

  it('reads only what follows the question mark as the query, wherever the path ends', () => {
    // A stream served at the root: the `?` is the second character.
    expect(readResumeId({}, '/?lastEventId=a-1')).toBe('a-1')
    expect(readResumeId({}, '?lastEventId=a-1')).toBe('a-1')
    // No `?` at all: a path that merely contains the parameter's text is not a query.
    expect(readResumeId({}, '/x&lastEventId=a-1')).toBeUndefined()
    expect(readResumeId({}, 'lastEventId=a-1')).toBeUndefined()
  })

  it('reports a repeated or too long query parameter as malformed', () => {
    expect(readResumeId({}, '/events?lastEventId=a-1&lastEventId=a-2')).toBeNull()
    expect(readResumeId({}, `/events?lastEventId=${'a'.repeat(129)}`)).toBeNull()
    expect(readResumeId({}, `/events?lastEventId=${'a'.repeat(128)}`)).toBe('a'.repeat(128))
  })

  it('reports a repeated header (an array value) as malformed', () => {
    expect(readResumeId({ 'last-event-id': ['a-1', 'a-2'] }, '/events?lastEventId=a-1')).toBeNull()
  })

  it('never throws on any header or URL, and only returns printable ASCII ids of at most 128 characters', () => {
    const text = fc.oneof(
      unicodeString({ maxLength: 30 }),
      fc.string({ unit: 'binary-ascii', maxLength: 160 }),
      fc.constantFrom('%', '%zz', '%C3', '%E0%A4%A', '%%', '&&', '==', '+', '#'),
    )
    const header = fc.oneof(fc.constant(undefined), text, fc.array(text, { maxLength: 3 }))
    const url = fc.oneof(
      fc.constant(undefined),
      text,
      fc
        .tuple(
          fc.constantFrom('/e?', '?', '/e?a=1&', ''),
          fc.array(fc.oneof(text, fc.constantFrom('lastEventId=', '&'))),
        )
        .map(([start, parts]) => start + parts.join('')),
    )
    fc.assert(
      fc.property(header, url, (value, target) => {
        const result = readResumeId(value === undefined ? {} : { 'last-event-id': value }, target)
        if (typeof result === 'string') {
          expect(PRINTABLE_ASCII.test(result)).toBe(true)
          expect(result.length).toBeGreaterThan(0)
          expect(result.length).toBeLessThanOrEqual(128)
        } else {
          expect(result === undefined || result === null).toBe(true)
        }
      }),
      { numRuns: 300 },
    )
  })
})
