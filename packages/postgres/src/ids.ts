/**
 * Ids of the Postgres store: `<epoch>-<seq>`, as in memory. The epoch is random for each lifetime of a
 * stream's row (a stream deleted after its TTL and written again starts a new one), so an id of an
 * earlier lifetime is recognised as such instead of matched to another event; `seq` counts the
 * stream's appends from 1, gap-free and in commit order.
 */
import { randomBytes } from 'node:crypto'
import type { Position } from '@rewind/core/adapter'

/**
 * The epoch of a stream that has no row (never written, or deleted): its only position is `0-0`,
 * the one a fresh client of it is told. A row's epoch is never `0` (see {@link newEpoch}).
 */
export const NO_EPOCH = '0'

// Canonical numbers only, as in memory: `e-007` is not an id this store issued.
const ID_SHAPE = /^([0-9a-z]{1,16})-(0|[1-9]\d{0,15})$/

/** A parsed id. */
export interface ParsedId {
  readonly epoch: string
  readonly seq: number
}

/** A fresh epoch: 8 base-36 characters, never {@link NO_EPOCH}. */
export function newEpoch(): string {
  return `e${randomBytes(5).readUIntBE(0, 5).toString(36).padStart(8, '0')}`
}

/** Parses an id this store could have issued; anything else gives `undefined`. */
export function parseId(text: string): ParsedId | undefined {
  const match = ID_SHAPE.exec(text)
  if (match === null) return undefined
  const seq = Number(match[2])
  if (!Number.isSafeInteger(seq)) return undefined
  return { epoch: match[1]!, seq }
}

/** The position of `seq` in a stream of `epoch`. */
export function positionOf(epoch: string, seq: number): Position {
  return { id: `${epoch}-${seq}`, major: seq, minor: 0 }
}
