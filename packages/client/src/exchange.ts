/**
 * The HTTP exchange of an event stream, decided by pure functions: what a request carries, what an
 * answer means (open, the end, reconnect, stop), where a stream opened with another method than GET
 * is resumed, and which request comes next. No fetch, no timer, no storage here: the event source
 * does those and asks these functions what to do, so every rule is tested without a server.
 */
import { describeError, RewindClientError } from './errors.js'
import type { HeadersValue, ResumeRequest } from './options.js'

/** The request the next connection makes. */
export interface NextRequest {
  url: string
  method: string
  /** Sent with this request only: a resumption never sends it again. */
  body: RequestInit['body'] | undefined
  /** Headers the `resume` option gave for this request, over the `headers` option's. */
  headers: HeadersValue | undefined
}

/** `url` resolved against `base`, or `undefined` when that is not a valid URL. */
export function absolute(url: string | URL, base: string | undefined): string | undefined {
  try {
    return new URL(url, base).href
    // Stryker disable next-line BlockStatement: an empty catch returns undefined too
  } catch {
    return undefined
  }
}

/** The origin of `url` (for the `origin` of message events), or `''` when it has none. */
export function originOf(url: string): string {
  try {
    return new URL(url).origin
  } catch {
    return ''
  }
}

/**
 * The headers of one request: the `headers` option's, then the `resume` option's over them, then
 * the two the client owns: `Accept`, and `Last-Event-ID` (the position; absent when there is none,
 * whatever the other headers said).
 */
export function requestHeaders(
  base: HeadersValue | undefined,
  resumed: HeadersValue | undefined,
  lastEventId: string,
): Headers {
  const headers = new Headers(base)
  if (resumed !== undefined) {
    for (const [name, value] of new Headers(resumed)) headers.set(name, value)
  }
  headers.set('accept', 'text/event-stream')
  if (lastEventId === '') headers.delete('last-event-id')
  else headers.set('last-event-id', lastEventId)
  return headers
}

/** The `fetch` options of one request. `cache` is missing from Node's `RequestInit` type. */
export function requestInit(
  request: NextRequest,
  headers: Headers,
  credentials: RequestInit['credentials'] | undefined,
  signal: AbortSignal,
): RequestInit & { cache?: string } {
  // A browser must never answer an event stream from its HTTP cache.
  const init: RequestInit & { cache?: string } = {
    method: request.method,
    headers,
    cache: 'no-store',
    signal,
  }
  if (credentials !== undefined) init.credentials = credentials
  if (request.body !== undefined) init.body = request.body
  return init
}

/** Whether a `Content-Type` names an event stream (parameters and case aside). */
export function isEventStream(contentType: string): boolean {
  return contentType.split(';')[0]!.trim().toLowerCase() === 'text/event-stream'
}

/** What {@link judgeAnswer} is told about an answer: its head, and whether it has a body. */
export interface AnswerHead {
  /** The method and URL of the request, for the messages. */
  method: string
  url: string
  status: number
  /** The `Content-Type` header, `''` when there is none. */
  contentType: string
  hasBody: boolean
}

/** What an answer means for the stream. */
export type Verdict =
  /** A 200 event stream: read it. */
  | { kind: 'open' }
  /** `204 No Content`: the stream ended for good. */
  | { kind: 'end' }
  /** Worth asking again after a delay. */
  | { kind: 'reconnect'; error: RewindClientError }
  /** The source stops; `forget` says whether the saved position names a stream the server no longer knows. */
  | { kind: 'stop'; error: RewindClientError; forget: boolean }

/**
 * What an answer means: 200 and an event stream with a body opens; 204 ends the stream for good;
 * another status is retried when `shouldRetry` says so and stops the source otherwise (a 404 also
 * forgets the saved position: the server does not know the stream, an answer that expired, and
 * every later page load would ask again and stop the same way); a 200 that is no event stream stops
 * it; a 200 without a body is retried.
 */
export function judgeAnswer(head: AnswerHead, shouldRetry: (status: number) => boolean): Verdict {
  const { method, url, status, contentType } = head
  if (status === 204) return { kind: 'end' }
  if (status !== 200) {
    const retry = shouldRetry(status)
    const error = new RewindClientError(
      'ERR_HTTP_STATUS',
      `${method} ${url} answered ${status}` +
        (retry ? '' : ': not retried (the shouldRetry option decides which statuses are)'),
      { status },
    )
    return retry ? { kind: 'reconnect', error } : { kind: 'stop', error, forget: status === 404 }
  }
  if (!isEventStream(contentType)) {
    const error = new RewindClientError(
      'ERR_CONTENT_TYPE',
      `${url} answered with Content-Type '${contentType}', not text/event-stream: check that the URL serves an event stream`,
      { status },
    )
    return { kind: 'stop', error, forget: false }
  }
  if (!head.hasBody) {
    return {
      kind: 'reconnect',
      error: new RewindClientError('ERR_NETWORK', `${url} answered without a body`, { status }),
    }
  }
  return { kind: 'open' }
}

/**
 * The URL an answer names for resuming its stream by GET: its `Location`, else its
 * `Content-Location`, resolved against the URL that answered; `undefined` when it names none (or
 * one that is not a URL).
 */
export function resumeLocation(headers: Headers, answeredUrl: string): string | undefined {
  const location = headers.get('location') ?? headers.get('content-location')
  return location === null ? undefined : absolute(location, answeredUrl)
}

/**
 * Whether a new page load resumes what it saved instead of sending its first request: a stream
 * opened with another method than GET whose request was answered before (its URL is saved as soon
 * as the answer comes, its position only with the first event, so either one says so). A GET
 * stream just sends its request with the saved position.
 */
export function resumesOnStart(method: string, saved: { position: string; url: string }): boolean {
  return method !== 'GET' && (saved.position !== '' || saved.url !== '')
}

/** What the `resume` option decided (or the default, when it is not given or returns `undefined`). */
export type ResumeDecision =
  | { kind: 'default' }
  | { kind: 'request'; request: ResumeRequest }
  | { kind: 'stop' }
  | { kind: 'threw'; error: unknown }

/** The `resume` option's return value as a {@link ResumeDecision}. */
export function resumeDecision(decided: ResumeRequest | null | undefined): ResumeDecision {
  if (decided === null) return { kind: 'stop' }
  return decided === undefined ? { kind: 'default' } : { kind: 'request', request: decided }
}

/** Why a next request is needed, for the messages of the errors that refuse one. */
export interface Situation {
  /** For example `the stream dropped`. */
  reason: string
  /** The error after which the stream is resumed, when there is one. */
  dropped: RewindClientError | undefined
}

/**
 * The request that resumes a stream, or the error that stops the source. The `resume` option's
 * request wins (its URL resolved against the current one; its method, or GET when it names a URL);
 * by default a GET is asked again, and a stream opened with another method is resumed by GET to the
 * URL its answer named (`location`). A body is never sent twice: without either, `ERR_NOT_RESUMABLE`.
 */
export function nextRequest(
  current: NextRequest,
  location: string | undefined,
  decision: ResumeDecision,
  situation: Situation,
): NextRequest | RewindClientError {
  const { dropped } = situation
  if (decision.kind === 'threw') {
    return new RewindClientError(
      'ERR_NOT_RESUMABLE',
      `the resume option threw: ${describeError(decision.error)}`,
      { field: 'resume', cause: decision.error },
    )
  }
  if (decision.kind === 'stop') {
    return new RewindClientError('ERR_NOT_RESUMABLE', 'the resume option returned null: not resuming', {
      field: 'resume',
      cause: dropped,
    })
  }
  if (decision.kind === 'request') {
    const decided = decision.request
    const url = decided.url === undefined ? current.url : absolute(decided.url, current.url)
    if (url === undefined) {
      return new RewindClientError(
        'ERR_NOT_RESUMABLE',
        `the resume option returned an invalid url: ${String(decided.url)}`,
        { field: 'resume', cause: dropped },
      )
    }
    return {
      url,
      method: (decided.method ?? (decided.url === undefined ? current.method : 'GET')).toUpperCase(),
      body: decided.body ?? undefined,
      headers: decided.headers,
    }
  }
  if (current.method === 'GET') return current
  if (location !== undefined) return { url: location, method: 'GET', body: undefined, headers: undefined }
  return new RewindClientError(
    'ERR_NOT_RESUMABLE',
    `${current.method} ${current.url}: ${situation.reason}, and a body is never sent twice: have the server answer with a Location header naming a GET URL of the stream, or pass the resume option`,
    { field: 'resume', cause: dropped },
  )
}
