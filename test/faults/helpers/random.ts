/**
 * Seeded randomness, so a failing run can be replayed: every moment, duration and choice of a run
 * comes from one seed, printed with any failure. `REWIND_FAULT_SEED` fixes the first run's seed
 * (run i uses seed + i, and the variant of its index); `REWIND_FAULT_RUNS` sets how many runs of each kind a file makes.
 */

/** A small, fast PRNG (mulberry32): the same seed gives the same sequence on every machine. */
export class Random {
  private state: number

  constructor(readonly seed: number) {
    this.state = seed >>> 0
  }

  /** A float in [0, 1). */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0
    let t = this.state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }

  /** An integer in [min, max]. */
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1))
  }

  /** One of `items`. */
  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.next() * items.length)]!
  }

  /** True with probability `p`. */
  chance(p: number): boolean {
    return this.next() < p
  }
}

/** The first run's seed: `REWIND_FAULT_SEED`, else a fresh one. */
export function baseSeed(): number {
  const { REWIND_FAULT_SEED: fromEnv } = process.env
  if (fromEnv !== undefined && fromEnv !== '') {
    const seed = Number(fromEnv)
    if (!Number.isSafeInteger(seed) || seed < 0)
      throw new Error(`REWIND_FAULT_SEED must be an integer, got ${fromEnv}`)
    return seed
  }
  return Math.floor(Math.random() * 2 ** 31)
}

/**
 * How many runs of each kind: `REWIND_FAULT_RUNS` (the full run, `pnpm test:faults`, sets 20), else
 * `normal` (a few, to keep `pnpm test` short).
 */
export function runCount(normal: number): number {
  const { REWIND_FAULT_RUNS: fromEnv } = process.env
  if (fromEnv === undefined || fromEnv === '') return normal
  const runs = Number(fromEnv)
  if (!Number.isSafeInteger(runs) || runs < 1)
    throw new Error(`REWIND_FAULT_RUNS must be a positive integer, got ${fromEnv}`)
  return runs
}

/** How to replay run `index` of a file whose first seed was `first`: the same seed, the same variant. */
export function replayHint(first: number, index: number): string {
  return `replay: REWIND_FAULT_SEED=${first} npx vitest run --project faults <file> -t "run ${index + 1}:"`
}
