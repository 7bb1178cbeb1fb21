/**
 * Appends to one stream made in the same turn go to Redis as one script call. A burst of publishes
 * then wakes each instance's live tail once, with every entry of the burst, instead of once for the
 * first entry and again for the rest: every wake is a fan-out, a write per connection, which is
 * what holding many connections costs. A stream's batches are sent in order on one connection, and
 * Redis runs them in order, so ids keep the order of the `append` calls.
 */
import type { NewEvent } from '@rewind/core/adapter'

/** Most events in one script call: a bigger burst is sent as several calls, in order. */
export const MAX_BATCH_EVENTS = 64
/** Most data (UTF-16 code units) in one script call, so one call never carries a huge argument list. */
export const MAX_BATCH_DATA = 512 * 1024

interface Batch {
  readonly events: NewEvent[]
  readonly settle: { resolve(id: string): void; reject(error: unknown): void }[]
  data: number
}

/**
 * Sends a stream's appends of one turn together. `send` appends `events` to `stream` in one atomic
 * step and resolves with their ids, in order; if it rejects, every append of the batch rejects with
 * that error (the script ran whole or not at all, or, after a timeout, may have).
 */
export class AppendBatches {
  private readonly open = new Map<string, Batch>()

  constructor(private readonly send: (stream: string, events: readonly NewEvent[]) => Promise<string[]>) {}

  append(stream: string, event: NewEvent): Promise<string> {
    return new Promise((resolve, reject) => {
      let batch = this.open.get(stream)
      if (batch === undefined) {
        const opened: Batch = { events: [], settle: [], data: 0 }
        this.open.set(stream, opened)
        queueMicrotask(() => this.flush(stream, opened))
        batch = opened
      }
      batch.events.push(event)
      batch.settle.push({ resolve, reject })
      batch.data += event.data.length
      if (batch.events.length >= MAX_BATCH_EVENTS || batch.data >= MAX_BATCH_DATA) this.flush(stream, batch)
    })
  }

  /** Sends `batch` unless it was sent already (when full, before its turn ended). */
  private flush(stream: string, batch: Batch): void {
    if (this.open.get(stream) !== batch) return
    this.open.delete(stream)
    this.send(stream, batch.events).then(
      (ids) => {
        for (let i = 0; i < batch.settle.length; i++) batch.settle[i]!.resolve(ids[i]!)
      },
      (error: unknown) => {
        for (const { reject } of batch.settle) reject(error)
      },
    )
  }
}
