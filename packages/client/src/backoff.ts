/**
 * Reconnection delays: exponential backoff with full jitter and a cap. Clients that a server cut at
 * the same moment spread out over the whole window instead of returning together, and a server that
 * keeps failing is asked less and less often.
 *
 * @see https://aws.amazon.com/blogs/architecture/exponential-backoff-and-jitter/
 */

/** How reconnection delays grow; every field is in milliseconds except `factor`. */
export interface BackoffPolicy {
  /** Window of the first reconnection: the server's `retry:`, else the `retry` option. */
  base: number
  /** Largest window. */
  cap: number
  /** Growth of the window after each failed attempt. */
  factor: number
}

/**
 * The delay before reconnection attempt `attempt` (0 for the first after a drop): a uniformly random
 * whole number of milliseconds in `[0, min(cap, base × factor^attempt))`. A base under 1 ms counts
 * as 1 ms, so a server that sent `retry: 0` and then went away is not asked in a tight loop.
 */
export function backoffDelay(
  policy: BackoffPolicy,
  attempt: number,
  random: () => number = Math.random,
): number {
  const window = Math.floor(Math.min(policy.cap, Math.max(policy.base, 1) * policy.factor ** attempt))
  return Math.floor(random() * window)
}
