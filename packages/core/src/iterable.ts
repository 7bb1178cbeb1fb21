/**
 * Streaming an async iterable (tokens from a model, rows of a long query) to one client as events.
 * Not kept in history: these streams are per request and end with the iterable.
 */
import { Connection, type ConnectionOwner } from './connection.js'
import { RewindError } from './errors.js'
import { encodeEvent, encodeRetry } from './frame.js'
import type { EventSink } from './types.js'
import type { StartStream } from './wire-writer.js'

/** What an iterable stream needs from the hub that owns it (see `ConnectionOwner`). */
export interface IterableOwner extends ConnectionOwner {
  /** Serializes event data with the hub's serializer (`ERR_SERIALIZE` on failure). */
  serialize(value: unknown): string
  /** Reports an error through `onError`. */
  reportError(error: unknown, stream: string | undefined): void
}

/**
 * One item of an iterable stream: a string is the data of a `message` event; an object gives the
 * fields (`data` goes through the hub's serializer unless it is a string). Either way the data may
 * be at most `maxEventBytes`; a larger item ends the stream with `ERR_EVENT_TOO_LARGE` (through `onError`).
 */
export type StreamItem =
  | string
  | {
      /** The payload. */
      data: unknown
      /** The event type. @defaultValue `message` */
      event?: string
      /** An id for the client's `lastEventId`; must not contain CR, LF or NUL. */
      id?: string
      /** A new reconnection delay for the client, in milliseconds. */
      retry?: number
    }

/** A connection that writes the items of an async iterable, pulling the next one only when the sink has room. */
export class IterableStream extends Connection<IterableOwner> {
  private readonly iterator: AsyncIterator<StreamItem>
  private finished = false

  constructor(
    owner: IterableOwner,
    sink: EventSink,
    iterable: AsyncIterable<StreamItem>,
    start?: StartStream,
  ) {
    super(owner, sink, undefined, start)
    this.iterator = iterable[Symbol.asyncIterator]()
  }

  async run(): Promise<void> {
    for (;;) {
      let next: IteratorResult<StreamItem>
      try {
        next = await this.iterator.next()
      } catch (error) {
        // A failed iterator has finished; calling its return() as well would be wrong.
        this.finished = true
        this.fail(error)
        return
      }
      if (this.closed) return
      if (next.done === true) {
        this.finished = true
        this.end('end')
        return
      }
      let frame: string
      try {
        frame = this.encode(next.value)
      } catch (error) {
        this.fail(error)
        return
      }
      if (!this.write(Buffer.from(frame))) await this.drained()
      if (this.closed) return
    }
  }

  private fail(error: unknown): void {
    if (this.closed) return
    this.owner.reportError(error, undefined)
    this.end('error')
  }

  protected detach(): void {
    if (this.finished) return
    // Stryker disable next-line BooleanLiteral: detach runs once (end() is guarded by closed), and nothing reads finished after it
    this.finished = true
    // The client left or the hub closed: let the producer stop (a generator runs its finally blocks).
    Promise.resolve()
      .then(() => this.iterator.return?.())
      .catch((error: unknown) => this.owner.reportError(error, undefined))
  }

  private encode(item: StreamItem): string {
    // A string is data as is, and is bounded by maxEventBytes like any other data.
    if (typeof item === 'string') return encodeEvent({ data: this.owner.serialize(item) })
    if (item === null || typeof item !== 'object' || !('data' in item)) {
      throw new RewindError(
        'ERR_INVALID_ARGUMENT',
        'items of a streamed iterable must be strings or { data, event?, id?, retry? } objects',
        { field: 'data' },
      )
    }
    const data = this.owner.serialize(item.data)
    const frame = encodeEvent({ id: item.id, event: item.event, data })
    return item.retry === undefined ? frame : encodeRetry(item.retry) + frame
  }
}

/** Whether a value can be streamed as it is (`for await`): the sources `serve` and `responses.start` take. */
export function isAsyncIterable(value: unknown): value is AsyncIterable<StreamItem> {
  return (
    value !== null &&
    typeof value === 'object' &&
    typeof (value as Partial<AsyncIterable<unknown>>)[Symbol.asyncIterator] === 'function'
  )
}
