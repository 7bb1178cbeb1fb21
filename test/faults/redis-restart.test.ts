/**
 * Fault (a): Redis stopped for 0.3 to 2 s and restarted WITH its data (an append-only file synced on
 * every write), while an answer is produced on one instance and read on both, under a fast producer
 * (a token every 10 ms) and a slow one (every 40 ms). A short blip must leave no hole in the stored
 * answer, and no reader open forever.
 */
import { describeOnRedis, spawnForTests } from '../../packages/redis/test/helpers/redis-server.js'
import { sleep } from '../support/wait.js'
import { defineRedisRuns } from './helpers/redis-runs.js'

const redis = await spawnForTests('faults: Redis restarted with its data', { persistent: true })

describeOnRedis('an answer through a Redis restart that keeps the data', redis, (redis) => {
  for (const speed of ['fast', 'slow'] as const) {
    defineRedisRuns(`restart with data, ${speed} producer`, {
      timeout: 40_000,
      connection: () => ({ redis: redis.url }),
      prefix: 'faults-restart',
      speed,
      fault: (random) => ({
        dataMayBeLost: false,
        async fault() {
          await redis.stop()
          await sleep(random.int(300, 2000))
          await redis.start()
        },
      }),
    })
  }
})
