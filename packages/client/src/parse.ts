/**
 * The event stream parser: `eventsource-parser` for the fields and events, plus the one thing it
 * leaves out: a block with an `id:` and no data. The WHATWG parser still moves the last event id at
 * that block's blank line (a position without an event), and Rewind starts a fresh stream with one,
 * so a client that drops before its first event resumes exactly.
 *
 * @see https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation
 */
import { createParser, type EventSourceMessage, type ParseError } from 'eventsource-parser'

/** What {@link createStreamParser} reports, in stream order. */
export interface StreamParserCallbacks {
  /** A complete event with data. `id` is `undefined` when its block had no `id:` line. */
  onEvent(event: EventSourceMessage): void
  /** A block that set an id but carried no data: the stream's position moves to `id`. */
  onPosition(id: string): void
  /** A valid `retry:` field. */
  onRetry(milliseconds: number): void
  /** A line or an event's data grew past `maxSize` characters; the parser stops until reset. */
  onTooLarge(): void
}

/** Splits decoded text into lines and hands them, one at a time, to `eventsource-parser`. */
export interface StreamParser {
  /** Feeds the next piece of decoded text; pieces may split lines, fields and CRLF anywhere. */
  feed(text: string): void
  /** Forgets any partial line and event, for a new connection. */
  reset(): void
}

/**
 * Creates a parser for one stream of decoded text.
 *
 * Lines are split here rather than by `eventsource-parser`, so that a block's id-only end is seen in
 * order with the events around it: the position must never move back past an event delivered after it.
 */
export function createStreamParser(callbacks: StreamParserCallbacks, maxSize: number): StreamParser {
  let tooLarge = false
  const newline = /\r\n|\r|\n/g
  const parser = createParser({
    onEvent: callbacks.onEvent,
    onRetry: callbacks.onRetry,
    onError(error: ParseError) {
      if (error.type === 'max-buffer-size-exceeded') fail()
    },
    maxBufferSize: maxSize,
  })
  // The part of a line not yet ended, and whether the last piece ended in a CR whose LF may follow.
  let partial = ''
  // Stryker disable next-line BooleanLiteral: an LF skipped at the very start is a blank line before any field, which dispatches nothing
  let afterCR = false
  let atStart = true
  // The current block: the id it set, and whether it has data.
  let blockId: string | undefined
  let blockHasData = false

  function fail() {
    tooLarge = true
    callbacks.onTooLarge()
  }

  function line(text: string) {
    if (text === '') {
      const id = blockId
      const position = !blockHasData && id !== undefined
      blockId = undefined
      blockHasData = false
      parser.feed('\n')
      if (position) callbacks.onPosition(id)
      return
    }
    const colon = text.indexOf(':')
    if (colon !== 0) {
      const field = colon === -1 ? text : text.slice(0, colon)
      if (field === 'data') blockHasData = true
      else if (field === 'id') {
        const value =
          colon === -1 ? '' : text.slice(text.charCodeAt(colon + 1) === 32 ? colon + 2 : colon + 1)
        // The spec ignores an id containing NUL; so does eventsource-parser.
        if (!value.includes('\0')) blockId = value
      }
    }
    parser.feed(`${text}\n`)
  }

  return {
    feed(text) {
      if (tooLarge || text === '') return
      if (atStart) {
        atStart = false
        // A UTF-8 BOM is allowed once, at the very start of the stream.
        if (text.charCodeAt(0) === 0xfeff) text = text.slice(1)
      }
      let start = 0
      if (afterCR && text.charCodeAt(0) === 10) start = 1
      // Stryker disable next-line BooleanLiteral: set again after the loop, which only a line too large leaves early, and nothing is read after that until reset
      afterCR = false
      newline.lastIndex = start
      for (let match = newline.exec(text); match !== null; match = newline.exec(text)) {
        const end = match.index
        // Stryker disable next-line StringLiteral: the shortcut skips concatenating an empty partial line; the text is the same
        line(partial === '' ? text.slice(start, end) : partial + text.slice(start, end))
        partial = ''
        start = newline.lastIndex
        if (tooLarge) return
      }
      afterCR = start === text.length && text.charCodeAt(start - 1) === 13
      if (start < text.length) {
        partial += text.slice(start)
        if (partial.length > maxSize) {
          // Stryker disable next-line StringLiteral: after a line too large nothing is read until reset, which empties the partial line
          partial = ''
          fail()
        }
      }
    },
    reset() {
      parser.reset()
      partial = ''
      // Stryker disable next-line BooleanLiteral: an LF skipped at the start of a new connection is a blank line before any field, which dispatches nothing
      afterCR = false
      atStart = true
      blockId = undefined
      blockHasData = false
      tooLarge = false
    },
  }
}
