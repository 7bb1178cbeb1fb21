/**
 * Rate-limited error reporting: a failure that hits every client alike (a store outage, say) is
 * logged about once a minute with a count, not once per client, and never goes silent for good.
 */
import { RewindError } from './errors.js'
import { nonNegativeInteger, optionalFunction } from './validation.js'

/** Default of {@link ThrottleErrorsOptions.interval}: one minute. */
export const DEFAULT_ERROR_REPORT_INTERVAL = 60_000

/**
 * Kinds of error tracked one by one. Past it, new kinds share one slot, so memory stays fixed and
 * reports stay rate-limited whatever error names a dependency invents.
 */
const MAX_KINDS = 64
/** The slot kinds share once `MAX_KINDS` are tracked (no error name or code contains NUL). */
const OTHER_KINDS = '\0other'

/** Options of {@link throttleErrors}. */
export interface ThrottleErrorsOptions {
  /**
   * Least time between two reports of one kind of error, in milliseconds; `0` reports every error.
   * @defaultValue 60000
   */
  interval?: number | undefined
  /** The clock, in milliseconds. @defaultValue `Date.now` */
  now?: (() => number) | undefined
}

/**
 * Wraps an error reporter so that each kind of error (the {@link RewindError} `code`, else the
 * error's `name`) is reported at once the first time, then at most once per `interval`, with the
 * number of errors of that kind suppressed since its previous report. Messages may embed stream
 * names or ids, so they do not make kinds: memory is a small fixed map, and no timer is used (each
 * error is decided on arrival, so suppressed errors are counted in the next report of their kind).
 * The hub's default `onError` is `console.error` wrapped this way.
 *
 * @example
 * ```ts
 * createHub({
 *   onError: throttleErrors((error, suppressed, info) => logger.error({ err: error, suppressed, ...info })),
 * })
 * ```
 */
export function throttleErrors<Rest extends unknown[]>(
  report: (error: unknown, suppressed: number, ...rest: Rest) => void,
  options: ThrottleErrorsOptions = {},
): (error: unknown, ...rest: Rest) => void {
  if (typeof report !== 'function') {
    throw new RewindError('ERR_INVALID_ARGUMENT', `report must be a function, got ${typeof report}`, {
      field: 'report',
    })
  }
  const interval = nonNegativeInteger('interval', options.interval ?? DEFAULT_ERROR_REPORT_INTERVAL)
  const now = optionalFunction('now', options.now) ?? Date.now
  const kinds = new Map<string, { reportedAt: number; suppressed: number }>()
  return (error, ...rest) => {
    let kind = kindOf(error)
    if (!kinds.has(kind) && kinds.size >= MAX_KINDS) kind = OTHER_KINDS
    const at = now()
    const seen = kinds.get(kind)
    if (seen === undefined) {
      kinds.set(kind, { reportedAt: at, suppressed: 0 })
      report(error, 0, ...rest)
      return
    }
    // A clock that went back reports at once rather than staying silent until it catches up.
    if (at >= seen.reportedAt && at - seen.reportedAt < interval) {
      seen.suppressed++
      return
    }
    const suppressed = seen.suppressed
    seen.reportedAt = at
    seen.suppressed = 0
    report(error, suppressed, ...rest)
  }
}

/**
 * The reporter of a store, for failures no caller sees (a lost connection, a failed poll, events the
 * live tail could not deliver): each goes to the store's `onError`, whose own throw is ignored so it
 * cannot stop the tail; without one, to `console.error` as the hub's default does, each kind at most
 * once a minute with a count of the ones left out.
 * @param label - names the store at the start of the log line (`rewind/redis`)
 * @param onError - the store's hook
 * @defaultValue `console.error` wrapped by {@link throttleErrors}, without `onError`
 */
export function storeErrorReport(
  label: string,
  onError: ((error: unknown) => void) | undefined,
): (error: unknown) => void {
  if (onError !== undefined) {
    return (error) => {
      try {
        onError(error)
      } catch {
        // A failing hook must not stop the tail.
      }
    }
  }
  return throttleErrors((error, suppressed) =>
    console.error(
      `[${label}] (each kind is logged at most once a minute${suppressed > 0 ? `; ${suppressed} more since the last one` : ''}; set onError to handle them):`,
      error,
    ),
  )
}

function kindOf(error: unknown): string {
  if (error instanceof RewindError) return error.code
  if (error instanceof Error) return String(error.name)
  return typeof error
}
