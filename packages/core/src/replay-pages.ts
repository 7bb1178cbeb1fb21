/**
 * Pages of history encoded once for every subscriber that replays them. A crowd resuming from one
 * position (a reconnection storm after a deploy, or every reader of a finished answer) reads the same
 * page object: the memory history hands out the same page until the history changes, and shared
 * reads do the same for shared stores. So a page's frames are concatenated into writes, and framed as
 * HTTP/1.1 chunks for direct transports, once, not once per client.
 */

import type { StoredEvent } from './store.js'
import { concatFrames, SharedFrames } from './wire-writer.js'

/** Replayed frames are concatenated into writes of about this size. */
export const WRITE_CHUNK_BYTES = 64 * 1024

/** One write of a replayed page: the frames of events `first`..`last` of the page. */
export class PageChunk extends SharedFrames {
  constructor(
    all: Buffer,
    /** Index in the page of the last event in this write. */
    readonly last: number,
    /** Number of events in this write. */
    readonly count: number,
  ) {
    super(all)
  }
}

/** Kept as long as the page itself is (a weak key): nothing here outlives the readers of a page. */
const encoded = new WeakMap<readonly StoredEvent[], readonly PageChunk[]>()

/** The writes of a page (all its events, none filtered out), built on first use and then shared. */
export function encodePage(events: readonly StoredEvent[]): readonly PageChunk[] {
  const known = encoded.get(events)
  if (known !== undefined) return known
  const chunks: PageChunk[] = []
  let first = 0
  let bytes = 0
  for (let i = 0; i < events.length; i++) {
    bytes += events[i]!.frame.length
    if (bytes < WRITE_CHUNK_BYTES && i < events.length - 1) continue
    chunks.push(new PageChunk(concatFrames(events, bytes, first, i + 1), i, i - first + 1))
    first = i + 1
    bytes = 0
  }
  encoded.set(events, chunks)
  return chunks
}
