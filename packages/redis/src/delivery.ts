/**
 * Entries a live tail read, handed to the hub in stream order: shared by the single-server tail
 * (one blocking `XREAD`) and the cluster's (one subscription per shard). Each stream's cursor
 * remembers the last id delivered, so entries that do not follow it are never passed off as live.
 */
import { RewindError } from '@rewind/core'
import type { RedisEvent } from './events.js'
import type { RawEntry } from './scripts.js'

/** Where a tail is in one stream. */
export interface Cursor {
  readonly stream: string
  readonly key: string
  /** Id of the last entry delivered (or the stream's last id when watching started). */
  lastId: string
}

/** Where the entries go. */
export interface EntrySink {
  /** Builds (or finds) the event of an entry. */
  readonly toEvent: (key: string, entry: RawEntry) => RedisEvent
  readonly deliver: (stream: string, events: readonly RedisEvent[]) => void
  /** Live delivery of `stream` lost entries: its subscribers must resume from history. */
  readonly reset: (stream: string) => void
  readonly report: (error: unknown) => void
}

/** Entries of one stream as `XREAD` returns them. */
export type XReadReply = [key: string, entries: RawEntry[]][] | null

/**
 * Delivers `entries`, read after `cursor.lastId`, and moves the cursor. If the first one does not
 * follow the last one delivered, subscribers are reset instead (see {@link reportSkipped}).
 */
export function deliverEntries(sink: EntrySink, cursor: Cursor, entries: readonly RawEntry[]): void {
  if (entries.length === 0) return
  const events = entries.map((entry) => sink.toEvent(cursor.key, entry))
  const first = events[0]!
  const skipped = first.prev !== '' && first.prev !== cursor.lastId
  const previous = cursor.lastId
  cursor.lastId = events[events.length - 1]!.id
  try {
    if (skipped) {
      // Delivering these would let live subscribers step over the hole without a word. Instead
      // they are ended, and resume from history with the gap signal if they missed anything.
      reportSkipped(sink, cursor.stream, previous, first)
      sink.reset(cursor.stream)
    } else sink.deliver(cursor.stream, events)
  } catch (error) {
    sink.report(error)
  }
}

/**
 * The first entry read does not follow the last one delivered: entries in between were trimmed
 * before the tail got to them, or the stream was emptied (a Redis restart without persistence).
 * The application is told too, since it may want to know why its clients reconnected.
 */
function reportSkipped(sink: EntrySink, name: string, lastId: string, first: RedisEvent): void {
  const stream = JSON.stringify(name)
  const message =
    first.prev === '0-0'
      ? `stream ${stream} started over in Redis (its entry ${first.id} follows none, while the live tail had read up to ${lastId}): if Redis lost entries after ${lastId}, for example in a restart without persistence, subscribers following the stream live did not get them`
      : `the live tail of stream ${stream} missed the entries between ${lastId} and ${first.id}: Redis had trimmed them (past maxLen) before the tail read them, so subscribers following the stream live did not get them`
  sink.report(new RewindError('ERR_HISTORY_LOST', message))
}
