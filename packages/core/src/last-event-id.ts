/**
 * Reading the client's resume position from a request.
 * @see https://html.spec.whatwg.org/multipage/server-sent-events.html#the-last-event-id-header
 */

/** Longest resume id accepted, in bytes; longer values are malformed (see whatwg/fetch#568). */
export const MAX_LAST_EVENT_ID_LENGTH = 128

/** Name of the query parameter read when the `Last-Event-ID` header is absent. */
export const LAST_EVENT_ID_QUERY_PARAMETER = 'lastEventId'

/**
 * Where a client asks to resume from:
 * - `undefined`: a fresh connection (no header, no query parameter, or an empty value);
 * - a string: a well-formed id, which the history may still not know;
 * - `null`: malformed (not printable ASCII, or longer than {@link MAX_LAST_EVENT_ID_LENGTH}).
 */
export type ResumeId = string | null | undefined

/**
 * Classifies one raw `Last-Event-ID` value. Node decodes header bytes as latin1, so anything
 * outside printable ASCII cannot be an id this library issued and is reported as malformed.
 */
export function parseLastEventId(value: string | readonly string[] | undefined): ResumeId {
  if (value === undefined) return undefined
  // A repeated header is ambiguous; treat it as malformed rather than guess which one is current.
  if (typeof value !== 'string')
    return value.length === 0 ? undefined : value.length === 1 ? parseLastEventId(value[0]) : null
  if (value === '') return undefined
  if (value.length > MAX_LAST_EVENT_ID_LENGTH) return null
  // Stryker disable next-line EqualityOperator: with <=, charCodeAt past the end is NaN, which passes both checks
  for (let i = 0; i < value.length; i++) {
    const code = value.charCodeAt(i)
    if (code < 0x20 || code > 0x7e) return null
  }
  return value
}

/**
 * The resume position of a request: the `Last-Event-ID` header first (a reconnecting EventSource
 * sends it, and keeps the URL of its first connection), else the `lastEventId` query parameter of
 * `url`, for clients that cannot set headers.
 */
export function readResumeId(
  headers: Readonly<Record<string, string | string[] | undefined>>,
  url: string | undefined,
): ResumeId {
  const header = parseLastEventId(headers['last-event-id'])
  if (header !== undefined) return header
  if (url === undefined) return undefined
  const query = url.indexOf('?')
  if (query === -1) return undefined
  const search = url.slice(query + 1)
  // Stryker disable next-line ConditionalExpression: a shortcut; without it getAll finds no value, which is also undefined
  if (!search.includes(LAST_EVENT_ID_QUERY_PARAMETER)) return undefined
  const values = new URLSearchParams(search).getAll(LAST_EVENT_ID_QUERY_PARAMETER)
  return parseLastEventId(values)
}
