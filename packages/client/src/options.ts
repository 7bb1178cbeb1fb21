/** The options of a source, their defaults, and the checks that turn misuse into a clear error. */
import { RewindClientError } from './errors.js'
import { type PositionStore, sessionStorageStore } from './position.js'

/** Default of {@link EventSourceOptions.gapEvent}: the name Rewind's servers use. */
export const DEFAULT_GAP_EVENT = 'rewind-gap'
/** Default of {@link EventSourceOptions.endEvent}: the name Rewind's servers use. */
export const DEFAULT_END_EVENT = 'rewind-end'
/** Default of {@link EventSourceOptions.retry}: 1 s. */
export const DEFAULT_RETRY = 1000
/** Default of {@link EventSourceOptions.maxRetryDelay}: 30 s. */
export const DEFAULT_MAX_RETRY_DELAY = 30_000
/** Default of {@link EventSourceOptions.backoffFactor}. */
export const DEFAULT_BACKOFF_FACTOR = 2
/** Default of {@link EventSourceOptions.dedupeWindow}. */
export const DEFAULT_DEDUPE_WINDOW = 1000
/** Default of {@link EventSourceOptions.maxEventSize}: 1 Mi characters. */
export const DEFAULT_MAX_EVENT_SIZE = 1024 * 1024

/** The request headers, in any form `fetch` takes. */
export type HeadersValue = NonNullable<RequestInit['headers']>

/** What a `headers` function is told before each connection attempt. */
export interface RequestContext {
  /** 0 for the first request, then 1, 2, … for each reconnection. */
  attempt: number
  /** The position the request resumes from (`''` for none); sent as `Last-Event-ID`. */
  lastEventId: string
}

/** The part of a response the `resume` option sees. */
export interface ResponseInfo {
  /** The URL that answered, after redirects. */
  url: string
  status: number
  headers: Headers
}

/** What the `resume` option is told when a connection must be made again. */
export interface ResumeContext {
  /** The position to resume from (`''` for none); sent as `Last-Event-ID` unless you say otherwise. */
  lastEventId: string
  /** The request that dropped. */
  url: string
  method: string
  /** The latest response, or `undefined` when no response came yet (the first request failed). */
  response: ResponseInfo | undefined
  /** 1 for the first reconnection, then 2, 3, …; 0 when a saved position is resumed on start. */
  attempt: number
}

/** The next request, as the `resume` option decides; fields left out keep their current value. */
export interface ResumeRequest {
  url?: string | URL
  /** @defaultValue the current method, or `'GET'` when `url` is given */
  method?: string
  /** Merged over the `headers` option's headers. */
  headers?: HeadersValue
  /** Sent with this request (and not again unless `resume` returns it again). */
  body?: RequestInit['body']
}

/** Options of {@link createEventSource}. Every option has a default; none is required. */
export interface EventSourceOptions {
  /**
   * The HTTP method of the first request. A stream opened with another method than GET is resumed
   * without sending its body again: by GET to the first response's `Location` (or
   * `Content-Location`) header, or as the `resume` option says.
   * @defaultValue `'GET'`
   */
  method?: string
  /**
   * The body of the first request, sent once (for example a JSON prompt to POST).
   * @defaultValue none
   */
  body?: RequestInit['body']
  /**
   * Request headers, or a function that returns them (or a promise of them), called before every
   * connection attempt, so each reconnection carries a fresh token. If it throws, that attempt
   * fails (`ERR_NETWORK`) and is retried with backoff. `Accept` and `Last-Event-ID` are set by the client.
   * @defaultValue none
   */
  headers?: HeadersValue | ((context: RequestContext) => HeadersValue | Promise<HeadersValue>)
  /**
   * Whether cookies and HTTP authentication go with the request, as `fetch` says it.
   * @defaultValue `'same-origin'`
   */
  credentials?: RequestInit['credentials']
  /**
   * Closes the source when aborted, like calling `close()`.
   * @defaultValue none
   */
  signal?: AbortSignal
  /**
   * The `fetch` to use, for example one with its own connection pool or a proxy in Node.
   * @defaultValue `globalThis.fetch`
   */
  fetch?: typeof fetch
  /**
   * Decides the request that resumes the stream after a drop: return the request, `undefined` for
   * the default (the same GET, or a GET to the `Location` of a non-GET stream), or `null` to stop.
   * @defaultValue none
   */
  resume?: (
    context: ResumeContext,
  ) => ResumeRequest | null | undefined | Promise<ResumeRequest | null | undefined>
  /**
   * Where to start: sent as `Last-Event-ID` on the first request. A stored position
   * (`storageKey`) takes precedence.
   * @defaultValue `''` (from now on, or from the start of a response)
   */
  lastEventId?: string
  /**
   * Keep the position under this key in `store`, so a reloaded page (or a restarted process)
   * resumes where it was. The key is cleared when the stream ends, and on a 404 (the server no
   * longer knows the stream), so the next load starts afresh.
   * @defaultValue none (the position is kept in memory only)
   */
  storageKey?: string
  /**
   * Where `storageKey` keeps the position.
   * @defaultValue `sessionStorage` in browsers; required in Node
   */
  store?: PositionStore
  /**
   * Parse each event's data as JSON. An event whose data is not JSON is skipped with an `error`
   * event (`ERR_INVALID_JSON`); the source stays open.
   * @defaultValue `false`
   */
  json?: boolean
  /**
   * Name of the server's gap signal, surfaced as a `gap` event instead of a message.
   * @defaultValue `'rewind-gap'`
   */
  gapEvent?: string
  /**
   * Name of the server's end-of-response event, surfaced as an `end` event, after which the
   * source closes for good.
   * @defaultValue `'rewind-end'`
   */
  endEvent?: string
  /**
   * Base of the reconnection delay in milliseconds, until the server sends `retry:`, which
   * replaces it. The n-th reconnection in a row waits a random time up to
   * `min(maxRetryDelay, base × backoffFactor^n)` (full jitter).
   * @defaultValue 1000
   */
  retry?: number
  /**
   * Largest reconnection delay, in milliseconds; also caps the server's `retry:`.
   * @defaultValue 30000
   */
  maxRetryDelay?: number
  /**
   * Growth of the delay window after each failed attempt in a row; `1` keeps it at the base.
   * @defaultValue 2
   */
  backoffFactor?: number
  /**
   * Most reconnection attempts in a row without receiving a byte; past it the source stops.
   * @defaultValue `Infinity`
   */
  maxRetries?: number
  /**
   * Whether an HTTP status other than 200 and 204 is worth retrying.
   * @defaultValue retry 5xx, 408 and 429; stop on any other status
   */
  shouldRetry?: (status: number) => boolean
  /**
   * Reconnect when no byte arrives for this many milliseconds (a connection that a proxy or a
   * sleeping laptop left half-open). Set it above the server's heartbeat period: with Rewind's
   * default 15 s heartbeat an idle stream hears something at least every 30 s, so 45000 fits.
   * `0` turns it off.
   * @defaultValue 0
   */
  stallTimeout?: number
  /**
   * How many of the latest event ids are remembered to drop an event delivered before (a replay
   * that overlaps). `0` turns deduplication off, for servers that reuse ids.
   * @defaultValue 1000
   */
  dedupeWindow?: number
  /**
   * Largest line or event data, in characters; a larger one stops the source (`ERR_EVENT_TOO_LARGE`).
   * @defaultValue 1048576
   */
  maxEventSize?: number
}

/** The options with every default applied, as the source uses them. */
export interface ResolvedOptions {
  method: string
  body: RequestInit['body'] | undefined
  headers: EventSourceOptions['headers']
  credentials: RequestInit['credentials']
  signal: AbortSignal | undefined
  fetch: typeof fetch
  resume: EventSourceOptions['resume']
  lastEventId: string
  storageKey: string | undefined
  store: PositionStore | undefined
  json: boolean
  gapEvent: string
  endEvent: string
  retry: number
  maxRetryDelay: number
  backoffFactor: number
  maxRetries: number
  shouldRetry: (status: number) => boolean
  stallTimeout: number
  dedupeWindow: number
  maxEventSize: number
}

/** The default of {@link EventSourceOptions.shouldRetry}. */
export function isRetryableStatus(status: number): boolean {
  return status >= 500 || status === 408 || status === 429
}

function invalid(field: string, rule: string): RewindClientError {
  return new RewindClientError('ERR_INVALID_ARGUMENT', `${field} ${rule}`, { field })
}

function number(
  options: EventSourceOptions,
  field:
    | 'retry'
    | 'maxRetryDelay'
    | 'backoffFactor'
    | 'maxRetries'
    | 'stallTimeout'
    | 'dedupeWindow'
    | 'maxEventSize',
  fallback: number,
  { min, integer, infinite = false }: { min: number; integer: boolean; infinite?: boolean },
): number {
  const value = options[field]
  if (value === undefined) return fallback
  const ok =
    typeof value === 'number' &&
    value >= min &&
    (Number.isFinite(value) ? !integer || Number.isInteger(value) : infinite && value === Infinity)
  if (!ok) {
    throw invalid(
      field,
      `must be ${integer ? 'an integer' : 'a number'} of at least ${min}${infinite ? ' (or Infinity)' : ''}; got ${String(value)}`,
    )
  }
  return value
}

function optionalFunction<T>(options: EventSourceOptions, field: keyof EventSourceOptions): T | undefined {
  const value = options[field]
  if (value !== undefined && typeof value !== 'function')
    throw invalid(field, `must be a function; got ${typeof value}`)
  return value as T | undefined
}

function name(options: EventSourceOptions, field: 'gapEvent' | 'endEvent', fallback: string): string {
  const value = options[field]
  if (value === undefined) return fallback
  if (typeof value !== 'string' || value === '' || /[\r\n]/.test(value)) {
    throw invalid(field, 'must be a non-empty event name without CR or LF')
  }
  return value
}

/** Checks the options and fills in the defaults; throws `ERR_INVALID_ARGUMENT` on misuse. */
export function resolveOptions(options: EventSourceOptions): ResolvedOptions {
  if (typeof options !== 'object' || options === null) throw invalid('options', 'must be an object')
  // Checked before it is upper-cased: a method that is no string must not throw a TypeError.
  if (
    typeof options.method !== 'undefined' &&
    (typeof options.method !== 'string' || options.method === '')
  ) {
    throw invalid('method', "must be an HTTP method such as 'GET' or 'POST'")
  }
  const method = (options.method ?? 'GET').toUpperCase()
  if ((method === 'GET' || method === 'HEAD') && options.body !== undefined && options.body !== null) {
    throw invalid('body', `can't be sent with ${method}: pass method: 'POST' as well`)
  }
  const fetchFunction = optionalFunction<typeof fetch>(options, 'fetch') ?? globalThis.fetch
  if (typeof fetchFunction !== 'function')
    throw invalid('fetch', 'is required: this runtime has no global fetch')
  const headers = options.headers
  if (
    headers !== undefined &&
    (typeof headers !== 'object' || headers === null) &&
    typeof headers !== 'function'
  ) {
    throw invalid(
      'headers',
      'must be headers (an object, an array of pairs or Headers) or a function returning them',
    )
  }
  const lastEventId = options.lastEventId ?? ''
  if (typeof lastEventId !== 'string' || /[\r\n\0]/.test(lastEventId)) {
    throw invalid('lastEventId', 'must be a string without CR, LF or NUL')
  }
  const storageKey = options.storageKey
  if (storageKey !== undefined && (typeof storageKey !== 'string' || storageKey === '')) {
    throw invalid('storageKey', 'must be a non-empty string')
  }
  let store = options.store
  if (store !== undefined && (typeof store?.get !== 'function' || typeof store.set !== 'function')) {
    throw invalid('store', 'must have get(key) and set(key, id) methods')
  }
  if (storageKey !== undefined && store === undefined) {
    store = sessionStorageStore()
    if (store === undefined) {
      throw invalid(
        'store',
        'is required with storageKey where there is no sessionStorage (Node): pass a store',
      )
    }
  }
  if (options.signal !== undefined && !(options.signal instanceof AbortSignal)) {
    throw invalid('signal', 'must be an AbortSignal')
  }
  const maxRetryDelay = number(options, 'maxRetryDelay', DEFAULT_MAX_RETRY_DELAY, { min: 1, integer: false })
  return {
    method,
    body: options.body,
    headers,
    credentials: options.credentials ?? 'same-origin',
    signal: options.signal,
    fetch: fetchFunction,
    resume: optionalFunction(options, 'resume'),
    lastEventId,
    storageKey,
    store,
    json: options.json === true,
    gapEvent: name(options, 'gapEvent', DEFAULT_GAP_EVENT),
    endEvent: name(options, 'endEvent', DEFAULT_END_EVENT),
    retry: Math.min(number(options, 'retry', DEFAULT_RETRY, { min: 0, integer: false }), maxRetryDelay),
    maxRetryDelay,
    backoffFactor: number(options, 'backoffFactor', DEFAULT_BACKOFF_FACTOR, { min: 1, integer: false }),
    maxRetries: number(options, 'maxRetries', Infinity, { min: 0, integer: true, infinite: true }),
    shouldRetry: optionalFunction(options, 'shouldRetry') ?? isRetryableStatus,
    stallTimeout: number(options, 'stallTimeout', 0, { min: 0, integer: false }),
    dedupeWindow: number(options, 'dedupeWindow', DEFAULT_DEDUPE_WINDOW, { min: 0, integer: true }),
    maxEventSize: number(options, 'maxEventSize', DEFAULT_MAX_EVENT_SIZE, { min: 1, integer: true }),
  }
}
