/** Bounded waits: a wait fails with a message instead of hanging until the test's timeout. */

/** Default bound of a wait, generous for a shared two-core machine; no test asserts on speed with it. */
export const WAIT_MS = 5000

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

/** Polls `check` every few milliseconds until it holds; rejects with `describe()` after `timeout`. */
export async function waitUntil(
  check: () => boolean,
  describe: string | (() => string),
  timeout = WAIT_MS,
): Promise<void> {
  const deadline = Date.now() + timeout
  while (!check()) {
    if (Date.now() > deadline) {
      throw new Error(
        `still waiting after ${timeout} ms: ${typeof describe === 'string' ? describe : describe()}`,
      )
    }
    await sleep(5)
  }
}
