/**
 * Fault (c): Redis frozen with SIGSTOP and thawed with SIGCONT, two to four times in a row (its
 * sockets stay open, commands time out; a freeze may outlast the lease): a stall, as a long fork, a swapped-out host or a paused
 * container makes. No data is lost, so no reader may see a hole or a 404, and every one must end.
 */
import { afterAll, describe } from 'vitest'
import { spawnForTests, uniquePrefix } from '../../packages/redis/test/helpers/redis-server.js'
import { sleep } from './helpers/instances.js'
import { defineRuns } from './helpers/kinds.js'
import { describeVariant, redisPair, redisRun, variant } from './helpers/redis-runs.js'
import { runAnswer } from './helpers/scenario.js'

const redis = await spawnForTests('faults: Redis frozen')

describe.skipIf(redis === undefined)('an answer through Redis freezes', () => {
  afterAll(() => redis!.close())

  defineRuns('freezes', {
    normalRuns: 3,
    timeout: 40_000,
    name: (i) => describeVariant(variant(i)),
    async run(i, random) {
      const pair = await redisPair({ redis: redis!.url }, uniquePrefix('faults-freeze'))
      try {
        return await runAnswer({
          ...redisRun(pair, variant(i), random),
          dataMayBeLost: false,
          async fault() {
            const times = random.int(2, 4)
            for (let n = 0; n < times; n++) {
              if (n > 0) await sleep(random.int(100, 400))
              redis!.signal('SIGSTOP')
              try {
                await sleep(random.int(200, 1500))
              } finally {
                redis!.signal('SIGCONT')
              }
            }
          },
        })
      } finally {
        await pair.close()
      }
    },
  })
})
