/**
 * Fault (b): Redis killed (SIGKILL) and restarted EMPTY, without persistence: the answer's record
 * and stream are gone for good. Every reader must still end, with the terminal event or a 404 (the
 * answer no longer exists), never with `done` unless it had every token, never open forever.
 */
import { afterAll, describe } from 'vitest'
import { spawnForTests, uniquePrefix } from '../../packages/redis/test/helpers/redis-server.js'
import { sleep } from './helpers/instances.js'
import { defineRuns } from './helpers/kinds.js'
import { describeVariant, redisPair, redisRun, variant } from './helpers/redis-runs.js'
import { runAnswer } from './helpers/scenario.js'

const redis = await spawnForTests('faults: Redis restarted empty')

describe.skipIf(redis === undefined)('an answer through a Redis restart that loses the data', () => {
  afterAll(() => redis!.close())

  defineRuns('restart empty', {
    normalRuns: 3,
    timeout: 40_000,
    name: (i) => describeVariant(variant(i)),
    async run(i, random) {
      const pair = await redisPair({ redis: redis!.url }, uniquePrefix('faults-empty'))
      try {
        return await runAnswer({
          ...redisRun(pair, variant(i), random),
          dataMayBeLost: true,
          async fault() {
            await redis!.stop('SIGKILL')
            await sleep(random.int(100, 1500))
            await redis!.start()
          },
        })
      } finally {
        await pair.close()
      }
    },
  })
})
