/**
 * Bounded waits for every suite: a wait fails with a message that says what it waited for, instead
 * of hanging until the test's timeout.
 */

/**
 * Default bound of a wait: generous for a shared two-core machine (a Redis reconnect or a Postgres
 * poll may take seconds there). No test asserts on speed with it; a bound that small must be given.
 */
export const WAIT_MS = 10_000

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

/**
 * Polls `check` every few milliseconds until it returns something other than `false` or `undefined`,
 * and resolves with that (nothing for a plain condition); rejects with `what` (what never happened)
 * after `timeout` ms.
 */
export function waitUntil(
  check: () => boolean,
  what: string | (() => string),
  timeout?: number,
): Promise<void>
export function waitUntil<T>(
  check: () => T | false | undefined,
  what: string | (() => string),
  timeout?: number,
): Promise<T>
export async function waitUntil<T>(
  check: () => T | false | undefined,
  what: string | (() => string),
  timeout = WAIT_MS,
): Promise<T> {
  const deadline = Date.now() + timeout
  for (;;) {
    const value = check()
    if (value !== undefined && value !== false) return value
    if (Date.now() > deadline) {
      throw new Error(`still waiting after ${timeout} ms: ${typeof what === 'string' ? what : what()}`)
    }
    await sleep(5)
  }
}

/** Resolves as `promise` does, or rejects with `what` once `timeout` ms have passed. */
export async function within<T>(promise: Promise<T>, what: string, timeout = WAIT_MS): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`still waiting after ${timeout} ms: ${what}`)), timeout)
  })
  try {
    return await Promise.race([promise, expired])
  } finally {
    clearTimeout(timer)
  }
}

/**
 * Polls an asynchronous `check` every `interval` ms until it resolves true (a throw counts as "not
 * yet": a server that is still starting refuses connections); rejects with `what` after `timeout` ms.
 */
export async function eventually(
  check: () => Promise<boolean>,
  what: string,
  timeout = WAIT_MS,
  interval = 50,
): Promise<void> {
  const deadline = Date.now() + timeout
  for (;;) {
    try {
      if (await check()) return
    } catch {}
    if (Date.now() > deadline) throw new Error(`still waiting after ${timeout} ms: ${what}`)
    await sleep(interval)
  }
}
