import { createParser, type EventSourceMessage } from 'eventsource-parser'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { thrownBy } from '../../../test/support/throws.js'
import { RewindError } from '../src/errors.js'
import {
  assertFieldValue,
  encodeComment,
  encodeData,
  encodeEvent,
  encodeIdOnly,
  encodeRetry,
  serializeData,
} from '../src/frame.js'
import { unicodeString } from './helpers/arbitraries.js'
import { lastEventIdOf } from './helpers/memory-sink.js'

interface Parsed {
  events: EventSourceMessage[]
  retries: number[]
  comments: string[]
  errors: Error[]
}

/** Feeds the chunks to a fresh eventsource-parser, as a client receiving them one by one would. */
function parseChunks(chunks: readonly string[]): Parsed {
  const parsed: Parsed = { events: [], retries: [], comments: [], errors: [] }
  const parser = createParser({
    onEvent: (event) => parsed.events.push(event),
    onRetry: (retry) => parsed.retries.push(retry),
    onComment: (comment) => parsed.comments.push(comment),
    onError: (error) => parsed.errors.push(error),
  })
  for (const chunk of chunks) parser.feed(chunk)
  return parsed
}

function parse(text: string): Parsed {
  return parseChunks([text])
}

/** The data a spec-following client dispatches: CRLF and CR become LF (WHATWG HTML 9.2). */
function normalise(data: string): string {
  return data.replace(/\r\n|\r/g, '\n')
}

function splitAt(text: string, points: readonly number[]): string[] {
  const cuts = [...new Set(points.map((p) => p % (text.length + 1)))].sort((a, b) => a - b)
  const chunks: string[] = []
  let from = 0
  for (const cut of cuts) {
    chunks.push(text.slice(from, cut))
    from = cut
  }
  chunks.push(text.slice(from))
  return chunks
}

function expectRewindError(fn: () => unknown, code: string, field?: string): RewindError {
  const caught = thrownBy(fn)
  expect(caught).toBeInstanceOf(RewindError)
  const error = caught as RewindError
  expect(error.code).toBe(code)
  if (field !== undefined) expect(error.field).toBe(field)
  return error
}

// Pieces that stress the framing: every line break form, NUL, spaces the client strips, lines that
// look like fields, a BOM, astral characters.
const tricky = fc.constantFrom(
  '\r',
  '\n',
  '\r\n',
  '\n\r',
  '\r\r',
  '\n\n',
  '\0',
  ' ',
  '  ',
  ':',
  ': x',
  'data: x',
  'data:',
  'event: x',
  'id: 1',
  'retry: 5',
  'event:message',
  '\uFEFF',
  'é',
  '😀',
  '\u2028',
)
const codePoints = unicodeString({ maxLength: 4 })
// UTF-16 code units, lone surrogates included: JavaScript strings can hold them.
const codeUnits = fc.string({
  unit: fc.integer({ min: 0, max: 0xffff }).map((code) => String.fromCharCode(code)),
  maxLength: 4,
})

const dataString = fc.array(fc.oneof(tricky, codePoints), { maxLength: 12 }).map((parts) => parts.join(''))
const dataUnits = fc.array(fc.oneof(tricky, codeUnits), { maxLength: 12 }).map((parts) => parts.join(''))

const FORBIDDEN = /[\r\n\0]/
const fieldValue = fc
  .array(fc.oneof(tricky, codePoints), { maxLength: 6 })
  .map((parts) => parts.join('').replace(/[\r\n\0]/g, ''))
const eventName = fc.oneof(fc.constant(undefined), fc.constant(''), fieldValue)
const eventId = fc.oneof(fc.constant(undefined), fieldValue)
const forbiddenChar = fc.constantFrom('\r', '\n', '\0', '\r\n')
const withForbidden = fc
  .tuple(unicodeString({ maxLength: 8 }), forbiddenChar, unicodeString({ maxLength: 8 }))
  .map(([before, bad, after]) => before + bad + after)

function expectedEvent(fields: { id?: string | undefined; event?: string | undefined; data: string }) {
  return {
    id: fields.id,
    event: fields.event === '' ? undefined : fields.event,
    data: normalise(fields.data),
  }
}

describe('encodeEvent', () => {
  it('writes the documented example frame', () => {
    expect(encodeEvent({ id: '7', event: 'price', data: '1\n2' })).toBe(
      'id: 7\nevent: price\ndata: 1\ndata: 2\n\n',
    )
  })

  it('writes empty data as a bare data: line, which the client dispatches as an empty message', () => {
    const frame = encodeEvent({ data: '' })
    expect(frame).toBe('data:\n\n')
    expect(parse(frame).events).toEqual([{ id: undefined, event: undefined, data: '' }])
  })

  it('keeps leading spaces of a data line, which the client would otherwise strip', () => {
    expect(parse(encodeEvent({ data: '  two spaces\n one' })).events[0]?.data).toBe('  two spaces\n one')
  })

  it('keeps a data line that looks like another field as data', () => {
    const parsed = parse(encodeEvent({ data: 'id: 99\nevent: evil\nretry: 1\n: note' }))
    expect(parsed.events).toEqual([
      { id: undefined, event: undefined, data: 'id: 99\nevent: evil\nretry: 1\n: note' },
    ])
    expect(parsed.retries).toEqual([])
    expect(parsed.comments).toEqual([])
  })

  it('turns CRLF, CR and LF in data into LF-separated lines, and keeps trailing empty lines', () => {
    expect(parse(encodeEvent({ data: 'a\r\nb\rc\nd\r' })).events[0]?.data).toBe('a\nb\nc\nd\n')
    expect(parse(encodeEvent({ data: '\n' })).events[0]?.data).toBe('\n')
  })

  it('omits an empty event name, so the client sees a message event', () => {
    expect(encodeEvent({ event: '', data: 'x' })).not.toContain('event')
    expect(parse(encodeEvent({ event: '', data: 'x' })).events[0]?.event).toBeUndefined()
  })

  it('round-trips an empty id (which resets the client last event ID)', () => {
    const frame = encodeEvent({ id: '', data: 'x' })
    expect(parse(frame).events[0]?.id).toBe('')
    expect(lastEventIdOf(frame, 'previous')).toBe('')
  })

  it('round-trips any data, id and event name through eventsource-parser as exactly one event', () => {
    fc.assert(
      fc.property(dataUnits, eventId, eventName, (data, id, event) => {
        const frame = encodeEvent({ id, event, data })
        const parsed = parse(frame)
        expect(parsed.events).toEqual([expectedEvent({ id, event, data })])
        expect(parsed.errors).toEqual([])
        expect(parsed.retries).toEqual([])
        expect(parsed.comments).toEqual([])
        expect(frame.endsWith('\n\n')).toBe(true)
      }),
      { numRuns: 1000 },
    )
  })

  it('moves the client last event ID to the id of the frame, and leaves it alone without one', () => {
    fc.assert(
      fc.property(dataString, eventId, eventName, (data, id, event) => {
        expect(lastEventIdOf(encodeEvent({ id, event, data }), 'before')).toBe(id ?? 'before')
      }),
    )
  })

  it('never starts a frame with a byte order mark, even when the data starts with one', () => {
    fc.assert(
      fc.property(
        fc.constantFrom('\uFEFF', '\uFEFFx', ''),
        dataString,
        eventId,
        eventName,
        (bom, data, id, event) => {
          const frame = encodeEvent({ id, event, data: bom + data })
          expect(frame.charCodeAt(0)).not.toBe(0xfeff)
          const bytes = Buffer.from(frame)
          expect([...bytes.subarray(0, 3)]).not.toEqual([0xef, 0xbb, 0xbf])
          // As the first bytes of a stream, a leading BOM in data must survive (the client strips only one at the start).
          expect(parse(frame).events[0]?.data).toBe(normalise(bom + data))
        },
      ),
    )
  })

  it('parses the same when the frame arrives split at any single point', () => {
    fc.assert(
      fc.property(dataUnits, eventId, eventName, (data, id, event) => {
        const frame = encodeEvent({ id, event, data })
        const expected = [expectedEvent({ id, event, data })]
        for (let cut = 0; cut <= frame.length; cut++) {
          expect(parseChunks([frame.slice(0, cut), frame.slice(cut)]).events).toEqual(expected)
        }
      }),
      { numRuns: 200 },
    )
  })

  it('parses the same when a large frame arrives in many random pieces', () => {
    const large = fc.array(fc.oneof(tricky, codeUnits, fc.string({ minLength: 50, maxLength: 200 })), {
      minLength: 20,
      maxLength: 80,
    })
    fc.assert(
      fc.property(
        large.map((parts) => parts.join('')),
        eventId,
        eventName,
        fc.array(fc.nat(), { minLength: 1, maxLength: 40 }),
        (data, id, event, points) => {
          const frame = encodeEvent({ id, event, data })
          expect(parseChunks(splitAt(frame, points)).events).toEqual([expectedEvent({ id, event, data })])
        },
      ),
      { numRuns: 300 },
    )
  })

  it('decodes the same from UTF-8 bytes split at every byte boundary', () => {
    fc.assert(
      fc.property(dataString, eventId, eventName, (data, id, event) => {
        const bytes = Buffer.from(encodeEvent({ id, event, data }))
        const expected = [expectedEvent({ id, event, data })]
        for (let cut = 0; cut <= bytes.length; cut++) {
          const decoder = new TextDecoder('utf-8', { fatal: true })
          const chunks = [
            decoder.decode(bytes.subarray(0, cut), { stream: true }),
            decoder.decode(bytes.subarray(cut), { stream: true }),
            decoder.decode(),
          ]
          expect(parseChunks(chunks).events).toEqual(expected)
        }
      }),
      { numRuns: 100 },
    )
  })

  it('round-trips a sequence of frames, interleaved with comments and retry hints, in order', () => {
    const item = fc.oneof(
      {
        weight: 4,
        arbitrary: fc.record({
          kind: fc.constant('event' as const),
          data: dataUnits,
          id: eventId,
          event: eventName,
        }),
      },
      { weight: 1, arbitrary: fc.record({ kind: fc.constant('comment' as const), text: dataUnits }) },
      { weight: 1, arbitrary: fc.record({ kind: fc.constant('retry' as const), ms: fc.maxSafeNat() }) },
    )
    fc.assert(
      fc.property(
        fc.array(item, { maxLength: 12 }),
        fc.array(fc.nat(), { maxLength: 20 }),
        (items, points) => {
          let text = ''
          const events: ReturnType<typeof expectedEvent>[] = []
          const retries: number[] = []
          for (const it of items) {
            if (it.kind === 'event') {
              text += encodeEvent(it)
              events.push(expectedEvent(it))
            } else if (it.kind === 'comment') {
              text += encodeComment(it.text)
            } else {
              text += encodeRetry(it.ms)
              retries.push(it.ms)
            }
          }
          const whole = parse(text)
          expect(whole.events).toEqual(events)
          expect(whole.retries).toEqual(retries)
          expect(parseChunks(splitAt(text, points)).events).toEqual(events)
        },
      ),
      { numRuns: 300 },
    )
  })

  it('refuses an id or event name containing CR, LF or NUL with ERR_INVALID_FIELD', () => {
    fc.assert(
      fc.property(withForbidden, dataString, (bad, data) => {
        expectRewindError(() => encodeEvent({ id: bad, data }), 'ERR_INVALID_FIELD', 'id')
        expectRewindError(() => encodeEvent({ event: bad, data }), 'ERR_INVALID_FIELD', 'event')
        expectRewindError(() => encodeIdOnly(bad), 'ERR_INVALID_FIELD', 'id')
        expectRewindError(() => assertFieldValue('thing', bad), 'ERR_INVALID_FIELD', 'thing')
      }),
    )
  })

  it('refuses a non-string id or event name from plain JavaScript with ERR_INVALID_FIELD', () => {
    // Types keep this out of TypeScript; plain JS could otherwise write `event: 42` on the wire.
    for (const bad of [42, null, { toString: () => 'x' }, ['a']] as unknown as string[]) {
      const id = expectRewindError(() => encodeEvent({ id: bad, data: 'd' }), 'ERR_INVALID_FIELD', 'id')
      expect(id.message).toBe(`id must be a string, got ${typeof bad}`)
      expectRewindError(() => encodeEvent({ event: bad, data: 'd' }), 'ERR_INVALID_FIELD', 'event')
      expectRewindError(() => encodeIdOnly(bad), 'ERR_INVALID_FIELD', 'id')
    }
  })

  it('quotes at most 64 characters of a refused value in the message, which may reach logs', () => {
    const hostile = `${'a'.repeat(100)}\n`
    const error = expectRewindError(() => encodeEvent({ id: hostile, data: '' }), 'ERR_INVALID_FIELD', 'id')
    expect(error.message).toBe(
      `id must not contain CR, LF or NUL (got ${JSON.stringify('a'.repeat(64))}); remove them or put the value in data`,
    )
  })

  it('accepts every id and event name free of CR, LF and NUL', () => {
    fc.assert(
      fc.property(fieldValue, (value) => {
        expect(FORBIDDEN.test(value)).toBe(false)
        expect(() => encodeEvent({ id: value, event: value, data: '' })).not.toThrow()
        expect(() => assertFieldValue('x', value)).not.toThrow()
      }),
    )
  })
})

describe('encodeData', () => {
  it('writes one data: line per line of the data, with exactly one space before a non-empty value', () => {
    fc.assert(
      fc.property(dataUnits, (data) => {
        const lines = encodeData(data).split('\n')
        expect(lines.pop()).toBe('')
        const values = data.split(/\r\n|\r|\n/)
        expect(lines).toEqual(values.map((value) => (value === '' ? 'data:' : `data: ${value}`)))
      }),
    )
  })
})

describe('encodeIdOnly', () => {
  it('moves the client last event ID without dispatching an event', () => {
    fc.assert(
      fc.property(fieldValue, (id) => {
        const frame = encodeIdOnly(id)
        expect(parse(frame).events).toEqual([])
        expect(lastEventIdOf(frame, 'before')).toBe(id)
      }),
    )
  })
})

describe('encodeRetry', () => {
  it('hands the client exactly the number of milliseconds, for any non-negative safe integer', () => {
    fc.assert(
      fc.property(fc.oneof(fc.maxSafeNat(), fc.constantFrom(0, Number.MAX_SAFE_INTEGER)), (ms) => {
        const parsed = parse(encodeRetry(ms))
        expect(parsed.retries).toEqual([ms])
        expect(parsed.events).toEqual([])
        expect(parsed.errors).toEqual([])
      }),
    )
  })

  it('says what it got and what it takes', () => {
    const error = expectRewindError(() => encodeRetry(-5), 'ERR_INVALID_FIELD', 'retry')
    expect(error.message).toBe('retry must be a non-negative integer of milliseconds, got -5')
  })

  it('refuses negative, fractional, non-finite and unsafe values with ERR_INVALID_FIELD', () => {
    const invalid = fc.oneof(
      fc.integer({ max: -1 }),
      fc.double({ noNaN: true }).filter((n) => !Number.isInteger(n)),
      fc.constantFrom(
        Number.NaN,
        Number.POSITIVE_INFINITY,
        Number.NEGATIVE_INFINITY,
        Number.MAX_SAFE_INTEGER + 1,
        1e21,
        0.5,
        -1,
      ),
    )
    fc.assert(
      fc.property(invalid, (ms) => {
        expectRewindError(() => encodeRetry(ms), 'ERR_INVALID_FIELD', 'retry')
      }),
    )
    expectRewindError(() => encodeRetry('10' as unknown as number), 'ERR_INVALID_FIELD', 'retry')
  })
})

describe('encodeComment', () => {
  it('writes a bare heartbeat comment by default', () => {
    const parsed = parse(encodeComment())
    expect(parsed.comments).toEqual([''])
    expect(parsed.events).toEqual([])
  })

  it('gives the client each line of a multi-line comment and no event', () => {
    fc.assert(
      fc.property(dataUnits, (text) => {
        const frame = encodeComment(text)
        const parsed = parse(frame)
        expect(parsed.comments).toEqual(text.split(/\r\n|\r|\n/))
        expect(parsed.events).toEqual([])
        expect(parsed.retries).toEqual([])
        // A comment must never move the resume point.
        expect(lastEventIdOf(frame, 'before')).toBe('before')
      }),
    )
  })

  it('writes an empty line of a comment as a bare colon, and every other line with one space', () => {
    expect(encodeComment('a\n\r\nb\r')).toBe(': a\n:\n: b\n:\n\n')
    expect(encodeComment('keep-alive')).toBe(': keep-alive\n\n')
  })

  it('does not end or corrupt an event that follows it', () => {
    fc.assert(
      fc.property(dataUnits, dataUnits, (text, data) => {
        expect(parse(encodeComment(text) + encodeEvent({ id: '1', data })).events).toEqual([
          { id: '1', event: undefined, data: normalise(data) },
        ])
      }),
    )
  })
})

describe('serializeData', () => {
  it('passes strings through unchanged, JSON strings included', () => {
    fc.assert(
      fc.property(unicodeString(), (value) => {
        expect(serializeData(value)).toBe(value)
      }),
    )
    expect(serializeData('"quoted"')).toBe('"quoted"')
  })

  it('serializes anything else with JSON.stringify by default', () => {
    fc.assert(
      fc.property(
        fc.jsonValue().filter((value) => typeof value !== 'string'),
        (value) => {
          expect(serializeData(value)).toBe(JSON.stringify(value))
        },
      ),
    )
    expect(serializeData(null)).toBe('null')
    expect(serializeData({ a: [1, 'b'] })).toBe('{"a":[1,"b"]}')
  })

  it('uses a custom serializer for non-strings only', () => {
    const serialize = (value: unknown) => `custom:${typeof value}`
    expect(serializeData({}, serialize)).toBe('custom:object')
    expect(serializeData('text', serialize)).toBe('text')
  })

  it('refuses a cycle with ERR_SERIALIZE and keeps the cause', () => {
    const cyclic: { self?: unknown } = {}
    cyclic.self = cyclic
    const error = expectRewindError(() => serializeData(cyclic), 'ERR_SERIALIZE', 'data')
    expect(error.cause).toBeInstanceOf(TypeError)
  })

  it('refuses a BigInt, undefined, a function and a symbol with ERR_SERIALIZE', () => {
    for (const value of [10n, { n: 1n }, undefined, () => 1, Symbol('s')]) {
      expectRewindError(() => serializeData(value), 'ERR_SERIALIZE', 'data')
    }
  })

  it('refuses a custom serializer that throws or returns a non-string with ERR_SERIALIZE', () => {
    const boom = new Error('boom')
    const thrown = expectRewindError(
      () =>
        serializeData({}, () => {
          throw boom
        }),
      'ERR_SERIALIZE',
    )
    expect(thrown.cause).toBe(boom)
    expect(thrown.message).toContain('boom')
    for (const result of [42, undefined, null, {}, Buffer.from('x')]) {
      expectRewindError(() => serializeData({}, () => result as unknown as string), 'ERR_SERIALIZE', 'data')
    }
  })

  it('says what the serializer returned and how to fix it', () => {
    const error = expectRewindError(() => serializeData({}, () => 42 as unknown as string), 'ERR_SERIALIZE')
    expect(error.message).toBe(
      'event data serialized to number instead of a string; pass a string or a JSON-serializable value',
    )
  })
})
