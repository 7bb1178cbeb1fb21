/** Bounded waits: every wait in these tests fails with a message instead of hanging until the test timeout. */

/** Default bound of a wait, generous for a shared two-core machine; the tests never assert on speed. */
export const WAIT_MS = 5000

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

/** Polls `check` every few milliseconds until it returns true; rejects with `describe()` after `timeout`. */
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

/** Resolves as `promise` does, or rejects with `describe` once `timeout` ms have passed. */
export async function within<T>(promise: Promise<T>, timeout: number, describe: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`still waiting after ${timeout} ms: ${describe}`)), timeout)
  })
  try {
    return await Promise.race([promise, expired])
  } finally {
    clearTimeout(timer)
  }
}
