/**
 * Options of the Redis store, their defaults, and their validation.
 */
import { RewindError } from '@rewind/core'
import type { Redis } from 'ioredis'

/** Default of {@link RedisStoreOptions.redis}. */
export const DEFAULT_REDIS_URL = 'redis://127.0.0.1:6379'
/** Default of {@link RedisStoreOptions.prefix}. */
export const DEFAULT_PREFIX = 'rewind:'
/** Default of {@link RedisStoreOptions.maxLen}. */
export const DEFAULT_MAX_LEN = 1000
/** Default of {@link RedisStoreOptions.blockMs}. */
export const DEFAULT_BLOCK_MS = 5000
/** Default of {@link RedisStoreOptions.commandTimeout}. */
export const DEFAULT_COMMAND_TIMEOUT = 2000
/** Default of {@link RedisStoreOptions.minReconnectDelay}. */
export const DEFAULT_MIN_RECONNECT_DELAY = 100
/** Default of {@link RedisStoreOptions.maxReconnectDelay}. */
export const DEFAULT_MAX_RECONNECT_DELAY = 5000

/** How `XADD` trims a stream past {@link RedisStoreOptions.maxLen}. */
export type TrimMode = 'approximate' | 'exact'

/** Turns the `data` of an event that was published as a non-string value back into a value. */
export type Deserializer = (data: string) => unknown

/** Options of {@link createRedisStore}. */
export interface RedisStoreOptions {
  /**
   * The Redis server: a connection URL (`redis://`, `rediss://`) or an ioredis client. A client
   * stays yours: the store sends its commands on it, opens a duplicate of it for the blocking tail,
   * and closes only that duplicate. Redis Cluster clients are not supported.
   * @defaultValue `'redis://127.0.0.1:6379'`
   */
  redis?: string | Redis | undefined
  /**
   * Prefix of the Redis keys: a stream named `news` is kept in the key `prefix + 'news'`.
   * @defaultValue `'rewind:'`
   */
  prefix?: string
  /**
   * Entries kept per stream (`XADD ... MAXLEN`). With approximate trimming Redis keeps somewhat more.
   * @defaultValue 1000
   */
  maxLen?: number
  /**
   * `approximate` trims with `MAXLEN ~`, which Redis does cheaply, a whole node at a time, and so
   * keeps a little more than `maxLen` entries; `exact` keeps exactly `maxLen` at some cost per append.
   * @defaultValue `'approximate'`
   */
  trim?: TrimMode
  /**
   * Turns the data of events published as non-string values back into `StoredEvent.value`. Run
   * lazily, at most once per event object (only filters and hooks that read `value` pay for it).
   * Must undo the hub's `serialize`.
   * @defaultValue `JSON.parse`
   */
  deserialize?: Deserializer
  /**
   * How long the live tail's `XREAD BLOCK` waits for new entries before it asks again, in milliseconds.
   * @defaultValue 5000
   */
  blockMs?: number
  /**
   * How long an append, read or watch may wait for Redis before it fails with
   * `ERR_STORE_UNAVAILABLE`, in milliseconds. While Redis is known to be unreachable they fail at once.
   * @defaultValue 2000
   */
  commandTimeout?: number
  /**
   * First delay before reconnecting to Redis, and before the tail retries a failed read, in
   * milliseconds; it doubles with every consecutive failure up to `maxReconnectDelay`.
   * @defaultValue 100
   */
  minReconnectDelay?: number
  /**
   * Longest delay between reconnection attempts, in milliseconds.
   * @defaultValue 5000
   */
  maxReconnectDelay?: number
  /**
   * Told about failures that no caller sees: lost connections, failed tail reads, and events the live
   * tail could not deliver because Redis no longer held them. By default each distinct message is
   * logged once with `console.warn`.
   * @defaultValue logs each distinct message once
   */
  onError?: (error: unknown) => void
}

/** Options after defaults and validation. */
export interface ResolvedOptions {
  readonly prefix: string
  readonly maxLen: number
  readonly trim: TrimMode
  readonly deserialize: Deserializer
  readonly blockMs: number
  readonly commandTimeout: number
  readonly minReconnectDelay: number
  readonly maxReconnectDelay: number
  readonly onError: ((error: unknown) => void) | undefined
}

/** Applies defaults and throws `ERR_INVALID_ARGUMENT` for a value out of range. */
export function resolveOptions(options: RedisStoreOptions): ResolvedOptions {
  if (options === null || typeof options !== 'object') {
    throw invalid('options', `createRedisStore takes an options object, got ${describe(options)}`)
  }
  const prefix = options.prefix ?? DEFAULT_PREFIX
  if (typeof prefix !== 'string') throw invalid('prefix', `prefix must be a string, got ${describe(prefix)}`)
  const trim = options.trim ?? 'approximate'
  if (trim !== 'approximate' && trim !== 'exact') {
    throw invalid('trim', `trim must be 'approximate' or 'exact', got ${describe(trim)}`)
  }
  const deserialize = options.deserialize ?? JSON.parse
  if (typeof deserialize !== 'function') {
    throw invalid('deserialize', `deserialize must be a function, got ${describe(deserialize)}`)
  }
  const onError = options.onError
  if (onError !== undefined && typeof onError !== 'function') {
    throw invalid('onError', `onError must be a function, got ${describe(onError)}`)
  }
  const minReconnectDelay = positiveInteger(
    'minReconnectDelay',
    options.minReconnectDelay ?? DEFAULT_MIN_RECONNECT_DELAY,
  )
  const maxReconnectDelay = positiveInteger(
    'maxReconnectDelay',
    options.maxReconnectDelay ?? Math.max(DEFAULT_MAX_RECONNECT_DELAY, minReconnectDelay),
  )
  if (maxReconnectDelay < minReconnectDelay) {
    throw invalid(
      'maxReconnectDelay',
      `maxReconnectDelay (${maxReconnectDelay}) must not be less than minReconnectDelay (${minReconnectDelay})`,
    )
  }
  return {
    prefix,
    maxLen: positiveInteger('maxLen', options.maxLen ?? DEFAULT_MAX_LEN),
    trim,
    deserialize,
    blockMs: positiveInteger('blockMs', options.blockMs ?? DEFAULT_BLOCK_MS),
    commandTimeout: positiveInteger('commandTimeout', options.commandTimeout ?? DEFAULT_COMMAND_TIMEOUT),
    minReconnectDelay,
    maxReconnectDelay,
    onError,
  }
}

/** Delay before the `attempt`-th consecutive retry (counted from 1): doubling, bounded. */
export function backoff(attempt: number, min: number, max: number): number {
  // Past 2^30 the product would only be capped anyway; the bound keeps the exponent finite.
  return Math.min(max, min * 2 ** Math.min(Math.max(attempt - 1, 0), 30))
}

function positiveInteger(field: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) {
    throw invalid(field, `${field} must be a positive integer, got ${describe(value)}`)
  }
  return value
}

function invalid(field: string, message: string): RewindError {
  return new RewindError('ERR_INVALID_ARGUMENT', message, { field })
}

function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value)
  if (typeof value === 'number' || typeof value === 'boolean' || value == null) return String(value)
  return typeof value
}
