/**
 * The stream parser: the same events as `eventsource-parser` for any split of the bytes, plus the
 * positions of id-only blocks, in order, as the WHATWG algorithm sets them.
 */
import { createParser, type EventSourceMessage } from 'eventsource-parser'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { createStreamParser } from '../src/parse.js'

type Entry = { event: EventSourceMessage } | { position: string } | { retry: number } | 'too-large'

/** Feeds decoded `pieces` of text, as they are, and returns what the parser reported. */
function parseStrings(pieces: string[], maxSize = 1 << 20): Entry[] {
  const entries: Entry[] = []
  const parser = createStreamParser(
    {
      onEvent: (event) => entries.push({ event }),
      onPosition: (position) => entries.push({ position }),
      onRetry: (retry) => entries.push({ retry }),
      onTooLarge: () => entries.push('too-large'),
    },
    maxSize,
  )
  for (const piece of pieces) parser.feed(piece)
  return entries
}

/** Feeds `chunks` of bytes, decoded as a fetch body is (a leading BOM dropped), and returns what the parser reported. */
function parseChunks(chunks: Uint8Array[], maxSize = 1 << 20): Entry[] {
  const decoder = new TextDecoder()
  const pieces = chunks.map((chunk) => decoder.decode(chunk, { stream: true }))
  return parseStrings([...pieces, decoder.decode()], maxSize)
}

function parseText(...pieces: string[]): Entry[] {
  const encoder = new TextEncoder()
  return parseChunks(pieces.map((piece) => encoder.encode(piece)))
}

/** `eventsource-parser` alone, given the whole text at once. */
function reference(text: string): { events: EventSourceMessage[]; retries: number[] } {
  const events: EventSourceMessage[] = []
  const retries: number[] = []
  const parser = createParser({
    onEvent: (event) => events.push(event),
    onRetry: (retry) => retries.push(retry),
  })
  parser.feed(text)
  return { events, retries }
}

/**
 * The WHATWG interpretation, written out plainly over the whole text: at each blank line the last
 * event id becomes the id buffer; the event is dispatched only if there is data.
 */
function whatwgPositions(text: string): string[] {
  const positions: string[] = []
  let idBuffer = ''
  let hasData = false
  let idInBlock = false
  for (const line of text.split(/\r\n|\r|\n/).slice(0, -1)) {
    if (line === '') {
      if (!hasData && idInBlock) positions.push(idBuffer)
      hasData = false
      idInBlock = false
      continue
    }
    if (line.startsWith(':')) continue
    const colon = line.indexOf(':')
    const field = colon === -1 ? line : line.slice(0, colon)
    let value = colon === -1 ? '' : line.slice(colon + 1)
    if (value.startsWith(' ')) value = value.slice(1)
    if (field === 'data') hasData = true
    if (field === 'id' && !value.includes('\0')) {
      idBuffer = value
      idInBlock = true
    }
  }
  return positions
}

const text = fc.string({ unit: 'grapheme', maxLength: 12 }).map((value) => value.replace(/[\r\n]/g, ''))
const line = fc.oneof(
  text.map((value) => `data: ${value}`),
  text.map((value) => `data:${value}`),
  fc.constant('data'),
  fc.constantFrom('1', '2', 'k3f9x-42', '', 'a\0b', 'ünï').map((id) => `id: ${id}`),
  fc.constant('id'),
  fc.constantFrom('note', 'rewind-gap', '').map((name) => `event: ${name}`),
  fc.constantFrom('retry: 3000', 'retry: x', 'retry:10'),
  text.map((value) => `: ${value}`),
  fc.constant('unknown: field'),
  fc.constant(''),
  fc.constant(''),
)
const stream = fc
  .array(fc.tuple(line, fc.constantFrom('\n', '\r', '\r\n')), { maxLength: 40 })
  // Ending in LF settles a trailing CR, which a parser given the whole text at once leaves pending.
  .map((lines) => `${lines.map(([content, end]) => content + end).join('')}\n`)

function split(bytes: Uint8Array, cuts: number[]): Uint8Array[] {
  const points = [...new Set(cuts.map((cut) => cut % (bytes.length + 1)))].sort((a, b) => a - b)
  const chunks: Uint8Array[] = []
  let start = 0
  for (const point of [...points, bytes.length]) {
    chunks.push(bytes.subarray(start, point))
    start = point
  }
  return chunks
}

describe('createStreamParser', () => {
  it('gives, for any split of the bytes, the same events as eventsource-parser alone, and the WHATWG positions', () => {
    fc.assert(
      fc.property(stream, fc.array(fc.nat(), { maxLength: 12 }), (source, cuts) => {
        const entries = parseChunks(split(new TextEncoder().encode(source), cuts))
        const expected = reference(source)
        expect(
          entries.flatMap((entry) => (typeof entry === 'object' && 'event' in entry ? [entry.event] : [])),
        ).toEqual(expected.events)
        expect(
          entries.flatMap((entry) => (typeof entry === 'object' && 'retry' in entry ? [entry.retry] : [])),
        ).toEqual(expected.retries)
        expect(
          entries.flatMap((entry) =>
            typeof entry === 'object' && 'position' in entry ? [entry.position] : [],
          ),
        ).toEqual(whatwgPositions(source))
      }),
      { numRuns: 500 },
    )
  })

  it('splits at every byte boundary of a stream with every line ending and multi-byte text', () => {
    const source = 'id: 1\r\ndata: ünïcödé ✓\r\rid: 2\r\n\r\nevent: note\ndata: a\rdata: b\n\nid: 3\r\r'
    const bytes = new TextEncoder().encode(source)
    const whole = parseChunks([bytes])
    for (let cut = 1; cut < bytes.length; cut++) {
      expect(parseChunks([bytes.subarray(0, cut), bytes.subarray(cut)]), `cut at ${cut}`).toEqual(whole)
    }
    expect(whole).toEqual([
      { event: { id: '1', event: undefined, data: 'ünïcödé ✓' } },
      { position: '2' },
      { event: { id: undefined, event: 'note', data: 'a\nb' } },
      { position: '3' },
    ])
  })

  it('reports an id-only block in order with the events around it, and ignores an id with NUL as the spec says', () => {
    expect(parseText('id: head\n\nid: 5\ndata: five\n\nid: 6\nevent: x\n\nid: a\0b\n\n')).toEqual([
      { position: 'head' },
      { event: { id: '5', event: undefined, data: 'five' } },
      { position: '6' },
    ])
    // `id` alone, or `id:` empty, resets the position to none.
    expect(parseText('id\n\nid:\n\n')).toEqual([{ position: '' }, { position: '' }])
  })

  it('handles a CR that ends one piece and the LF that starts the next as one line end', () => {
    expect(parseText('data: a\r', '\n', '\r', '\n')).toEqual([
      { event: { id: undefined, event: undefined, data: 'a' } },
    ])
  })

  it('reports a line or an event larger than its limit once, and nothing after it until reset', () => {
    const encoder = new TextEncoder()
    expect(
      parseChunks([encoder.encode(`data: ${'x'.repeat(50)}`), encoder.encode('\n\ndata: y\n\n')], 20),
    ).toEqual(['too-large'])
    // Many short data lines make one large event.
    expect(parseChunks([encoder.encode('data: 0123456789\n'.repeat(5))], 30)).toEqual(['too-large'])
  })

  it('takes a line of exactly the limit, and reports a longer one before its end arrives', () => {
    const encoder = new TextEncoder()
    const line = `data: ${'x'.repeat(14)}`
    expect(parseChunks([encoder.encode(line), encoder.encode('\n\n')], 20)).toEqual([
      { event: { id: undefined, event: undefined, data: 'x'.repeat(14) } },
    ])
    // A line that never ends is not kept growing.
    expect(parseChunks([encoder.encode(`${line}x`)], 20)).toEqual(['too-large'])
  })

  it('reports nothing after a line too large, even events whose lines come in later pieces', () => {
    const encoder = new TextEncoder()
    const pieces = [`data: ${'x'.repeat(50)}`, '\n', 'data: y\n', '\n', 'x'.repeat(50)]
    expect(
      parseChunks(
        pieces.map((piece) => encoder.encode(piece)),
        20,
      ),
    ).toEqual(['too-large'])
  })

  it('reads an id with or without a space after the colon', () => {
    expect(parseText('id:5\n\nid: 6\n\nid:  7\n\n')).toEqual([
      { position: '5' },
      { position: '6' },
      { position: ' 7' },
    ])
  })

  it('drops a BOM at the very start of the stream only, an empty first piece aside', () => {
    // Fed as text: TextDecoder would drop the BOM itself.
    expect(parseStrings(['\ufeffid: 1\n\n'])).toEqual([{ position: '1' }])
    expect(parseStrings(['', '\ufeffid: 1\n\n'])).toEqual([{ position: '1' }])
    expect(parseStrings(['\ufeffid: 1\n\n\ufeffid: 2\n\n'])).toEqual([{ position: '1' }])
    expect(parseStrings(['data: a', '\ufeffb\n\n'])).toEqual([
      { event: { id: undefined, event: undefined, data: 'a\ufeffb' } },
    ])
  })

  it('starts over after reset, a BOM included', () => {
    const entries: Entry[] = []
    const parser = createStreamParser(
      {
        onEvent: (event) => entries.push({ event }),
        onPosition: (position) => entries.push({ position }),
        onRetry: () => {},
        onTooLarge: () => entries.push('too-large'),
      },
      100,
    )
    parser.feed('\ufeffdata: half')
    parser.reset()
    parser.feed('\ufeffid: 9\n\n')
    expect(entries).toEqual([{ position: '9' }])
  })
})
