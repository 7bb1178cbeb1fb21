/**
 * Fault (b): Redis killed (SIGKILL) and restarted EMPTY, without persistence: the answer's record
 * and stream are gone for good. Every reader must still end, with the terminal event or a 404 (the
 * answer no longer exists), never with `done` unless it had every token, never open forever.
 */
import { describeOnRedis, spawnForTests } from '../../packages/redis/test/helpers/redis-server.js'
import { sleep } from '../support/wait.js'
import { defineRedisRuns } from './helpers/redis-runs.js'

const redis = await spawnForTests('faults: Redis restarted empty')

describeOnRedis('an answer through a Redis restart that loses the data', redis, (redis) => {
  defineRedisRuns('restart empty', {
    timeout: 40_000,
    connection: () => ({ redis: redis.url }),
    prefix: 'faults-empty',
    fault: (random) => ({
      dataMayBeLost: true,
      async fault() {
        await redis.stop('SIGKILL')
        await sleep(random.int(100, 1500))
        await redis.start()
      },
    }),
  })
})
