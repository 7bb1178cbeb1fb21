/**
 * Every error the client throws, or reports through an `error` event, is a {@link RewindClientError}
 * with one of these codes.
 *
 * - `ERR_INVALID_ARGUMENT`: an option has the wrong type or is out of range; thrown by
 *   `createEventSource`, and the message says which option and how to fix it.
 * - `ERR_NETWORK`: the request failed or the body broke off (a dropped connection, a refused port);
 *   the client reconnects.
 * - `ERR_HTTP_STATUS`: the server answered with a status other than 200 or 204. A 5xx, 408 or 429
 *   makes the client reconnect; any other status stops it (see `shouldRetry`).
 * - `ERR_CONTENT_TYPE`: a 200 answer that is not `text/event-stream`: the client stops.
 * - `ERR_NOT_RESUMABLE`: a stream opened with a method other than GET dropped, and neither a
 *   `Location` header nor the `resume` option says how to resume it without sending the body again.
 * - `ERR_EVENT_TOO_LARGE`: one event was larger than `maxEventSize`: the client stops, since
 *   resuming would receive the same event again.
 * - `ERR_STALLED`: no byte arrived for `stallTimeout` milliseconds; the client reconnects.
 * - `ERR_INVALID_JSON`: with `json: true`, an event's data was not JSON: that event is skipped and
 *   the stream goes on.
 */
export type RewindClientErrorCode =
  | 'ERR_INVALID_ARGUMENT'
  | 'ERR_NETWORK'
  | 'ERR_HTTP_STATUS'
  | 'ERR_CONTENT_TYPE'
  | 'ERR_NOT_RESUMABLE'
  | 'ERR_EVENT_TOO_LARGE'
  | 'ERR_STALLED'
  | 'ERR_INVALID_JSON'

/** Every code in {@link RewindClientErrorCode}, in the order they are documented. */
export const REWIND_CLIENT_ERROR_CODES: readonly RewindClientErrorCode[] = Object.freeze([
  'ERR_INVALID_ARGUMENT',
  'ERR_NETWORK',
  'ERR_HTTP_STATUS',
  'ERR_CONTENT_TYPE',
  'ERR_NOT_RESUMABLE',
  'ERR_EVENT_TOO_LARGE',
  'ERR_STALLED',
  'ERR_INVALID_JSON',
])

/**
 * The one error class of `@rewind/client`. Switch on {@link RewindClientError.code}, never on the message.
 *
 * @example
 * ```ts
 * source.addEventListener('error', (event) => {
 *   if (event.error.code === 'ERR_HTTP_STATUS' && event.error.status === 401) signIn()
 * })
 * ```
 */
export class RewindClientError extends Error {
  /** Stable machine-readable code. */
  readonly code: RewindClientErrorCode
  /** The HTTP status of the answer the error is about, when there is one. */
  readonly status: number | undefined
  /** The option the error is about, when there is one (for example `retry` or `resume`). */
  readonly field: string | undefined

  constructor(
    code: RewindClientErrorCode,
    message: string,
    options?: { status?: number; field?: string; cause?: unknown },
  ) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause })
    this.name = 'RewindClientError'
    this.code = code
    this.status = options?.status
    this.field = options?.field
  }
}

/** The message of an error, or the thrown value as a string, for the message of the error that wraps it. */
export function describeError(error: unknown): string {
  return error instanceof Error ? error.message : String(error)
}
