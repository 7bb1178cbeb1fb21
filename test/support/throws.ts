/** What a call throws, for tests that look at the error itself (its code, field and message). */
import { expect } from 'vitest'

/** Runs `call` and returns what it threw, or `undefined` if it returned. */
export function thrownBy(call: () => unknown): unknown {
  try {
    call()
  } catch (error) {
    return error
  }
  return undefined
}

/**
 * Runs `call` and returns the error it threw, which must be an instance of `type` (the test fails if
 * it throws anything else, or returns).
 */
export function thrownAs<E>(call: () => unknown, type: abstract new (...args: never[]) => E): E {
  const thrown = thrownBy(call)
  expect(thrown, `what the call threw (a ${type.name} is expected)`).toBeInstanceOf(type)
  return thrown as E
}
