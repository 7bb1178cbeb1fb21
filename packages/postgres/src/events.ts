/**
 * Rows of the `events` table turned into stored events, each frame encoded once.
 */
import type { StoredEvent } from '@rewind/core'
import { decodeStoredData, encodeStoredFrame } from '@rewind/core/adapter'
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
    this.frame = Buffer.from(encodeStoredFrame(this.id, this.event, data))
  }

  /**
   * The value as published: the string itself, or `data` deserialized on first access; data that
   * does not deserialize gives the raw string, and is reported (see `decodeStoredData`).
   */
  get value(): unknown {
    if (this.isString) return this.data
    this.parsed ??= { value: decodeStoredData(this.data, this.decoder, () => this.where()) }
    return this.parsed.value
  }

  /** This row, as a report names it. */
  private where(): string {
    return `event ${this.id} of stream ${JSON.stringify(this.stream)}`
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
