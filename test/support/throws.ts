/** What a call throws, for tests that look at the error itself (its code, field and message). */

/** Runs `call` and returns what it threw, or `undefined` if it returned. */
export function thrownBy(call: () => unknown): unknown {
  try {
    call()
  } catch (error) {
    return error
  }
  return undefined
}
