/**
 * Options of the Postgres store, their defaults, and their validation.
 */
import { RewindError } from '@rewind/core'
import {
  boundOption,
  describeValue,
  positiveDelay,
  positiveInteger,
  type ResolvedSharedStoreOptions,
  resolveSharedStoreOptions,
} from '@rewind/core/adapter'
import type { ClientConfig, Pool } from 'pg'
import { checkSchema } from './schema.js'

/** Default of {@link PostgresStoreOptions.schema}. */
export const DEFAULT_SCHEMA = 'rewind'
/** Default of {@link PostgresStoreOptions.maxLen}. */
export const DEFAULT_MAX_LEN = 1000
/** Default of {@link PostgresStoreOptions.maxBytes}: 16 MiB. */
export const DEFAULT_MAX_BYTES = 16 * 1024 * 1024
/** Default of {@link PostgresStoreOptions.streamTtl}: a day. */
export const DEFAULT_STREAM_TTL = 24 * 60 * 60 * 1000
/** Default of {@link PostgresStoreOptions.pollInterval}. */
export const DEFAULT_POLL_INTERVAL = 250
/** Default of {@link PostgresStoreOptions.probeTimeout}. */
export const DEFAULT_PROBE_TIMEOUT = 2000
/** Default of {@link PostgresStoreOptions.minReconnectDelay}. */
export const DEFAULT_MIN_RECONNECT_DELAY = 100
/** Default of {@link PostgresStoreOptions.maxReconnectDelay}. */
export const DEFAULT_MAX_RECONNECT_DELAY = 5000
/** Default of {@link PostgresStoreOptions.sweepInterval}: a minute. */
export const DEFAULT_SWEEP_INTERVAL = 60_000
/** Default of {@link PostgresStoreOptions.maxBatch}. */
export const DEFAULT_MAX_BATCH = 256
/** Default of {@link PostgresStoreOptions.commandTimeout}. */
export const DEFAULT_COMMAND_TIMEOUT = 5000
/** Default of {@link PostgresStoreOptions.poolSize}. */
export const DEFAULT_POOL_SIZE = 10

/** Turns the `data` of an event that was published as a non-string value back into a value. */
export type Deserializer = (data: string) => unknown

/** Options of {@link createPostgresStore}. */
export interface PostgresStoreOptions {
  /**
   * A `pg` pool the store sends its queries on. It stays yours: the store never ends it. Give
   * either this or `connectionString`.
   * @defaultValue none: a pool of the store's own on `connectionString`
   */
  pool?: Pool | undefined
  /**
   * The database, as a `postgres://` URL: the store opens a pool of `poolSize` connections on it,
   * and ends it on `close()`. Without it (and without `pool`), `pg` takes the `PGHOST`, `PGUSER`,
   * `PGDATABASE`... environment variables.
   * @defaultValue none
   */
  connectionString?: string | undefined
  /**
   * Connections of the store's own pool (with `connectionString`).
   * @defaultValue 10
   */
  poolSize?: number
  /**
   * Where the one `LISTEN` connection of this store goes: a URL or a `pg` client config. It must
   * reach Postgres directly or through a pooler in session mode: a pooler in transaction mode
   * (PgBouncer's `pool_mode = transaction`) accepts `LISTEN` and never delivers a notification. The
   * store checks this with a probe and warns; delivery then relies on polling. `false` never
   * listens: events arrive by polling only.
   * @defaultValue the pool's connection settings
   */
  listen?: string | ClientConfig | false | undefined
  /**
   * The schema that holds the store's tables and functions, and names its notification channel
   * (`<schema>_events`): 1 to 40 characters among `a-z 0-9 _`.
   * @defaultValue `'rewind'`
   */
  schema?: string
  /**
   * Whether the store creates its schema (idempotently, under an advisory lock) on first use. Turn
   * it off when a migration tool runs `schemaSql(schema)` instead.
   * @defaultValue true
   */
  createSchema?: boolean
  /**
   * Events kept per stream; the oldest are deleted past it.
   * @defaultValue 1000
   */
  maxLen?: number
  /**
   * Bytes of event data kept per stream (each event counts its data, its type and 32 bytes); the
   * oldest are deleted past it. `Infinity` turns it off.
   * @defaultValue 16777216 (16 MiB)
   */
  maxBytes?: number
  /**
   * Longest time an event is kept, in milliseconds, by Postgres's clock: older events are deleted on
   * the next append and never served. Responses are exempt (they have their own bounds).
   * `Infinity` keeps events until `maxLen` or `maxBytes` evicts them.
   * @defaultValue `Infinity`
   */
  maxAge?: number
  /**
   * How long a stream is kept after its last append, in milliseconds: then a sweep deletes it and
   * its events, and the stream starts a new epoch if it is written again (ids of the old one get the
   * gap signal). `Infinity` keeps streams forever.
   * @defaultValue `86400000` (24 hours)
   */
  streamTtl?: number
  /**
   * How long an append, read or watch may wait for Postgres (for a connection of the pool and for
   * the answer) before it fails with `ERR_STORE_UNAVAILABLE`, in milliseconds, so the publisher can
   * answer 503. Postgres stops waiting for a stream's row lock after 0.8 × this (`lock_timeout`,
   * set inside the store's functions: PgBouncer refuses it as a startup parameter), so a write
   * that timed out is usually not applied later; like any write over a network, it may have been.
   * @defaultValue 5000
   */
  commandTimeout?: number
  /**
   * How often the live tail asks Postgres whether a followed stream moved, in milliseconds. It
   * catches what a lost notification missed, and is the only path when `LISTEN` cannot work.
   * @defaultValue 250
   */
  pollInterval?: number
  /**
   * How long the store waits for its own probe notification after `LISTEN` before it warns that
   * notifications do not arrive (a pooler in transaction mode) and relies on polling, in ms.
   * @defaultValue 2000
   */
  probeTimeout?: number
  /**
   * First delay before the `LISTEN` connection reconnects, in milliseconds; it doubles with every
   * consecutive failure up to `maxReconnectDelay`.
   * @defaultValue 100
   */
  minReconnectDelay?: number
  /**
   * Longest delay between reconnection attempts of the `LISTEN` connection, in milliseconds.
   * @defaultValue 5000
   */
  maxReconnectDelay?: number
  /**
   * How often this process deletes streams whose `streamTtl` (or whose response TTL) has passed, in
   * milliseconds; each sweep deletes a bounded batch.
   * @defaultValue 60000
   */
  sweepInterval?: number
  /**
   * Most events one transaction appends: appends to one stream that wait for the one before them go
   * together in the next transaction (a token stream costs one commit per batch, not per token).
   * @defaultValue 256
   */
  maxBatch?: number
  /**
   * Turns the data of events published as non-string values back into `StoredEvent.value`.
   * @defaultValue `JSON.parse`
   */
  deserialize?: Deserializer
  /**
   * Told about failures that no caller sees: a lost `LISTEN` connection, a failed poll, a probe that
   * got no notification, events the tail could not deliver. By default each kind is logged at most
   * once a minute with `console.error`, as the hub logs its own.
   * @defaultValue logs with `console.error`, throttled
   */
  onError?: (error: unknown) => void
}

/** Options after defaults and validation. */
export interface ResolvedOptions extends ResolvedSharedStoreOptions {
  readonly schema: string
  readonly createSchema: boolean
  readonly poolSize: number
  /** `Infinity` for none. */
  readonly maxBytes: number
  /** In milliseconds; `Infinity` for none. */
  readonly maxAge: number
  /** In milliseconds; `Infinity` to keep streams forever. */
  readonly streamTtl: number
  readonly commandTimeout: number
  readonly pollInterval: number
  readonly probeTimeout: number
  readonly sweepInterval: number
  readonly maxBatch: number
}

/** Applies defaults and throws `ERR_INVALID_ARGUMENT` for a value out of range. */
export function resolveOptions(options: PostgresStoreOptions): ResolvedOptions {
  if (options === null || typeof options !== 'object') {
    throw invalid('options', `createPostgresStore takes an options object, got ${describeValue(options)}`)
  }
  if (options.pool !== undefined && options.connectionString !== undefined) {
    throw invalid('pool', 'give either pool or connectionString, not both')
  }
  if (options.connectionString !== undefined && typeof options.connectionString !== 'string') {
    throw invalid(
      'connectionString',
      `connectionString must be a string, got ${describeValue(options.connectionString)}`,
    )
  }
  const createSchema = options.createSchema ?? true
  if (typeof createSchema !== 'boolean') {
    throw invalid('createSchema', `createSchema must be true or false, got ${describeValue(createSchema)}`)
  }
  const { maxLen, deserialize, onError, minReconnectDelay, maxReconnectDelay } = resolveSharedStoreOptions(
    options,
    {
      maxLen: DEFAULT_MAX_LEN,
      minReconnectDelay: DEFAULT_MIN_RECONNECT_DELAY,
      maxReconnectDelay: DEFAULT_MAX_RECONNECT_DELAY,
    },
  )
  return {
    schema: checkSchema(options.schema ?? DEFAULT_SCHEMA),
    createSchema,
    poolSize: positiveInteger('poolSize', options.poolSize ?? DEFAULT_POOL_SIZE),
    maxLen,
    maxBytes: boundOption('maxBytes', options.maxBytes ?? DEFAULT_MAX_BYTES),
    maxAge: boundOption('maxAge', options.maxAge ?? Number.POSITIVE_INFINITY),
    streamTtl: boundOption('streamTtl', options.streamTtl ?? DEFAULT_STREAM_TTL),
    commandTimeout: positiveDelay('commandTimeout', options.commandTimeout ?? DEFAULT_COMMAND_TIMEOUT),
    pollInterval: positiveDelay('pollInterval', options.pollInterval ?? DEFAULT_POLL_INTERVAL),
    probeTimeout: positiveDelay('probeTimeout', options.probeTimeout ?? DEFAULT_PROBE_TIMEOUT),
    minReconnectDelay,
    maxReconnectDelay,
    sweepInterval: positiveDelay('sweepInterval', options.sweepInterval ?? DEFAULT_SWEEP_INTERVAL),
    maxBatch: positiveInteger('maxBatch', options.maxBatch ?? DEFAULT_MAX_BATCH),
    deserialize,
    onError,
  }
}

/** Delay before the `attempt`-th consecutive retry (counted from 1): doubling, bounded. */
export function backoff(attempt: number, min: number, max: number): number {
  return Math.min(max, min * 2 ** Math.min(Math.max(attempt - 1, 0), 30))
}

function invalid(field: string, message: string): RewindError {
  return new RewindError('ERR_INVALID_ARGUMENT', message, { field })
}
