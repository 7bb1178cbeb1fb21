/**
 * The same invariant on the memory store, for the faults it has: a producer that throws mid-answer,
 * an ended answer forgotten (its ttl) while slow readers are still replaying it, and an answer that
 * outgrows its `maxEvents` while readers come and go. One instance per run (a memory store belongs
 * to one hub), Express and Fastify in turn; four resuming readers at seeded random moments.
 */
import { performance } from 'node:perf_hooks'
import { describe } from 'vitest'
import { sleep } from '../support/wait.js'
import { ADAPTERS, type Instance, startInstance } from './helpers/instances.js'
import { defineRuns } from './helpers/kinds.js'
import type { Random } from './helpers/random.js'
import { type RunOptions, runAnswer } from './helpers/scenario.js'

const adapterOf = (i: number) => ADAPTERS[i % 2]!

async function single(i: number, ttl?: number): Promise<Instance> {
  return startInstance(adapterOf(i), undefined, ttl === undefined ? {} : { responses: { ttl } })
}

function on(
  instance: Instance,
  random: Random,
): Pick<RunOptions, 'random' | 'producing' | 'readersOn' | 'other' | 'lease'> {
  // In memory, producer and readers share the process: no lease, a death is told at once.
  return {
    random,
    producing: instance,
    other: instance,
    readersOn: [instance, instance, instance, instance],
    lease: 0,
  }
}

/** Resolves once the answer is no longer `active` (or gone), polling every 5 ms. */
async function settled(instance: Instance, id: string, what: 'ended' | 'gone'): Promise<void> {
  const deadline = performance.now() + 20_000
  for (;;) {
    const status = await instance.responses.status(id)
    if (what === 'ended' ? status !== 'active' : status === undefined) return
    if (performance.now() > deadline) throw new Error(`the answer was never ${what}`)
    await sleep(5)
  }
}

/** A run's answer on its instance: everything of `runAnswer`'s options but where everyone is. */
type MemoryRun = Omit<RunOptions, keyof ReturnType<typeof on>>

/**
 * Defines the runs of a memory fault kind: each run gets one fresh instance (answers kept `ttl` ms
 * after they end, if given), plays `answer` on it, and closes it whatever the outcome.
 */
function defineMemoryRuns(
  kind: string,
  name: (i: number) => string,
  answer: (instance: Instance, random: Random, i: number) => MemoryRun,
  ttl?: number,
): void {
  defineRuns(kind, {
    normalRuns: 2,
    timeout: 30_000,
    name,
    async run(i, random) {
      const instance = await single(i, ttl)
      try {
        return await runAnswer({ ...on(instance, random), ...answer(instance, random, i) })
      } finally {
        await instance.close()
      }
    },
  })
}

describe('answers on the memory store through its faults', () => {
  defineMemoryRuns(
    'memory: producer throws',
    (i) => `${adapterOf(i)}, ${i % 4 < 2 ? 'fast' : 'slow'} producer`,
    (instance, random, i) => {
      const interval = i % 4 < 2 ? 10 : 40
      const plan = { tokens: 100, interval, throwAt: random.int(10, 90) }
      return {
        plan,
        faultAt: Math.max(0, plan.throwAt * interval - 100),
        dataMayBeLost: false,
        fault: (id) => settled(instance, id, 'ended'),
      }
    },
  )

  defineMemoryRuns(
    'memory: answer expires mid-replay',
    (i) => `${adapterOf(i)}, 12 MB answer, ttl 300 ms, slow readers`,
    (instance, random) => ({
      // Big enough that a reader that stops reading is still replaying when the ttl runs out.
      plan: { tokens: 12_000, interval: 0, padding: 1000 },
      faultAt: random.int(0, 100),
      dataMayBeLost: true,
      stallFor: [random.int(800, 2000), random.int(800, 2000), random.int(0, 600), undefined],
      fault: (id) => settled(instance, id, 'gone'),
    }),
    300,
  )

  defineMemoryRuns(
    'memory: maxEvents evicts while read',
    (i) => `${adapterOf(i)}, maxEvents 30 of 150 tokens`,
    (_instance, random) => ({
      plan: { tokens: 150, interval: 10 },
      start: { maxEvents: 30 },
      faultAt: random.int(100, 900),
      dataMayBeLost: false,
      evictionAllowed: true,
      stallFor: [undefined, random.int(100, 500), undefined, random.int(100, 500)],
      // Eviction goes on all along: the "fault" is a moment readers come and go around.
      fault: async () => {},
    }),
  )
})
