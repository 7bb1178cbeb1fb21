/**
 * Fault (c): Redis frozen with SIGSTOP and thawed with SIGCONT, two to four times in a row (its
 * sockets stay open, commands time out; a freeze may outlast the lease): a stall, as a long fork, a swapped-out host or a paused
 * container makes. No data is lost, so no reader may see a hole or a 404, and every one must end.
 */
import { describeOnRedis, spawnForTests } from '../../packages/redis/test/helpers/redis-server.js'
import { sleep } from '../support/wait.js'
import { defineRedisRuns } from './helpers/redis-runs.js'

const redis = await spawnForTests('faults: Redis frozen')

describeOnRedis('an answer through Redis freezes', redis, (redis) => {
  defineRedisRuns('freezes', {
    timeout: 40_000,
    connection: () => ({ redis: redis.url }),
    prefix: 'faults-freeze',
    fault: (random) => ({
      dataMayBeLost: false,
      async fault() {
        const times = random.int(2, 4)
        for (let n = 0; n < times; n++) {
          if (n > 0) await sleep(random.int(100, 400))
          redis.signal('SIGSTOP')
          try {
            await sleep(random.int(200, 1500))
          } finally {
            redis.signal('SIGCONT')
          }
        }
      },
    }),
  })
})
