/**
 * The Redis side of a run: an Express and a Fastify instance, each with its own `createRedisStore`
 * on the same Redis (a server or a cluster) under one fresh prefix, with a short lease and short
 * timeouts so the bounds are small; and the run's variant (which instance produces, where the four
 * readers are, how fast the producer is), so that a few runs already cover every combination.
 */
import { createRedisStore, type RedisStoreOptions } from '@rewind/redis'
import { uniquePrefix } from '../../../packages/redis/test/helpers/redis-server.js'
import { ADAPTERS, type Adapter, type Instance, type ProducerPlan, startInstance } from './instances.js'
import { defineRuns } from './kinds.js'
import type { Random } from './random.js'
import { type RunOptions, runAnswer } from './scenario.js'

/** The lease of every hub in the Redis runs: short, so a lapse is told soon. */
export const LEASE = 1000

/** The store's timings: a command fails after 500 ms, reconnects every 20 to 100 ms. */
const STORE_TIMINGS = {
  commandTimeout: 500,
  minReconnectDelay: 20,
  maxReconnectDelay: 100,
  blockMs: 500,
} satisfies RedisStoreOptions

export const FAST: ProducerPlan = { tokens: 200, interval: 10 }
export const SLOW: ProducerPlan = { tokens: 60, interval: 40 }

export interface Pair {
  readonly express: Instance
  readonly fastify: Instance
  close(): Promise<void>
}

/** Two instances on the same Redis, same prefix, each with its own store. */
export async function redisPair(connection: RedisStoreOptions, prefix: string): Promise<Pair> {
  const stores = ADAPTERS.map(() =>
    createRedisStore({ ...STORE_TIMINGS, ...connection, prefix, onError: () => {} }),
  )
  const options = { responses: { lease: LEASE } }
  const [express, fastify] = await Promise.all(
    ADAPTERS.map((adapter, i) => startInstance(adapter, stores[i]!, options)),
  )
  return {
    express: express!,
    fastify: fastify!,
    async close() {
      await Promise.allSettled([express!.close(), fastify!.close()])
      await Promise.allSettled(stores.map((store) => store.close()))
    },
  }
}

export interface Variant {
  readonly producing: Adapter
  readonly placement: 'spread' | 'producing'
  readonly speed: 'fast' | 'slow'
}

/**
 * Run `i`'s variant: any two consecutive runs differ in producer and placement, and every four runs
 * cover the four (producer, placement) pairs, under both speeds when the kind has no speed of its own.
 */
export function variant(i: number, speed?: 'fast' | 'slow'): Variant {
  return {
    producing: ADAPTERS[i % 2]!,
    placement: ((i >> 1) + i) % 2 === 0 ? 'spread' : 'producing',
    speed: speed ?? (((i >> 1) + (i >> 2)) % 2 === 0 ? 'fast' : 'slow'),
  }
}

export const describeVariant = (v: Variant) =>
  `${v.producing} producing (${v.speed}), readers ${v.placement === 'spread' ? 'on both' : 'all on the producing instance'}`

/** The run's options but the fault: where everyone is, and when the fault starts (seeded). */
export function redisRun(
  pair: Pair,
  v: Variant,
  random: Random,
): Pick<RunOptions, 'random' | 'producing' | 'readersOn' | 'other' | 'plan' | 'faultAt' | 'lease'> {
  const producing = pair[v.producing]
  const other = v.producing === 'express' ? pair.fastify : pair.express
  const plan = v.speed === 'fast' ? FAST : SLOW
  const spread: [Instance, Instance, Instance, Instance] = random.chance(0.5)
    ? [producing, other, other, producing]
    : [other, producing, producing, other]
  return {
    random,
    producing,
    other,
    plan,
    readersOn: v.placement === 'spread' ? spread : [producing, producing, producing, producing],
    // Somewhere in the first 60% of the production, never in its first 200 ms.
    faultAt: random.int(200, Math.round(plan.tokens * plan.interval * 0.6)),
    lease: LEASE,
  }
}

/** A run's fault on Redis: what it does while the answer is produced, and whether data may be lost. */
export type RedisFault = Pick<RunOptions, 'dataMayBeLost' | 'fault'>

export interface RedisRunsOptions {
  /** Bound of one run. */
  readonly timeout: number
  /** The Redis (a server or a cluster) of a run's pair, read when the run starts. */
  connection(): RedisStoreOptions
  /** Start of each run's unique key prefix. */
  readonly prefix: string
  /** The producer's speed in every run; by default it varies with the run's index. */
  readonly speed?: 'fast' | 'slow'
  /** The fault of one run, on its seeded `random`, for the pair under `prefix`. */
  fault(random: Random, prefix: string): RedisFault
  /** After each run, once its pair is closed (to repair the Redis for the next run). */
  afterRun?(): Promise<void>
}

/**
 * Defines the runs of a Redis fault kind: each run gets a fresh pair under its own prefix, placed by
 * the variant of its index, lives through `fault`, and is closed whatever the outcome.
 */
export function defineRedisRuns(kind: string, options: RedisRunsOptions): void {
  defineRuns(kind, {
    normalRuns: 3,
    timeout: options.timeout,
    name: (i) => describeVariant(variant(i, options.speed)),
    async run(i, random) {
      const prefix = uniquePrefix(options.prefix)
      const pair = await redisPair(options.connection(), prefix)
      try {
        return await runAnswer({
          ...redisRun(pair, variant(i, options.speed), random),
          ...options.fault(random, prefix),
        })
      } finally {
        await pair.close()
        await options.afterRun?.()
      }
    },
  })
}
