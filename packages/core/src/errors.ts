/**
 * Every error Rewind throws or rejects with is a {@link RewindError} with one of these codes.
 *
 * - `ERR_INVALID_FIELD`: an event's `id` or `event` contains CR, LF or NUL, or its `retry` is not a
 *   non-negative integer. Such a value would inject or corrupt SSE fields, so it is refused.
 * - `ERR_SERIALIZE`: the event data could not be turned into a string (a cycle, a BigInt,
 *   `undefined`, or a custom serializer that threw or did not return a string).
 * - `ERR_EVENT_TOO_LARGE`: the serialized data is larger than `maxEventBytes`.
 * - `ERR_INVALID_STREAM`: a stream name is empty, not a string, or longer than 256 characters.
 * - `ERR_INVALID_ARGUMENT`: an option or argument has the wrong type or is out of range; the message says which and how to fix it.
 * - `ERR_CLOSED`: the hub was closed; nothing more can be published.
 * - `ERR_STORE_UNAVAILABLE`: the history store (for example Redis) could not take the event.
 * - `ERR_HISTORY_LOST`: the store lost events (reported through `onError`): for example Redis trimmed
 *   entries before the live tail read them, or restarted without them; subscribers following the
 *   stream live did not get them.
 * - `ERR_RESPONSE_EXISTS`: a response with this id is already kept (active, or ended and not yet
 *   expired); a second producer is never started on it.
 * - `ERR_RESPONSE_LIMIT`: the store keeps as many active responses as it may (`maxResponses`).
 */
export type RewindErrorCode =
  | 'ERR_INVALID_FIELD'
  | 'ERR_SERIALIZE'
  | 'ERR_EVENT_TOO_LARGE'
  | 'ERR_INVALID_STREAM'
  | 'ERR_INVALID_ARGUMENT'
  | 'ERR_CLOSED'
  | 'ERR_STORE_UNAVAILABLE'
  | 'ERR_HISTORY_LOST'
  | 'ERR_RESPONSE_EXISTS'
  | 'ERR_RESPONSE_LIMIT'

/** Every code in {@link RewindErrorCode}, in the order they are documented. */
export const REWIND_ERROR_CODES: readonly RewindErrorCode[] = Object.freeze([
  'ERR_INVALID_FIELD',
  'ERR_SERIALIZE',
  'ERR_EVENT_TOO_LARGE',
  'ERR_INVALID_STREAM',
  'ERR_INVALID_ARGUMENT',
  'ERR_CLOSED',
  'ERR_STORE_UNAVAILABLE',
  'ERR_HISTORY_LOST',
  'ERR_RESPONSE_EXISTS',
  'ERR_RESPONSE_LIMIT',
])

/**
 * The one error class of the Rewind packages. Switch on {@link RewindError.code}, never on the message.
 *
 * @example
 * ```ts
 * try {
 *   hub.publish('news', { event: name, data })
 * } catch (error) {
 *   if (error instanceof RewindError && error.code === 'ERR_INVALID_FIELD') res.statusCode = 400
 * }
 * ```
 */
export class RewindError extends Error {
  /** Stable machine-readable code. */
  readonly code: RewindErrorCode
  /** The option or field the error is about, when there is one (for example `event` or `maxEvents`). */
  readonly field: string | undefined

  constructor(code: RewindErrorCode, message: string, options?: { field?: string; cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause })
    this.name = 'RewindError'
    this.code = code
    this.field = options?.field
  }
}

/**
 * The message of an error, or the thrown value as a string: for the message of the error that wraps
 * it, or a line in a report. Stores and adapters use it so a thrown non-`Error` reads the same everywhere.
 */
export function describeError(error: unknown): string {
  return error instanceof Error ? error.message : String(error)
}
