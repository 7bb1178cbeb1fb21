/**
 * Where a stream lives in Redis. Every key of a stream carries a hash tag (`{...}`), so Redis
 * Cluster puts them in one slot and the scripts, which touch several keys of one stream at once (a
 * response's stream and its record), can run on a cluster. The single-server layout is the same.
 *
 * - A stream name without braces is its own tag: `news` lives at `prefix + '{news}'`.
 * - A name with a brace cannot be its own tag (Redis ends the tag at the first `}`, so a user's
 *   braces would choose the slot, and two names could share a tag), so its tag is a hash of the name
 *   and the name follows it: `a{b}` lives at `prefix + '{#<16 hex digits of sha1>}#a{b}'`.
 *
 * The two forms never collide: a key of the first form ends at its tag, one of the second goes on
 * after it, and the name in full is part of both. Only the tag chooses the slot, so the hash only has
 * to spread names, not tell them apart.
 */
import { createHash } from 'node:crypto'
import { RewindError } from '@rewind/core'

/** Hex digits of the name's SHA-1 in the tag of a name with braces: plenty to spread 16384 slots. */
const HASHED_TAG_DIGITS = 16

/** The Redis key of `stream` under `prefix` (see the module comment). */
export function streamKey(prefix: string, stream: string): string {
  if (!stream.includes('{') && !stream.includes('}')) return `${prefix}{${stream}}`
  // A string is hashed as its UTF-8 bytes.
  const digest = createHash('sha1').update(stream).digest('hex').slice(0, HASHED_TAG_DIGITS)
  return `${prefix}{#${digest}}#${stream}`
}

/**
 * Refuses a prefix with a brace: Redis hashes the first `{...}` of a key, so a brace in the prefix
 * would take the place of the stream's tag (and an empty `{}` would split a response's stream from
 * its record on a cluster).
 */
export function checkPrefix(prefix: string): string {
  if (prefix.includes('{') || prefix.includes('}')) {
    throw new RewindError(
      'ERR_INVALID_ARGUMENT',
      `prefix must not contain "{" or "}", got ${JSON.stringify(prefix)}: the store puts each stream's hash tag after the prefix itself, so Redis Cluster keeps each stream's keys in one slot; remove the braces`,
      { field: 'prefix' },
    )
  }
  return prefix
}
