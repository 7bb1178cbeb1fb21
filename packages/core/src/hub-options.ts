/**
 * The hub's options: their types, their defaults, and `resolveHubOptions()`, which validates every
 * one (timer delays included) before a hub is built, so a bad option throws from `createHub`.
 */

import { RewindError } from './errors.js'
import type { Serializer } from './frame.js'
import { encodeRetry } from './frame.js'
import type { MemoryStoreOptions } from './memory-store.js'
import { DEFAULT_END_EVENT, type ResponseOptions } from './responses.js'
import type { HistoryStore } from './store.js'
import { DEFAULT_ERROR_REPORT_INTERVAL, throttleErrors } from './throttle-errors.js'
import type { CloseReason, ConnectionInfo, GapInfo, GapPolicy } from './types.js'
import {
  fieldOption,
  gapPolicyOption,
  optionalFunction,
  positiveInteger,
  positiveLimit,
  timerDelay,
} from './validation.js'

// Literal numbers, not products, so each key of HUB_DEFAULTS has its value as its type.
const DEFAULT_MAX_EVENT_BYTES = 262_144 // 256 KiB
const DEFAULT_MAX_QUEUE_BYTES = 1_048_576 // 1 MiB
const DEFAULT_HEARTBEAT_INTERVAL = 15_000
const DEFAULT_RETRY = 3000
const DEFAULT_OVERLOAD_RETRY = 10_000
const DEFAULT_CLOSE_GRACE = 1000
const DEFAULT_GAP_EVENT = 'rewind-gap'

/**
 * The defaults of {@link HubOptions}, for code that derives its own settings from them (a client's
 * timeout from the heartbeat, a proxy's buffer from `maxQueueBytes`). Frozen: changing them would
 * change nothing.
 */
export const HUB_DEFAULTS = Object.freeze({
  /** Largest serialized data `publish` accepts, in bytes: 256 KiB. */
  maxEventBytes: DEFAULT_MAX_EVENT_BYTES,
  /** Most bytes that may wait to be sent to one client: 1 MiB. */
  maxQueueBytes: DEFAULT_MAX_QUEUE_BYTES,
  /** Period of the heartbeat, in milliseconds: 15 s. */
  heartbeatInterval: DEFAULT_HEARTBEAT_INTERVAL,
  /** The `retry:` hint sent when a stream opens, in milliseconds: 3 s. */
  retry: DEFAULT_RETRY,
  /** Base of the `retry:` hint given to clients turned away by a limit, in milliseconds: 10 s. */
  overloadRetry: DEFAULT_OVERLOAD_RETRY,
  /** How long `close()` lets ended streams flush, in milliseconds: 1 s. */
  closeGrace: DEFAULT_CLOSE_GRACE,
  /** Name of the event that tells a client of a gap: `rewind-gap`. */
  gapEvent: DEFAULT_GAP_EVENT,
  /** Name of the terminal event of a response: `rewind-end`. */
  endEvent: DEFAULT_END_EVENT,
  /**
   * How often the default `onError` logs each kind of error, at most, in milliseconds: once a minute
   * (the default `interval` of `throttleErrors` too).
   */
  errorReportInterval: DEFAULT_ERROR_REPORT_INTERVAL,
})

/** Options of {@link createHub}. Every limit has a default; every hook is optional. */
export interface HubOptions {
  /**
   * Where history is kept. Give a shared store (for example `@rewind/redis`) to run several instances;
   * the hub does not close a store it was given. A memory store serves one hub at a time: another hub
   * is refused (`ERR_INVALID_ARGUMENT`) until the first one's `close()` has resolved.
   * @defaultValue an in-memory store built from `history`
   */
  store?: HistoryStore
  /**
   * Bounds of the default in-memory history. Refused together with `store` (`ERR_INVALID_ARGUMENT`):
   * they would not apply to it; configure the store's own bounds instead.
   * @defaultValue the defaults of {@link MemoryStoreOptions}
   */
  history?: MemoryStoreOptions
  /**
   * Turns non-string data into the text of `data:` lines.
   * @defaultValue `JSON.stringify`
   */
  serialize?: Serializer
  /**
   * Largest serialized data accepted by `publish`, in bytes; larger data throws `ERR_EVENT_TOO_LARGE`.
   * Must not exceed `maxQueueBytes`.
   * @defaultValue 262144 (256 KiB)
   */
  maxEventBytes?: number
  /**
   * Most bytes that may wait to be sent to one client. A subscriber past it is disconnected and
   * resumes from history when it reconnects, so a stalled client never grows the server's memory.
   * @defaultValue 1048576 (1 MiB)
   */
  maxQueueBytes?: number
  /**
   * Period of the heartbeat, in milliseconds: one shared timer ticks at this period and sends a `:`
   * comment to every connection that wrote nothing since the previous tick, so proxies keep idle
   * streams open and dead peers are noticed. An idle stream thus hears something at least every two
   * periods; a busy one gets no heartbeats at all. `0` disables them; at most `MAX_TIMER_DELAY`.
   * @defaultValue 15000
   */
  heartbeatInterval?: number
  /**
   * Reconnection delay sent to each client when its stream opens (`retry:`), in milliseconds;
   * `null` sends none and leaves the client's default. At most `MAX_TIMER_DELAY`.
   * @defaultValue 3000
   */
  retry?: number | null
  /**
   * Name of the event that tells a client its resume position could not be honoured.
   * @defaultValue `'rewind-gap'`
   */
  gapEvent?: string
  /**
   * Name of the terminal event of a response, whose data says how it ended (`done`, `cancelled`,
   * `failed`). Producers may not use it.
   * @defaultValue `'rewind-end'`
   */
  endEvent?: string
  /** Bounds of responses (streams that end): see {@link ResponseOptions}. */
  responses?: ResponseOptions
  /**
   * After the gap signal, `replay` sends every retained event; `reset` sends none, for clients that
   * refetch their state when they see the signal.
   * @defaultValue `'replay'`
   */
  gapPolicy?: GapPolicy
  /**
   * Most open connections (subscribers and iterable streams). Past it a new client gets a `retry:`
   * hint and an ended body, so it comes back later (never an HTTP error, which would stop it for good).
   * @defaultValue Infinity
   */
  maxConnections?: number
  /**
   * Most subscribers of one stream; past it, the same answer as for `maxConnections`.
   * @defaultValue Infinity
   */
  maxSubscribersPerStream?: number
  /**
   * Base of the `retry:` hint given to clients turned away by a limit; each gets a random delay
   * between half and one and a half times this (at most `MAX_TIMER_DELAY`), so they do not all
   * return at once.
   * @defaultValue 10000
   */
  overloadRetry?: number
  /**
   * How long `close()` lets ended streams flush before destroying them, in milliseconds; at most
   * `MAX_TIMER_DELAY`.
   * @defaultValue 1000
   */
  closeGrace?: number
  /** Called when a client's resume position is a gap; may return the policy for this client. */
  onGap?: (info: GapInfo) => GapPolicy | undefined | void
  /** Called when a connection opens. */
  onConnect?: (info: ConnectionInfo) => void
  /** Called when a connection ends, with the reason. */
  onDisconnect?: (info: ConnectionInfo & { reason: CloseReason }) => void
  /** Called when a client is turned away: `limit` (a connection limit) or `closed` (the hub is closed). */
  onReject?: (info: ConnectionInfo & { reason: 'limit' | 'closed' }) => void
  /**
   * Called when application code (a filter, an iterable, a hook) or the store fails while a stream
   * is open; that stream is ended. By default each kind of error (its code or name) is logged with
   * `console.error` at most once a minute, with a count of the ones left out (see `throttleErrors`).
   * @defaultValue `console.error` wrapped by `throttleErrors`
   */
  onError?: (error: unknown, info: ConnectionInfo) => void
}

/** The hooks of a hub, validated; `onError` always set (the throttled default when not given). */
export type HubHooks = {
  [K in 'onGap' | 'onConnect' | 'onDisconnect' | 'onReject']: HubOptions[K] | undefined
} & { onError: NonNullable<HubOptions['onError']> }

/** {@link HubOptions} validated, with every default applied: what a hub is built from. */
export interface ResolvedHubOptions {
  /**
   * The store given, or `undefined`: the hub then builds (and owns) a memory store from `history`.
   * Resolving creates nothing, so options can be checked without side effects.
   */
  readonly store: HistoryStore | undefined
  readonly history: MemoryStoreOptions | undefined
  readonly serializer: Serializer
  readonly maxQueueBytes: number
  readonly maxEventBytes: number
  readonly heartbeatInterval: number
  /** The opening `retry:` frame, or `undefined` when `retry` is `null`. */
  readonly retryHint: Buffer | undefined
  readonly gapEvent: string
  readonly endEvent: string
  readonly gapPolicy: GapPolicy
  readonly maxConnections: number
  readonly maxSubscribersPerStream: number
  readonly overloadRetry: number
  readonly closeGrace: number
  readonly hooks: HubHooks
  readonly responses: ResponseOptions | undefined
}

/** Validates `options` and applies the defaults; throws `ERR_INVALID_ARGUMENT` saying how to fix a bad one. */
export function resolveHubOptions(options: HubOptions): ResolvedHubOptions {
  if (options.store !== undefined && options.history !== undefined) {
    throw new RewindError(
      'ERR_INVALID_ARGUMENT',
      "history bounds apply to the in-memory store and would be ignored with the store given; configure the store's own bounds (for example createRedisStore({ maxLen })) and drop history",
      { field: 'history' },
    )
  }
  const serializer = optionalFunction('serialize', options.serialize) ?? JSON.stringify
  const maxQueueBytes = positiveInteger('maxQueueBytes', options.maxQueueBytes ?? DEFAULT_MAX_QUEUE_BYTES)
  const maxEventBytes = positiveInteger('maxEventBytes', options.maxEventBytes ?? DEFAULT_MAX_EVENT_BYTES)
  if (maxEventBytes > maxQueueBytes) {
    throw new RewindError(
      'ERR_INVALID_ARGUMENT',
      `maxEventBytes (${maxEventBytes}) must not exceed maxQueueBytes (${maxQueueBytes}): one event would disconnect every subscriber; raise maxQueueBytes or lower maxEventBytes`,
      { field: 'maxEventBytes' },
    )
  }
  const heartbeatInterval = timerDelay(
    'heartbeatInterval',
    options.heartbeatInterval ?? DEFAULT_HEARTBEAT_INTERVAL,
  )
  const retry = options.retry === undefined ? DEFAULT_RETRY : options.retry
  const retryHint = retry === null ? undefined : Buffer.from(encodeRetry(timerDelay('retry', retry)))
  const gapEvent = fieldOption('gapEvent', options.gapEvent ?? DEFAULT_GAP_EVENT)
  const gapPolicy = gapPolicyOption('gapPolicy', options.gapPolicy) ?? 'replay'
  const endEvent = fieldOption('endEvent', options.endEvent ?? DEFAULT_END_EVENT)
  const maxConnections = positiveLimit('maxConnections', options.maxConnections ?? Number.POSITIVE_INFINITY)
  const maxSubscribersPerStream = positiveLimit(
    'maxSubscribersPerStream',
    options.maxSubscribersPerStream ?? Number.POSITIVE_INFINITY,
  )
  const overloadRetry = timerDelay('overloadRetry', options.overloadRetry ?? DEFAULT_OVERLOAD_RETRY)
  const closeGrace = timerDelay('closeGrace', options.closeGrace ?? DEFAULT_CLOSE_GRACE)
  const hooks: HubHooks = {
    onGap: optionalFunction('onGap', options.onGap),
    onConnect: optionalFunction('onConnect', options.onConnect),
    onDisconnect: optionalFunction('onDisconnect', options.onDisconnect),
    onReject: optionalFunction('onReject', options.onReject),
    onError: optionalFunction('onError', options.onError) ?? defaultErrorReport(),
  }
  return {
    store: options.store,
    history: options.history,
    serializer,
    maxQueueBytes,
    maxEventBytes,
    heartbeatInterval,
    retryHint,
    gapEvent,
    endEvent,
    gapPolicy,
    maxConnections,
    maxSubscribersPerStream,
    overloadRetry,
    closeGrace,
    hooks,
    responses: options.responses,
  }
}

/**
 * The default `onError`: `console.error`, throttled. Exported for its tests, which give their own
 * `log` and clock.
 */
export function defaultErrorReport(
  log: (message: string, error: unknown) => void = console.error,
  now?: () => number,
): NonNullable<HubOptions['onError']> {
  return throttleErrors(
    (error, suppressed, info: ConnectionInfo) =>
      log(
        `[rewind] stream error${info.stream === undefined ? '' : ` on ${JSON.stringify(info.stream)}`} (each kind is logged at most once a minute${suppressed > 0 ? `; ${suppressed} more since the last one` : ''}; set onError to handle them):`,
        error,
      ),
    { now },
  )
}
