/**
 * Rows of the `events` table turned into stored events, each frame encoded once.
 */
import { RewindError, type StoredEvent } from '@rewind/core'
import { encodeEvent } from '@rewind/core/frame'
import type { Deserializer } from './options.js'

/** How rows' data becomes values, and where a failure to do so is reported. */
export interface Decoder {
  readonly deserialize: Deserializer
  readonly report: (error: unknown) => void
}

/** A row of the events table as the store selects it. */
export interface EventRow {
  /** The sequence number, as `pg` returns a bigint: a string. */
  readonly seq: string
  readonly event: string
  readonly is_string: boolean
  /** The data's UTF-8 bytes (`bytea`). */
  readonly data: Buffer
}

/** An event read back from Postgres. */
export class PostgresEvent implements StoredEvent {
  readonly id: string
  readonly minor = 0
  readonly frame: Buffer
  readonly event: string | undefined
  private parsed: { readonly value: unknown } | undefined

  constructor(
    private readonly stream: string,
    epoch: string,
    readonly major: number,
    event: string,
    readonly data: string,
    /** Whether `data` is the published value itself (it was a string). */
    readonly isString: boolean,
    private readonly decoder: Decoder,
  ) {
    this.id = `${epoch}-${major}`
    this.event = event === '' ? undefined : event
    this.frame = Buffer.from(encodeFrame(this.id, this.event, data))
  }

  /**
   * The value as published: the string itself, or `data` deserialized on first access. Data that does
   * not deserialize gives the raw string instead, and is reported: throwing would fail every
   * subscriber whose filter reads `value`, on every resume, for as long as the row is kept.
   */
  get value(): unknown {
    if (this.isString) return this.data
    let parsed = this.parsed
    if (parsed === undefined) {
      try {
        parsed = { value: this.decoder.deserialize(this.data) }
      } catch (error) {
        parsed = { value: this.data }
        this.decoder.report(
          new RewindError(
            'ERR_SERIALIZE',
            `the data of event ${this.id} of stream ${JSON.stringify(this.stream)} could not be deserialized (${error instanceof Error ? error.message : String(error)}); its value is the raw data string. Give the store a deserialize that undoes the serialize of every publisher of this stream`,
            { cause: error },
          ),
        )
      }
      this.parsed = parsed
    }
    return parsed.value
  }
}

/** The event of a row of `stream` in its `epoch`. */
export function toEvent(stream: string, epoch: string, row: EventRow, decoder: Decoder): PostgresEvent {
  return new PostgresEvent(
    stream,
    epoch,
    Number(row.seq),
    row.event,
    row.data.toString('utf8'),
    row.is_string,
    decoder,
  )
}

/** What an event weighs against `maxBytes`: its data, its type and a fixed 32 bytes for the rest. */
export function weightOf(event: string | undefined, data: string): number {
  return Buffer.byteLength(data) + (event === undefined ? 0 : Buffer.byteLength(event)) + 32
}

function encodeFrame(id: string, event: string | undefined, data: string): string {
  try {
    return encodeEvent({ id, event, data })
  } catch {
    // Only a row written by something else than this store can hold an event type with CR, LF or
    // NUL; it is still sent, in its place in the stream, as a plain message.
    return encodeEvent({ id, data })
  }
}
