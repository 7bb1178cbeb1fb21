/**
 * Fault (a): Redis stopped for 0.3 to 2 s and restarted WITH its data (an append-only file synced on
 * every write), while an answer is produced on one instance and read on both, under a fast producer
 * (a token every 10 ms) and a slow one (every 40 ms). A short blip must leave no hole in the stored
 * answer, and no reader open forever.
 */
import { afterAll, describe } from 'vitest'
import { spawnForTests, uniquePrefix } from '../../packages/redis/test/helpers/redis-server.js'
import { sleep } from './helpers/instances.js'
import { defineRuns } from './helpers/kinds.js'
import { describeVariant, redisPair, redisRun, variant } from './helpers/redis-runs.js'
import { runAnswer } from './helpers/scenario.js'

const redis = await spawnForTests('faults: Redis restarted with its data', { persistent: true })

describe.skipIf(redis === undefined)('an answer through a Redis restart that keeps the data', () => {
  afterAll(() => redis!.close())

  for (const speed of ['fast', 'slow'] as const) {
    defineRuns(`restart with data, ${speed} producer`, {
      normalRuns: 3,
      timeout: 40_000,
      name: (i) => describeVariant(variant(i, speed)),
      async run(i, random) {
        const v = variant(i, speed)
        const pair = await redisPair({ redis: redis!.url }, uniquePrefix('faults-restart'))
        try {
          return await runAnswer({
            ...redisRun(pair, v, random),
            dataMayBeLost: false,
            async fault() {
              await redis!.stop()
              await sleep(random.int(300, 2000))
              await redis!.start()
            },
          })
        } finally {
          await pair.close()
        }
      },
    })
  }
})
