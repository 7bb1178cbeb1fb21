/**
 * @rewind/express on the Redis history store (@rewind/redis), for cross-instance runs: start two of
 * these with the same BENCH_REDIS_PREFIX, publish on one, subscribe on the other.
 */
import { sse } from '@rewind/express'
import { createRedisStore } from '@rewind/redis'
import { serveRewindExpress } from './rewind-express-app.js'

const store = createRedisStore({
  redis: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
  prefix: process.env.BENCH_REDIS_PREFIX ?? 'rewind-bench:',
})
serveRewindExpress(sse({ store, heartbeatInterval: 0 }), store)
