/** Validation of options and arguments, with messages that say how to fix the call. */
import { RewindError } from './errors.js'
import { assertFieldValue } from './frame.js'
import type { GapPolicy } from './types.js'

/** Longest stream name accepted, in UTF-16 code units. */
export const MAX_STREAM_NAME_LENGTH = 256

/**
 * A value as an error message shows it: a string quoted (so `"5"` does not read as the number 5), a
 * number, boolean, `null` or `undefined` as itself, anything else by its type (an object's contents
 * may be large or private).
 */
export function describeValue(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value)
  if (typeof value === 'number' || typeof value === 'boolean' || value == null) return String(value)
  return typeof value
}

/**
 * `Number.isSafeInteger`, typed as the guard it is: it is false for every value that is not a
 * number, so no `typeof` test is needed before it.
 */
const isSafeInteger = Number.isSafeInteger as (value: unknown) => value is number

/**
 * Checks a count option: a safe integer of at least 1, else `ERR_INVALID_ARGUMENT` with `name` as
 * its `field`. Takes any value, so a store checks an option of an untyped caller with it too.
 * @returns the value, unchanged
 */
export function positiveInteger(name: string, value: unknown): number {
  if (!isSafeInteger(value) || value < 1) {
    throw new RewindError(
      'ERR_INVALID_ARGUMENT',
      `${name} must be a positive integer, got ${describeValue(value)}`,
      { field: name },
    )
  }
  return value
}

export function nonNegativeInteger(name: string, value: unknown): number {
  if (!isSafeInteger(value) || value < 0) {
    throw new RewindError(
      'ERR_INVALID_ARGUMENT',
      `${name} must be a non-negative integer, got ${describeValue(value)}`,
      { field: name },
    )
  }
  return value
}

/**
 * Longest delay, in milliseconds, that a timer takes (2^31 - 1, about 24.8 days): Node (and browsers,
 * for a `retry:` hint) run a longer timer after 1 ms instead, so a heartbeat would fire every
 * millisecond. Delay options above it are refused with `ERR_INVALID_ARGUMENT`.
 */
export const MAX_TIMER_DELAY = 2 ** 31 - 1

/**
 * Checks a delay in milliseconds: an integer from 0 to {@link MAX_TIMER_DELAY}. Adapters check their
 * own delay options with it, so every delay is refused with the same `ERR_INVALID_ARGUMENT` (its
 * `field` the option's name) when it is given, not when its timer is set.
 * @returns the value, unchanged
 */
export function timerDelay(name: string, value: unknown): number {
  const ms = nonNegativeInteger(name, value)
  if (ms > MAX_TIMER_DELAY) {
    throw new RewindError(
      'ERR_INVALID_ARGUMENT',
      `${name} must be at most ${MAX_TIMER_DELAY} ms (MAX_TIMER_DELAY, about 24.8 days), got ${ms}: a longer timer fires after 1 ms instead; give a delay of at most ${MAX_TIMER_DELAY}`,
      { field: name },
    )
  }
  return ms
}

/** A positive number, `Infinity` allowed (for limits that may be turned off). */
export function positiveLimit(name: string, value: number): number {
  if (typeof value !== 'number' || Number.isNaN(value) || value <= 0) {
    throw new RewindError(
      'ERR_INVALID_ARGUMENT',
      `${name} must be a positive number (or Infinity for no limit), got ${String(value)}`,
      { field: name },
    )
  }
  return value
}

export function optionalFunction<T>(name: string, value: T | undefined): T | undefined {
  if (value !== undefined && typeof value !== 'function') {
    throw new RewindError('ERR_INVALID_ARGUMENT', `${name} must be a function, got ${typeof value}`, {
      field: name,
    })
  }
  return value
}

export function assertStreamName(stream: unknown): asserts stream is string {
  if (typeof stream !== 'string' || stream.length === 0 || stream.length > MAX_STREAM_NAME_LENGTH) {
    throw new RewindError(
      'ERR_INVALID_STREAM',
      `a stream name must be a non-empty string of at most ${MAX_STREAM_NAME_LENGTH} characters, got ${
        typeof stream === 'string' ? `a string of length ${stream.length}` : typeof stream
      }`,
      { field: 'stream' },
    )
  }
}

/** A string option that ends up on a field line (an event name): no CR, LF or NUL. */
export function fieldOption(name: string, value: string): string {
  try {
    assertFieldValue(name, value)
  } catch (error) {
    throw new RewindError('ERR_INVALID_ARGUMENT', (error as Error).message, { field: name })
  }
  return value
}

export function gapPolicyOption(name: string, value: GapPolicy | undefined): GapPolicy | undefined {
  if (value !== undefined && value !== 'replay' && value !== 'reset') {
    throw new RewindError(
      'ERR_INVALID_ARGUMENT',
      `${name} must be 'replay' or 'reset', got ${String(value)}`,
      {
        field: name,
      },
    )
  }
  return value
}
