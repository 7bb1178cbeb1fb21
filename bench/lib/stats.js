/** Small statistics over repetitions. */

/** Median of the finite numbers in `values`, or null if there are none. */
export function median(values) {
  const finite = values.filter((v) => typeof v === 'number' && Number.isFinite(v)).sort((a, b) => a - b)
  if (finite.length === 0) return null
  const mid = finite.length >> 1
  return finite.length % 2 === 1 ? finite[mid] : (finite[mid - 1] + finite[mid]) / 2
}

/**
 * Median over repetitions of `pick(result)` for one server, and the median of its per-repetition
 * ratio to the baseline measured in the same repetition (interleaved, so drift cancels out).
 */
export function summarize(runs, baselineRuns, pick) {
  const values = runs.map((run) => (run?.ok ? pick(run.result) : null))
  const value = median(values)
  let ratio = null
  if (baselineRuns !== undefined) {
    const ratios = runs.map((run, i) => {
      const base = baselineRuns[i]
      if (!run?.ok || !base?.ok) return null
      const a = pick(run.result)
      const b = pick(base.result)
      return typeof a === 'number' && typeof b === 'number' && b !== 0 ? a / b : null
    })
    ratio = median(ratios)
  }
  return { value, ratio, values }
}
