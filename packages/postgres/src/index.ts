export {
  DEFAULT_COMMAND_TIMEOUT,
  DEFAULT_MAX_BATCH,
  DEFAULT_MAX_BYTES,
  DEFAULT_MAX_LEN,
  DEFAULT_MAX_RECONNECT_DELAY,
  DEFAULT_MIN_RECONNECT_DELAY,
  DEFAULT_POLL_INTERVAL,
  DEFAULT_POOL_SIZE,
  DEFAULT_PROBE_TIMEOUT,
  DEFAULT_SCHEMA,
  DEFAULT_STREAM_TTL,
  DEFAULT_SWEEP_INTERVAL,
  type Deserializer,
  type PostgresStoreOptions,
} from './options.js'
export { PostgresResponses } from './responses.js'
export { SCHEMA_VERSION, schemaSql } from './schema.js'
export { createPostgresStore, PostgresStore } from './store.js'
export type { TailMode } from './tail.js'
