/**
 * The figures a fault kind measured, printed as one line per kind (`[faults] …`) so a run's output
 * gives the fault table of docs/reliability.md its "measured" column: from the fault's end to each
 * reader's end, median and max over every reader of every run.
 */
import { replayHint } from './random.js'
import type { RunResult } from './scenario.js'

export class KindReport {
  private readonly afterFault: number[] = []
  private readonly faults: number[] = []
  private runs = 0
  private failed = 0
  private bound = 0

  constructor(readonly kind: string) {}

  add(result: RunResult): void {
    this.runs++
    if (result.violations.length > 0) this.failed++
    this.bound = Math.max(this.bound, result.bound)
    this.faults.push(result.faultMs)
    this.afterFault.push(...result.afterFault.filter((ms) => Number.isFinite(ms)))
  }

  print(): void {
    const sorted = [...this.afterFault].sort((a, b) => a - b)
    const faults = [...this.faults].sort((a, b) => a - b)
    console.info(
      `[faults] ${this.kind}: runs=${this.runs} failed=${this.failed} readers-ended=${sorted.length} ` +
        `after-fault median=${median(sorted)} ms max=${sorted.at(-1) ?? Number.NaN} ms ` +
        `(bound up to ${Math.round(this.bound)} ms; fault lasted ${faults[0] ?? '-'}..${faults.at(-1) ?? '-'} ms)`,
    )
  }
}

/** The message of a failed run: the seed to replay it, what broke, and what each reader saw. */
export function failure(
  kind: string,
  first: number,
  index: number,
  detail: string,
  result: RunResult,
): string {
  return [
    `${kind}, run ${index + 1}, seed ${first + index}: ${detail}; ${replayHint(first, index)}`,
    `answer ${result.id}: producer ${result.doneWith ?? 'unsettled'}, status ${result.status ?? 'gone'}, fault ${result.faultMs} ms, bound ${Math.round(result.bound)} ms`,
    ...result.violations.map((v) => `  broken: ${v}`),
    ...result.readers.map(
      (r) =>
        `  ${r.name}: ${r.tokens} tokens, gaps [${r.gaps.join(',')}], end ${r.end}, ${r.afterFault ?? '-'} ms after the fault, attempts ${r.attempts}`,
    ),
  ].join('\n')
}

const median = (sorted: readonly number[]) =>
  sorted.length === 0 ? Number.NaN : sorted[Math.floor((sorted.length - 1) / 2)]!
