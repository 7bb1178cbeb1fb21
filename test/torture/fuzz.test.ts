/**
 * Property-based fuzzing (fast-check) of the two places where outside input enters Rewind:
 * - the resume position (`parseLastEventId`, `readResumeId`): any value is classified as fresh,
 *   well-formed or malformed, exactly as documented, and a well-formed one can always be written
 *   back on an `id:` line without injecting anything;
 * - publish input: random event names and data either publish (an id) or throw a `RewindError`
 *   with the documented code, never anything else; and a bystander on a real socket parses the
 *   stream (with `eventsource-parser`) into exactly the accepted events.
 */

import { RewindError } from '@rewind/core'
import { readResumeId } from '@rewind/core/adapter'
import { encodeIdOnly } from '@rewind/core/frame'
import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { MAX_LAST_EVENT_ID_LENGTH, parseLastEventId } from '../../packages/core/src/last-event-id.js'
import { RawHttpClient } from '../support/raw-client.js'
import { waitUntil } from '../support/wait.js'
import { ADAPTERS, type RunningApp, startApp } from './helpers/app.mjs'
import { report } from './helpers/wait.js'

/** The documented classification of one raw value (see docs/replay.md, "Malformed id"). */
function model(value: string | readonly string[] | undefined): string | null | undefined {
  if (value === undefined) return undefined
  if (typeof value !== 'string') {
    if (value.length === 0) return undefined
    return value.length === 1 ? model(value[0]) : null
  }
  if (value === '') return undefined
  if (value.length > MAX_LAST_EVENT_ID_LENGTH) return null
  return /^[\x20-\x7e]+$/.test(value) ? value : null
}

/** Strings of every kind: printable ASCII, any code unit (lone surrogates too), near the length limit. */
const anyString = fc.oneof(
  fc.string({
    unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)),
    maxLength: 140,
  }),
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.string({ unit: fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c)), maxLength: 40 }),
  fc.integer({ min: 120, max: 136 }).map((n) => 'a'.repeat(n)),
  fc.constantFrom('-1', '0', '1e309', 'NaN', '9'.repeat(40), 'abc-1', ' ', '\u0000', 'a, b'),
)

/** Every UTF-8 byte percent-encoded (lone surrogates included, as U+FFFD; `encodeURIComponent` throws on them). */
const percentEncode = (text: string) =>
  [...Buffer.from(text, 'utf8')].map((byte) => `%${byte.toString(16).padStart(2, '0')}`).join('')

describe('Last-Event-ID parsing (fuzz)', () => {
  it('classifies any header value as documented, and an accepted id is safe to echo', () => {
    fc.assert(
      fc.property(
        fc.oneof(anyString, fc.array(anyString, { maxLength: 3 }), fc.constant(undefined)),
        (value) => {
          const parsed = parseLastEventId(value)
          expect(parsed).toBe(model(value))
          if (typeof parsed === 'string') {
            expect(Buffer.byteLength(parsed)).toBeLessThanOrEqual(MAX_LAST_EVENT_ID_LENGTH)
            // Accepted ids go back to clients on an `id:` line: it must not throw nor add a line.
            expect(encodeIdOnly(parsed)).toBe(`id: ${parsed}\n\n`)
          }
        },
      ),
      { numRuns: 3000 },
    )
  })

  it('reads the header first, else the lastEventId query parameter, for any request', () => {
    const header = fc.oneof(fc.constant(undefined), anyString, fc.array(anyString, { maxLength: 2 }))
    const query = fc.array(anyString, { maxLength: 3 })
    const noise = fc.array(fc.tuple(fc.string({ maxLength: 8 }), fc.string({ maxLength: 8 })), {
      maxLength: 2,
    })
    fc.assert(
      fc.property(header, query, noise, fc.boolean(), (headerValue, values, extra, rawEncoding) => {
        const params = [
          ...extra.map(([k, v]) => `${percentEncode(k)}=${percentEncode(v)}`),
          // Raw (unencoded) values too: whatever a client puts in the URL must not throw.
          ...values.map((v) => `lastEventId=${rawEncoding ? v : percentEncode(v)}`),
        ]
        const url = `/events?${params.join('&')}`
        const headers = headerValue === undefined ? {} : { 'last-event-id': headerValue as string | string[] }
        const fromHeader = model(headerValue)
        const result = readResumeId(headers, url)
        if (fromHeader !== undefined) {
          expect(result).toBe(fromHeader)
          return
        }
        const expected = model(new URLSearchParams(url.slice(url.indexOf('?') + 1)).getAll('lastEventId'))
        expect(result).toBe(expected)
      }),
      { numRuns: 3000 },
    )
  })

  it('never throws on any URL', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 60 }), (tail) => {
        const result = readResumeId({}, `/events?${tail}`)
        expect(result === undefined || result === null || typeof result === 'string').toBe(true)
      }),
      { numRuns: 2000 },
    )
  })
})

const MAX_EVENT_BYTES = 1024
const ROUNDS = 5
const RUNS_PER_ROUND = 300
const DOCUMENTED = new Set(['ERR_INVALID_FIELD', 'ERR_SERIALIZE', 'ERR_EVENT_TOO_LARGE'])

/** What a well-formed UTF-8 stream can carry of a string (lone surrogates become U+FFFD). */
const wellFormed = (text: string) => Buffer.from(text, 'utf8').toString('utf8')

/** The outcome the documentation promises for one publish input. */
function expectedOutcome(
  event: unknown,
  data: unknown,
): { code: string } | { event: string | undefined; data: string } {
  if (event !== undefined && event !== '') {
    if (typeof event !== 'string' || /[\r\n\0]/.test(event)) return { code: 'ERR_INVALID_FIELD' }
  }
  let text: unknown
  if (typeof data === 'string') text = data
  else {
    try {
      text = JSON.stringify(data)
    } catch {
      return { code: 'ERR_SERIALIZE' }
    }
    if (typeof text !== 'string') return { code: 'ERR_SERIALIZE' }
  }
  if (Buffer.byteLength(text as string) > MAX_EVENT_BYTES) return { code: 'ERR_EVENT_TOO_LARGE' }
  return {
    event: event === undefined || event === '' ? undefined : wellFormed(event as string),
    // A client joins data lines with LF, whatever line break the publisher used.
    data: wellFormed(text as string).replace(/\r\n|\r/g, '\n'),
  }
}

const cyclic = (() => {
  const value: { a: number; self?: unknown } = { a: 1 }
  value.self = value
  return value
})()

const eventArb = fc.oneof(
  { weight: 3, arbitrary: fc.constant(undefined) },
  { weight: 3, arbitrary: fc.string({ maxLength: 12 }) },
  { weight: 3, arbitrary: fc.string({ unit: 'binary', maxLength: 12 }) },
  {
    weight: 2,
    arbitrary: fc.constantFrom(
      '',
      'message',
      ' lead',
      'a\nb',
      'a\rb',
      'a\0b',
      'x\r\nid: 9',
      'rewind-gap',
      ':',
      'id: 1',
    ),
  },
  { weight: 1, arbitrary: fc.constantFrom<unknown>(5, null, {}, ['x']) },
)

const dataArb = fc.oneof(
  { weight: 4, arbitrary: fc.string({ unit: 'binary', maxLength: 300 }) },
  {
    weight: 2,
    arbitrary: fc.string({
      unit: fc.constantFrom(
        'a',
        '\n',
        '\r',
        '\r\n',
        '\0',
        ':',
        ' ',
        'data: ',
        'id: ',
        'é',
        '\ud800',
        '\ufeff',
      ),
      maxLength: 120,
    }),
  },
  { weight: 3, arbitrary: fc.anything({ withBigInt: true, maxDepth: 3 }) },
  { weight: 1, arbitrary: fc.integer({ min: 1000, max: 1100 }).map((n) => 'é'.repeat(n >> 1)) },
  {
    weight: 1,
    arbitrary: fc.constantFrom<unknown>(cyclic, undefined, 10n, Symbol('s'), () => 1, Number.NaN),
  },
)

describe.each(ADAPTERS)('%s: publish input (fuzz)', (adapter) => {
  let app: RunningApp
  let bystander: RawHttpClient

  beforeAll(async () => {
    app = await startApp(adapter, { maxEventBytes: MAX_EVENT_BYTES, heartbeatInterval: 0 })
    bystander = new RawHttpClient(app.port)
    await waitUntil(() => bystander.sawId, 'the bystander to open')
  })

  afterAll(async () => {
    bystander?.destroy()
    await app?.close()
  })

  it('publishes or refuses with a documented RewindError code, and the bystander parses exactly what was published', async () => {
    const accepted: { id: string; event: string | undefined; data: string }[] = []
    const codes: Record<string, number> = {}
    const property = fc.property(eventArb, dataArb, (event, data) => {
      const expected = expectedOutcome(event, data)
      let id: string | undefined
      try {
        id = app.publish('s', { event: event as string | undefined, data })
      } catch (error) {
        // Never another error type, never an undocumented code, and the one the documentation gives.
        expect(error).toBeInstanceOf(RewindError)
        const code = (error as RewindError).code
        expect(DOCUMENTED.has(code)).toBe(true)
        expect(code).toBe((expected as { code: string }).code)
        codes[code] = (codes[code] ?? 0) + 1
        return
      }
      expect(expected).not.toHaveProperty('code')
      accepted.push({ id, ...(expected as { event: string | undefined; data: string }) })
    })
    // Rounds of 300 publishes, each in its own turn of the event loop: one turn publishing more than
    // the queue limit can cut even a fast reader (see the failing burst test in stalled-client.test.ts).
    for (let round = 0; round < ROUNDS; round++) {
      fc.assert(property, { numRuns: RUNS_PER_ROUND })
      await new Promise((resolve) => setImmediate(resolve))
    }
    await waitUntil(
      () => bystander.events.length >= accepted.length,
      () => `${accepted.length} events on the bystander, has ${bystander.events.length}`,
    )
    expect(bystander.events.map((e) => ({ id: e.id, event: e.event, data: e.data }))).toEqual(accepted)
    expect(bystander.closed).toBe(false)
    report(`${adapter} fuzz-publish`, { runs: ROUNDS * RUNS_PER_ROUND, accepted: accepted.length, ...codes })
  })
})
