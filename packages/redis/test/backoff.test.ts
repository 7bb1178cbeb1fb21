/**
 * Reconnection backoff with jitter: every delay stays within `minReconnectDelay` and
 * `maxReconnectDelay`, and instances that lost Redis together do not retry in lockstep, as a property
 * of `backoff` and against a redis-server of the test's own, killed and started again.
 */
import { MAX_TIMER_DELAY } from '@rewind/core'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { waitUntil } from '../../../test/support/wait.js'
import { CommandConnection } from '../src/connection.js'
import { backoff, resolveOptions } from '../src/options.js'
import { describeOnRedis, spawnForTests } from './helpers/redis-server.js'

/** A pair of reconnection delays `min` ≤ `max`, as `resolveOptions` accepts them. */
const delays = fc
  .tuple(fc.integer({ min: 1, max: MAX_TIMER_DELAY }), fc.integer({ min: 1, max: MAX_TIMER_DELAY }))
  .map(([a, b]) => ({ min: Math.min(a, b), max: Math.max(a, b) }))
const attempts = fc.integer({ min: 1, max: 200 })
/** What `Math.random` returns: a float in [0, 1). */
const draws = fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true })

/** Upper end of the attempt's window: twice `min` at the first attempt, doubling, capped at `max`. */
function ceiling(attempt: number, min: number, max: number): number {
  return Math.min(max, min * 2 ** Math.min(attempt, 31))
}

describe('backoff', () => {
  it('gives a whole number of milliseconds within min and max, and within the window of its attempt', () => {
    fc.assert(
      fc.property(delays, attempts, draws, ({ min, max }, attempt, draw) => {
        const delay = backoff(attempt, min, max, () => draw)
        expect(Number.isSafeInteger(delay)).toBe(true)
        expect(delay).toBeGreaterThanOrEqual(min)
        expect(delay).toBeLessThanOrEqual(ceiling(attempt, min, max))
        expect(delay).toBeLessThanOrEqual(max)
      }),
    )
  })

  it('spans the whole window: instances with different draws wait different delays', () => {
    fc.assert(
      fc.property(delays, attempts, ({ min, max }, attempt) => {
        expect(backoff(attempt, min, max, () => 0)).toBe(min)
        expect(backoff(attempt, min, max, () => 1 - Number.EPSILON)).toBe(ceiling(attempt, min, max))
        // A draw is never lost to rounding: a larger draw never waits less.
        const low = backoff(attempt, min, max, () => 0.25)
        const high = backoff(attempt, min, max, () => 0.75)
        expect(high).toBeGreaterThanOrEqual(low)
        if (min < max) expect(high).toBeGreaterThan(min)
      }),
    )
  })

  it('lets the window grow to max, however small min is', () => {
    fc.assert(
      fc.property(delays, ({ min, max }) => {
        expect(backoff(40, min, max, () => 1 - Number.EPSILON)).toBe(max)
      }),
    )
  })

  it('draws from Math.random by default: the delays of many instances are not all equal', () => {
    fc.assert(
      fc.property(delays, attempts, ({ min, max }, attempt) => {
        fc.pre(min < max)
        // 32 instances failing the same attempt. Even a window of two values makes them all agree
        // only once in 2^31 runs.
        const seen = new Set(Array.from({ length: 32 }, () => backoff(attempt, min, max)))
        expect(seen.size).toBeGreaterThan(1)
        for (const delay of seen) {
          expect(delay).toBeGreaterThanOrEqual(min)
          expect(delay).toBeLessThanOrEqual(max)
        }
      }),
    )
  })

  it('gives min itself when min and max are equal: nothing to spread', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: MAX_TIMER_DELAY }), attempts, (delay, attempt) => {
        expect(backoff(attempt, delay, delay)).toBe(delay)
      }),
    )
  })
})

const redis = await spawnForTests('backoff')

describeOnRedis('reconnecting after a Redis restart', redis, (redis) => {
  it('spreads the instances: their retry delays differ, all within min and max', async () => {
    const min = 20
    const max = 400
    const options = resolveOptions({ minReconnectDelay: min, maxReconnectDelay: max, commandTimeout: 1000 })
    const instances = Array.from({ length: 8 }, () => {
      const connection = new CommandConnection(redis.url, undefined, options, () => {})
      const delays: number[] = []
      connection.client.on('reconnecting', (delay: number) => delays.push(delay))
      return { connection, delays, readyAt: Number.NaN }
    })
    try {
      await waitUntil(
        () => instances.every(({ connection }) => connection.client.status === 'ready'),
        'every instance connected',
      )
      await redis.stop('SIGKILL')
      // Down long enough for a few attempts each.
      await new Promise((resolve) => setTimeout(resolve, 600))
      for (const instance of instances) {
        instance.connection.client.once('ready', () => {
          instance.readyAt = performance.now()
        })
      }
      const restarted = performance.now()
      await redis.start()
      await waitUntil(() => instances.every(({ readyAt }) => !Number.isNaN(readyAt)), 'every instance back')

      const all = instances.flatMap(({ delays }) => delays)
      expect(all.length).toBeGreaterThanOrEqual(instances.length * 2)
      for (const delay of all) {
        expect(delay).toBeGreaterThanOrEqual(min)
        expect(delay).toBeLessThanOrEqual(max)
      }
      // Without jitter every instance waits 20, 40, 80... ms: the same delays at the same moments.
      const firsts = new Set(instances.map(({ delays }) => delays[0]))
      expect(firsts.size).toBeGreaterThan(1)
      const sequences = new Set(instances.map(({ delays }) => delays.join(',')))
      expect(sequences.size).toBe(instances.length)
      const back = instances.map(({ readyAt }) => Math.round(readyAt - restarted))
      console.info(`reconnected ${Math.min(...back)}-${Math.max(...back)} ms after the restart began`)
    } finally {
      await Promise.all(instances.map(({ connection }) => connection.close()))
    }
  })
})
