/**
 * What the stores do the same way: the shared stores' (`@rewind/redis`, `@rewind/postgres`) options,
 * the lazy value of an event read back from one, and the two ways a response ends there; and the
 * one hub every store (the memory store too) delivers to. One copy here, so a fix reaches each store.
 */
import { describeError, RewindError } from './errors.js'
import { encodeEvent } from './frame.js'
import type {
  NewEvent,
  ResponseEnd,
  ResponseLimits,
  ResponseRecords,
  ResponseState,
  StoreDelivery,
  StoredEvent,
} from './store.js'
import { describeValue, positiveInteger, timerDelay } from './validation.js'

/** The options every shared store takes, as its caller gives them (unchecked). */
export interface SharedStoreOptions {
  readonly maxLen?: unknown
  readonly deserialize?: unknown
  readonly onError?: unknown
  readonly minReconnectDelay?: unknown
  readonly maxReconnectDelay?: unknown
}

/** {@link SharedStoreOptions} after defaults and validation. */
export interface ResolvedSharedStoreOptions {
  readonly maxLen: number
  readonly deserialize: (data: string) => unknown
  readonly onError: ((error: unknown) => void) | undefined
  readonly minReconnectDelay: number
  readonly maxReconnectDelay: number
}

/**
 * Resolves the options every shared store takes: `maxLen` (events kept per stream, a positive
 * integer), `deserialize` (a function; default `JSON.parse`),
 * `onError` (a function or nothing), and `minReconnectDelay` and `maxReconnectDelay` (delays of at
 * least 1 ms; `maxReconnectDelay` defaults to the larger of its default and `minReconnectDelay`, and
 * must not be less than it). Throws `ERR_INVALID_ARGUMENT` naming the option.
 * @param defaults - the store's defaults of `maxLen` and the two delays
 */
export function resolveSharedStoreOptions(
  options: SharedStoreOptions,
  defaults: {
    readonly maxLen: number
    readonly minReconnectDelay: number
    readonly maxReconnectDelay: number
  },
): ResolvedSharedStoreOptions {
  const maxLen = positiveInteger('maxLen', options.maxLen ?? defaults.maxLen)
  const deserialize = options.deserialize ?? JSON.parse
  if (typeof deserialize !== 'function') {
    throw invalid('deserialize', `deserialize must be a function, got ${describeValue(deserialize)}`)
  }
  const onError = options.onError
  if (onError !== undefined && typeof onError !== 'function') {
    throw invalid('onError', `onError must be a function, got ${describeValue(onError)}`)
  }
  const minReconnectDelay = positiveDelay(
    'minReconnectDelay',
    options.minReconnectDelay ?? defaults.minReconnectDelay,
  )
  const maxReconnectDelay = positiveDelay(
    'maxReconnectDelay',
    options.maxReconnectDelay ?? Math.max(defaults.maxReconnectDelay, minReconnectDelay),
  )
  if (maxReconnectDelay < minReconnectDelay) {
    throw invalid(
      'maxReconnectDelay',
      `maxReconnectDelay (${maxReconnectDelay}) must not be less than minReconnectDelay (${minReconnectDelay})`,
    )
  }
  return {
    maxLen,
    deserialize: deserialize as (data: string) => unknown,
    onError: onError as ((error: unknown) => void) | undefined,
    minReconnectDelay,
    maxReconnectDelay,
  }
}

/**
 * Checks a delay a timer of the store's process waits for: a positive integer (a zero poll or
 * backoff would spin, `XREAD BLOCK 0` would block forever) of at most `MAX_TIMER_DELAY`, as core
 * checks every delay; else `ERR_INVALID_ARGUMENT` naming the option.
 * @returns the value, unchanged
 */
export function positiveDelay(name: string, value: unknown): number {
  return timerDelay(name, positiveInteger(name, value))
}

/**
 * Checks a bound the store's server applies (a length, an age, an expiry): a positive integer, or
 * `Infinity` for none; else `ERR_INVALID_ARGUMENT` naming the option. No timer of this process waits
 * for it, so it is not bound by `MAX_TIMER_DELAY`.
 * @param unit - said in the message after "a positive integer" (`'milliseconds'`); default none
 * @returns the value, unchanged
 */
export function boundOption(name: string, value: unknown, unit?: string): number {
  if (value === Number.POSITIVE_INFINITY) return value
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) {
    const integer = unit === undefined ? 'a positive integer' : `a positive integer (${unit})`
    throw invalid(name, `${name} must be ${integer} or Infinity, got ${describeValue(value)}`)
  }
  return value
}

/**
 * The value of an event read back from a store that was published as a non-string value: `data`
 * deserialized. Data that does not deserialize (written by other code, or with another serializer)
 * gives the raw `data` string instead, and an `ERR_SERIALIZE` error is reported: throwing would
 * fail every subscriber whose filter reads `value`, on every resume, for as long as the store keeps
 * the event. Call it once per event and keep the result.
 * @param where - names the event in the report (`event 3 of stream "news"`); called on failure only
 */
export function decodeStoredData(
  data: string,
  decoder: { readonly deserialize: (data: string) => unknown; readonly report: (error: unknown) => void },
  where: () => string,
): unknown {
  try {
    return decoder.deserialize(data)
  } catch (error) {
    decoder.report(
      new RewindError(
        'ERR_SERIALIZE',
        `the data of ${where()} could not be deserialized (${describeError(error)}); its value is the raw data string. Give the store a deserialize that undoes the serialize of every publisher of this stream`,
        { cause: error },
      ),
    )
    return data
  }
}

/**
 * The frame of an event read back from a store. Only an event written by something else than the
 * store can hold an event type with CR, LF or NUL; it is still sent, in its place in the stream, as
 * a plain message (its type dropped).
 */
export function encodeStoredFrame(id: string, event: string | undefined, data: string): string {
  try {
    return encodeEvent({ id, event, data })
  } catch {
    return encodeEvent({ id, data })
  }
}

/**
 * Base of the responses of a shared store that ends a response in one atomic step, told whether a
 * live lease stops it: `end` is `finish` without that condition, `endIfLapsed` with it.
 */
export abstract class SharedResponseRecords implements ResponseRecords {
  abstract create(id: string, stream: string, limits: ResponseLimits): Promise<boolean>

  abstract append(
    id: string,
    stream: string,
    event: NewEvent,
    limits: ResponseLimits,
    seq: number,
  ): Promise<string | undefined>

  abstract get(id: string): Promise<ResponseState | undefined>

  end(...[, stream, event, reason, limits]: EndArguments): Promise<Ended> {
    return this.finish(stream, event, reason, limits, false)
  }

  endIfLapsed(...[, stream, event, reason, limits]: EndArguments): Promise<Ended> {
    return this.finish(stream, event, reason, limits, true)
  }

  /**
   * Appends the terminal `event` of `reason` and ends the response of `stream`, in one atomic step
   * (so of two instances that end it at once exactly one appends it); with `onlyIfLapsed`, only once
   * its producer's lease has lapsed. Resolves with the state after the call, or `undefined` for an
   * unknown response.
   */
  protected abstract finish(
    stream: string,
    event: NewEvent,
    reason: ResponseEnd,
    limits: ResponseLimits,
    onlyIfLapsed: boolean,
  ): Promise<Ended>
}

/** The arguments of `ResponseRecords.end` and `endIfLapsed`: id, stream, event, reason, limits. */
type EndArguments = [id: string, stream: string, event: NewEvent, reason: ResponseEnd, limits: ResponseLimits]

/** What `end` and `endIfLapsed` resolve with: the state after the call, or nothing for an unknown id. */
type Ended = { state: ResponseState } | undefined

/**
 * The number of events a shared store's read asks its server for, from `HistoryStore.read`'s
 * `limit`: `Infinity` is every event (as the memory store reads it; a store's server needs a
 * number), anything else not a positive number is none.
 */
export function readCount(limit: number): number {
  if (limit === Number.POSITIVE_INFINITY) return Number.MAX_SAFE_INTEGER
  return Number.isFinite(limit) ? Math.max(0, Math.floor(limit)) : 0
}

/**
 * The one hub a store delivers to (see `HistoryStore.attach`). `attach` refuses a second hub with
 * `ERR_INVALID_ARGUMENT` (field `store`) and the store's `refusal`: that hub's subscribers would
 * never get the store's events. `detach` frees the store once its hub has closed. `deliver` and
 * `reset` pass the store's live events on to the attached hub, and drop them while none is.
 */
export class AttachedHub implements StoreDelivery {
  private delivery: StoreDelivery | undefined

  /** @param refusal - the message of the error a second hub gets: why, and what to do instead */
  constructor(private readonly refusal: string) {}

  attach(delivery: StoreDelivery): void {
    if (this.delivery !== undefined && this.delivery !== delivery) {
      throw new RewindError('ERR_INVALID_ARGUMENT', this.refusal, { field: 'store' })
    }
    this.delivery = delivery
  }

  detach(delivery: StoreDelivery): void {
    if (this.delivery === delivery) this.delivery = undefined
  }

  deliver(stream: string, events: readonly StoredEvent[]): void {
    this.delivery?.deliver(stream, events)
  }

  reset(stream: string): void {
    this.delivery?.reset(stream)
  }
}

function invalid(field: string, message: string): RewindError {
  return new RewindError('ERR_INVALID_ARGUMENT', message, { field })
}
