export {
  DEFAULT_BLOCK_MS,
  DEFAULT_COMMAND_TIMEOUT,
  DEFAULT_MAX_LEN,
  DEFAULT_MAX_RECONNECT_DELAY,
  DEFAULT_MIN_RECONNECT_DELAY,
  DEFAULT_PREFIX,
  DEFAULT_REDIS_URL,
  DEFAULT_STREAM_TTL,
  type Deserializer,
  type RedisStoreOptions,
  type TrimMode,
} from './options.js'
export { createRedisStore, type RedisStore } from './store.js'
