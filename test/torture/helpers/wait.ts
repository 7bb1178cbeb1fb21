/** Bounded waiting on a probe, percentiles and the summary lines the suite prints (plain waits: test/support/wait.ts). */
import { sleep } from '../../support/wait.js'

/** Polls an asynchronous `probe` until `check` accepts its value; resolves with that value. */
export async function waitForValue<T>(
  probe: () => Promise<T>,
  check: (value: T) => boolean,
  what: string,
  timeout = 10_000,
  interval = 20,
): Promise<T> {
  const deadline = Date.now() + timeout
  for (;;) {
    const value = await probe()
    if (check(value)) return value
    if (Date.now() > deadline) {
      throw new Error(
        `timed out after ${timeout} ms waiting for ${what}; last value ${JSON.stringify(value)}`,
      )
    }
    await sleep(interval)
  }
}

/** The `p`th percentile (0..100) of `values`, nearest rank. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN
  const sorted = [...values].sort((a, b) => a - b)
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))
  return sorted[rank]!
}

export const MiB = 1024 * 1024
export const KiB = 1024
export const mib = (bytes: number) => `${(bytes / MiB).toFixed(1)} MiB`

/** Prints one line of figures, prefixed so the lines are easy to collect from a run. */
export function report(test: string, figures: Record<string, string | number | boolean>): void {
  const parts = Object.entries(figures).map(
    ([key, value]) => `${key}=${typeof value === 'number' ? round(value) : value}`,
  )
  console.info(`[torture] ${test}: ${parts.join(' ')}`)
}

function round(value: number): string {
  return Number.isInteger(value) ? String(value) : value.toFixed(value < 10 ? 2 : 1)
}

/** Runs `task(i)` for i in 0..count-1 with at most `concurrency` at a time. */
export async function pool(
  count: number,
  concurrency: number,
  task: (i: number) => Promise<void>,
): Promise<void> {
  let next = 0
  const worker = async () => {
    while (next < count) await task(next++)
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker))
}
