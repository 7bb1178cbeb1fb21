/**
 * Redis stream ids: `<ms>-<seq>`, two unsigned 64-bit integers. Parsing, ordering, the id just
 * before another, and the {@link Position} a subscriber orders events by.
 */
import type { Position } from '@rewind/core/adapter'

/** Largest value of either part of a stream id (2^64 - 1). */
export const MAX_ID_PART = 18446744073709551615n

/** A parsed stream id. Parts are bigints because Redis allows the full unsigned 64-bit range. */
export interface StreamId {
  /** The milliseconds part. */
  readonly ms: bigint
  /** The sequence part. */
  readonly seq: bigint
}

/** The id before every entry: an empty stream's position. */
export const ZERO_ID: StreamId = Object.freeze({ ms: 0n, seq: 0n })

/** The position of {@link ZERO_ID}. */
export const ZERO_POSITION: Position = Object.freeze({ id: '0-0', major: 0, minor: 0 })

// Twenty digits hold 2^64 - 1; longer values cannot be ids, and the bound keeps BigInt parsing cheap.
const ID_SHAPE = /^(\d{1,20})-(\d{1,20})$/

/** Parses a complete id (`<digits>-<digits>`, each part at most 2^64 - 1); anything else gives `undefined`. */
export function parseStreamId(text: string): StreamId | undefined {
  const match = ID_SHAPE.exec(text)
  if (match === null) return undefined
  const ms = BigInt(match[1]!)
  const seq = BigInt(match[2]!)
  if (ms > MAX_ID_PART || seq > MAX_ID_PART) return undefined
  return { ms, seq }
}

/** The canonical text of an id (no leading zeros), as Redis writes it. */
export function formatStreamId(id: StreamId): string {
  return `${id.ms}-${id.seq}`
}

/** Negative, zero or positive as `a` comes before, equals or comes after `b`. */
export function compareStreamIds(a: StreamId, b: StreamId): number {
  if (a.ms !== b.ms) return a.ms < b.ms ? -1 : 1
  if (a.seq !== b.seq) return a.seq < b.seq ? -1 : 1
  return 0
}

/**
 * The greatest id that comes before `id`: `ms-(seq-1)`, or `(ms-1)-(2^64-1)` when `seq` is 0.
 * Nothing can be stored between the two, so resuming from it misses nothing. `0-0` has none.
 */
export function previousStreamId(id: StreamId): StreamId | undefined {
  if (id.seq > 0n) return { ms: id.ms, seq: id.seq - 1n }
  if (id.ms > 0n) return { ms: id.ms - 1n, seq: MAX_ID_PART }
  return undefined
}

/**
 * The position of an id. `major` is the milliseconds part and `minor` the sequence part, both exact
 * as numbers for every id Redis generates (milliseconds stay below 2^53 until the year 287396, and a
 * sequence counts the entries added within one millisecond). The one large sequence this store
 * produces, 2^64 - 1 in the id before a `<ms>-0` entry, is not a safe integer: it becomes `Infinity`,
 * which orders exactly the same (after every other sequence of that millisecond).
 */
export function toPosition(id: StreamId): Position {
  return {
    id: formatStreamId(id),
    major: Number(id.ms),
    minor: id.seq === MAX_ID_PART ? Number.POSITIVE_INFINITY : Number(id.seq),
  }
}

/**
 * The order key of an id Redis returned (always well formed), without BigInt for the usual short
 * ids: every part of up to 15 digits is an exact number.
 */
export function orderOf(id: string): { major: number; minor: number } {
  const dash = id.indexOf('-')
  if (dash > 0 && dash <= 15 && id.length - dash - 1 <= 15) {
    return { major: Number(id.slice(0, dash)), minor: Number(id.slice(dash + 1)) }
  }
  const parsed = parseStreamId(id)
  if (parsed === undefined) return { major: Number.NaN, minor: Number.NaN }
  const position = toPosition(parsed)
  return { major: position.major, minor: position.minor }
}
