/**
 * Options of the Redis store, their defaults, and their validation.
 */
import { MAX_TIMER_DELAY, RewindError } from '@rewind/core'
import {
  boundOption,
  describeValue,
  positiveDelay,
  type ResolvedSharedStoreOptions,
  resolveSharedStoreOptions,
} from '@rewind/core/adapter'
import type { Cluster, ClusterNode, Redis } from 'ioredis'
import { checkPrefix } from './keys.js'

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
/** Default of {@link RedisStoreOptions.streamTtl}: a day. */
export const DEFAULT_STREAM_TTL = 24 * 60 * 60 * 1000

/** How `XADD` trims a stream past {@link RedisStoreOptions.maxLen}. */
export type TrimMode = 'approximate' | 'exact'

/** Turns the `data` of an event that was published as a non-string value back into a value. */
export type Deserializer = (data: string) => unknown

/** Options of {@link createRedisStore}. */
export interface RedisStoreOptions {
  /**
   * The Redis server: a connection URL (`redis://`, `rediss://`), an ioredis client, or an ioredis
   * `Cluster` client for Redis Cluster. A client stays yours: the store sends its commands on it,
   * opens its own connections for the live tail (a duplicate of a client; one per master of a
   * cluster, with the cluster's `redisOptions`), and closes only those.
   * @defaultValue `'redis://127.0.0.1:6379'` (unless `cluster` is given)
   */
  redis?: string | Redis | Cluster | undefined
  /**
   * The startup nodes of a Redis Cluster (`{ host, port }` objects or `redis://` URLs, as ioredis's
   * `Cluster` takes them): the store opens a `Cluster` client on them, and closes it. Give either
   * this or `redis`, not both.
   * @defaultValue none: a single Redis server (`redis`)
   */
  cluster?: readonly ClusterNode[] | undefined
  /**
   * Prefix of the Redis keys: a stream named `news` is kept in the key `prefix + '{news}'` (see the
   * README's key layout). It must not contain `{` or `}`.
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
   * Longest time an entry is kept, in milliseconds, by Redis's clock: each append (and each read)
   * trims the entries older than this with `XTRIM MINID`, using the `trim` mode. With approximate
   * trimming Redis removes whole nodes only, so up to a node's worth of entries (100 by default)
   * may outlive `maxAge`; `trim: 'exact'` removes each one on time. `Infinity` trims by `maxLen`
   * only.
   * @defaultValue `Infinity`
   */
  maxAge?: number
  /**
   * How long a stream's key lives after its last append, in milliseconds: every append sets it
   * again with `PEXPIRE`, so the key of a stream nobody publishes to any more (a made-up name, a
   * finished room) expires instead of staying in Redis forever. Reads and subscribers do not extend
   * it. `Infinity` keeps keys forever (each append removes an expiry with `PERSIST`).
   * @defaultValue `86400000` (24 hours)
   */
  streamTtl?: number
  /**
   * Turns the data of events published as non-string values back into `StoredEvent.value`. Run
   * lazily, at most once per event object (only filters and hooks that read `value` pay for it).
   * Must undo the hub's `serialize`.
   * @defaultValue `JSON.parse`
   */
  deserialize?: Deserializer
  /**
   * How long the live tail's `XREAD BLOCK` waits for new entries before it asks again, in
   * milliseconds. At most 2147483647 (Node's longest timer), counting `commandTimeout` with it: the
   * tail waits for both in one timer. On Redis Cluster, how often the tail refreshes the slot map
   * (to follow streams whose slot moved) and pings its connection to each master.
   * @defaultValue 5000
   */
  blockMs?: number
  /**
   * How long an append, read or watch may wait for Redis before it fails with
   * `ERR_STORE_UNAVAILABLE`, in milliseconds. While Redis is known to be unreachable they fail at once.
   * At most 2147483647, like every timer option.
   * @defaultValue 2000
   */
  commandTimeout?: number
  /**
   * Shortest delay before reconnecting to Redis, and before the tail retries a failed read, in
   * milliseconds. Each delay is drawn at random (full jitter) between this and a ceiling that is
   * twice this at the first failure and doubles with every consecutive one, up to
   * `maxReconnectDelay`: instances that lost Redis together (a restart, a failover) spread their
   * attempts instead of reconnecting in lockstep. At most 2147483647.
   * @defaultValue 100
   */
  minReconnectDelay?: number
  /**
   * Longest delay between reconnection attempts, in milliseconds: the ceiling of the random delay
   * once it has doubled that far (the delays then fall anywhere between `minReconnectDelay` and
   * this, 2.55 s on average with the defaults). At most 2147483647.
   * @defaultValue 5000
   */
  maxReconnectDelay?: number
  /**
   * Told about failures that no caller sees: lost connections, failed tail reads, and events the live
   * tail could not deliver because Redis no longer held them. By default each kind is logged at most
   * once a minute with `console.error`, as the hub logs its own.
   * @defaultValue logs with `console.error`, throttled
   */
  onError?: (error: unknown) => void
}

/** Options after defaults and validation. */
export interface ResolvedOptions extends ResolvedSharedStoreOptions {
  readonly prefix: string
  readonly trim: TrimMode
  /** In milliseconds; `Infinity` for none. */
  readonly maxAge: number
  /** In milliseconds; `Infinity` to keep keys forever. */
  readonly streamTtl: number
  readonly blockMs: number
  readonly commandTimeout: number
}

/** Applies defaults and throws `ERR_INVALID_ARGUMENT` for a value out of range. */
export function resolveOptions(options: RedisStoreOptions): ResolvedOptions {
  if (options === null || typeof options !== 'object') {
    throw invalid('options', `createRedisStore takes an options object, got ${describeValue(options)}`)
  }
  const prefix = options.prefix ?? DEFAULT_PREFIX
  if (typeof prefix !== 'string')
    throw invalid('prefix', `prefix must be a string, got ${describeValue(prefix)}`)
  checkPrefix(prefix)
  const trim = options.trim ?? 'approximate'
  if (trim !== 'approximate' && trim !== 'exact') {
    throw invalid('trim', `trim must be 'approximate' or 'exact', got ${describeValue(trim)}`)
  }
  const { maxLen, deserialize, onError, minReconnectDelay, maxReconnectDelay } = resolveSharedStoreOptions(
    options,
    {
      maxLen: DEFAULT_MAX_LEN,
      minReconnectDelay: DEFAULT_MIN_RECONNECT_DELAY,
      maxReconnectDelay: DEFAULT_MAX_RECONNECT_DELAY,
    },
  )
  const blockMs = positiveDelay('blockMs', options.blockMs ?? DEFAULT_BLOCK_MS)
  const commandTimeout = positiveDelay('commandTimeout', options.commandTimeout ?? DEFAULT_COMMAND_TIMEOUT)
  if (blockMs + commandTimeout > MAX_TIMER_DELAY) {
    throw invalid(
      'blockMs',
      `blockMs + commandTimeout (${blockMs} + ${commandTimeout}) must be at most ${MAX_TIMER_DELAY} ms: the live tail waits for both in one timer, and Node runs a longer timer after 1 ms; lower blockMs`,
    )
  }
  return {
    prefix,
    maxLen,
    trim,
    maxAge: boundOption('maxAge', options.maxAge ?? Number.POSITIVE_INFINITY, 'milliseconds'),
    streamTtl: boundOption('streamTtl', options.streamTtl ?? DEFAULT_STREAM_TTL, 'milliseconds'),
    deserialize,
    blockMs,
    commandTimeout,
    minReconnectDelay,
    maxReconnectDelay,
    onError,
  }
}

/**
 * Delay before the `attempt`-th consecutive retry (counted from 1), with full jitter: a whole number
 * of milliseconds drawn uniformly from `min` to a ceiling that is twice `min` at the first attempt and
 * doubles with every further one, up to `max`. Without the draw, every instance that lost Redis at
 * the same moment (a restart, a failover) would retry at the same moments and come back in one burst.
 */
export function backoff(
  attempt: number,
  min: number,
  max: number,
  random: () => number = Math.random,
): number {
  // 2^31 times any min is past every max (at most MAX_TIMER_DELAY): the bound keeps the exponent finite.
  const ceiling = Math.min(max, min * 2 ** Math.min(Math.max(attempt, 1), 31))
  return Math.min(ceiling, min + Math.floor(random() * (ceiling - min + 1)))
}

function invalid(field: string, message: string): RewindError {
  return new RewindError('ERR_INVALID_ARGUMENT', message, { field })
}
