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
 * time in `[0, min(cap, base × factor^attempt))`.
 */
export function backoffDelay(
  policy: BackoffPolicy,
  attempt: number,
  random: () => number = Math.random,
): number {
  const window = Math.min(policy.cap, policy.base * policy.factor ** attempt)
  return Math.floor(random() * window)
}
