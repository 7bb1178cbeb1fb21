/**
 * Declares the runs of one fault kind as tests: `runs` runs (a few by default, `REWIND_FAULT_RUNS`
 * in the full run), each with its own seed and variant, each one `it`, failing with the seed to
 * replay it and what every reader saw; and a last line of figures for the kind.
 */
import { afterAll, expect, it } from 'vitest'
import { baseSeed, Random, runCount } from './random.js'
import { failure, KindReport } from './report.js'
import type { RunResult } from './scenario.js'

export interface KindOptions {
  /** Runs in a normal `pnpm test`. */
  readonly normalRuns: number
  /** What run `i` is (its variant), for the test's name. */
  readonly name: (i: number) => string
  /** Performs run `i` with its seeded randomness. */
  readonly run: (i: number, random: Random) => Promise<RunResult>
  /** How long one run may take, in ms. */
  readonly timeout: number
}

const { REWIND_FAULT_VERBOSE: verbose } = process.env

export function defineRuns(kind: string, options: KindOptions): void {
  const report = new KindReport(kind)
  const first = baseSeed()
  const runs = runCount(options.normalRuns)
  afterAll(() => report.print())
  for (let i = 0; i < runs; i++) {
    const seed = first + i
    it(`${kind}, run ${i + 1}: ${options.name(i)} [seed ${seed}]`, { timeout: options.timeout }, async () => {
      const result = await options.run(i, new Random(seed))
      report.add(result)
      // REWIND_FAULT_VERBOSE=1 prints what every run's readers saw, passing or not.
      if (verbose) console.info(failure(kind, first, i, options.name(i), result))
      expect(result.violations, failure(kind, first, i, options.name(i), result)).toEqual([])
    })
  }
}
