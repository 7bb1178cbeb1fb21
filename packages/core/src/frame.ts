/**
 * Server-Sent Events framing, exact to WHATWG HTML 9.2.
 * @see https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation
 */
import { describeError, RewindError } from './errors.js'

/** The fields of one event as they go on the wire. */
export interface EventFields {
  /** The event id; moves the client's `Last-Event-ID`. Must not contain CR, LF or NUL. */
  id?: string | undefined
  /** The event type (`addEventListener(type)` on the client). Absent or empty means `message`. */
  event?: string | undefined
  /** The payload; CR, LF and CRLF inside it become separate `data:` lines. */
  data: string
}

/** Turns a value into the data string of an event. Must return a string. */
export type Serializer = (value: unknown) => string

const LINE_BREAK = /\r\n|\r|\n/
const FORBIDDEN = /[\r\n\0]/

/**
 * Throws `ERR_INVALID_FIELD` unless `value` can be written on one field line.
 * CR and LF would end the line early and let the rest inject fields; NUL makes clients drop the id.
 */
export function assertFieldValue(field: string, value: string): void {
  if (typeof value !== 'string') {
    throw new RewindError('ERR_INVALID_FIELD', `${field} must be a string, got ${typeof value}`, { field })
  }
  if (FORBIDDEN.test(value)) {
    throw new RewindError(
      'ERR_INVALID_FIELD',
      `${field} must not contain CR, LF or NUL (got ${JSON.stringify(value.slice(0, 64))}); remove them or put the value in data`,
      { field },
    )
  }
}

/**
 * Encodes the data lines of an event: one `data:` line per line of `data`, split on CRLF, CR and LF.
 * An empty line (or empty data) is written `data:`; any other line gets exactly one space after the
 * colon, so a leading space in the value survives the client's strip of one space.
 */
export function encodeData(data: string): string {
  // Hot path: most payloads are one line (JSON never contains a raw line break).
  // Stryker disable next-line ConditionalExpression,StringLiteral,BlockStatement: skipping the shortcut gives the same bytes through the loop below
  if (data.indexOf('\n') === -1 && data.indexOf('\r') === -1) {
    return data === '' ? 'data:\n' : `data: ${data}\n`
  }
  let out = ''
  for (const line of data.split(LINE_BREAK)) out += line === '' ? 'data:\n' : `data: ${line}\n`
  return out
}

/**
 * Encodes a complete event frame, ending with the blank line that dispatches it.
 * `id` and `event` are validated: CR, LF or NUL throw `ERR_INVALID_FIELD`.
 *
 * @example
 * ```ts
 * encodeEvent({ id: '7', event: 'price', data: '1\n2' }) // 'id: 7\nevent: price\ndata: 1\ndata: 2\n\n'
 * ```
 */
export function encodeEvent(fields: EventFields): string {
  let out = ''
  if (fields.id !== undefined) {
    assertFieldValue('id', fields.id)
    out += `id: ${fields.id}\n`
  }
  if (fields.event !== undefined && fields.event !== '') {
    assertFieldValue('event', fields.event)
    out += `event: ${fields.event}\n`
  }
  return `${out}${encodeData(fields.data)}\n`
}

/**
 * Encodes a frame that sets only the client's last event id, without dispatching an event
 * (the spec updates the last event ID at every blank line, data or not).
 */
export function encodeIdOnly(id: string): string {
  assertFieldValue('id', id)
  return `id: ${id}\n\n`
}

/**
 * Encodes a `retry:` field telling the client how long to wait before reconnecting.
 * Throws `ERR_INVALID_FIELD` unless `ms` is a non-negative safe integer (the spec accepts digits only).
 */
export function encodeRetry(ms: number): string {
  if (!Number.isSafeInteger(ms) || ms < 0) {
    throw new RewindError(
      'ERR_INVALID_FIELD',
      `retry must be a non-negative integer of milliseconds, got ${ms}`,
      {
        field: 'retry',
      },
    )
  }
  return `retry: ${ms}\n\n`
}

/**
 * Encodes a comment: one `:` line per line of `text` (clients ignore comments; proxies see traffic).
 * An empty text gives a bare `:` line. Comments never carry an id, so they never move the resume point.
 */
export function encodeComment(text = ''): string {
  // Stryker disable next-line ConditionalExpression: without the shortcut, '' splits into one empty line, written ':\n\n' all the same
  if (text === '') return ':\n\n'
  let out = ''
  for (const line of text.split(LINE_BREAK)) out += line === '' ? ':\n' : `: ${line}\n`
  return `${out}\n`
}

/**
 * Turns an event's data into its string form: a string passes as is, anything else goes through
 * `serialize` (default `JSON.stringify`). Throws `ERR_SERIALIZE` when that fails or gives no string.
 */
export function serializeData(value: unknown, serialize: Serializer = JSON.stringify): string {
  if (typeof value === 'string') return value
  let data: unknown
  try {
    data = serialize(value)
  } catch (cause) {
    throw new RewindError('ERR_SERIALIZE', `event data could not be serialized: ${describeError(cause)}`, {
      field: 'data',
      cause,
    })
  }
  if (typeof data !== 'string') {
    throw new RewindError(
      'ERR_SERIALIZE',
      `event data serialized to ${typeof data} instead of a string; pass a string or a JSON-serializable value`,
      { field: 'data' },
    )
  }
  return data
}
