/**
 * Responses on Postgres: a response's events are an ordinary stream of the store (so any instance
 * replays it and the live tail delivers it), and its lifecycle record is its stream's row: status,
 * the producer's lease, the TTL after the end, the terminal event, its own bounds, and how many
 * appends its producer made. Every change happens in a function that locks the row first, so of two
 * instances that end a response at once exactly one appends the terminal event, and no event is ever
 * appended after it. Appends are conditional and ordered: the producer's n-th append is stored only
 * if the n - 1 before it are, so a stored answer never has a hole.
 */
import { RewindError } from '@rewind/core'
import {
  type NewEvent,
  RESPONSE_STREAM_PREFIX,
  type ResponseEnd,
  type ResponseLimits,
  type ResponseState,
  type ResponseStatus,
  SharedResponseRecords,
} from '@rewind/core/adapter'
import { Batches } from './batches.js'
import type { Database } from './database.js'
import { weightOf } from './events.js'
import { newEpoch } from './ids.js'

/** What the store gives its responses. */
export interface ResponseHost {
  readonly database: Database
  readonly maxBatch: number
  /** How long a write waits for its stream's row lock, in milliseconds (`commandTimeout`). */
  readonly lockTimeout: number
  /** Events of `stream` were appended: announce them, and read them here. */
  readonly appended: (stream: string) => void
  readonly unavailable: (action: string, stream: string, cause: unknown) => Error
}

/** One append of a producer: its number among the producer's appends, from 1. */
interface Append {
  readonly n: number
  readonly event: NewEvent
}

/** The `seqs` code of `append_response` for an append refused because an earlier one is missing. */
const REFUSED = -1

/** The responses of a Postgres store (`store.responses`); the hub drives them. */
export class PostgresResponses extends SharedResponseRecords {
  private readonly batches: Batches<Append, string | undefined>

  constructor(private readonly host: ResponseHost) {
    super()
    this.batches = new Batches(
      host.maxBatch,
      (stream, items) => this.send(stream, items),
      (items) => {
        let count = 1
        while (count < items.length && items[count]!.n === items[0]!.n + count) count++
        return count
      },
      (stream, waiting) =>
        host.unavailable('append to the response of', stream, `${waiting} appends wait for Postgres already`),
    )
  }

  private get s(): string {
    return `"${this.host.database.schema}"`
  }

  async create(_id: string, stream: string, limits: ResponseLimits): Promise<boolean> {
    const [row] = await this.run(
      'create',
      stream,
      `SELECT * FROM ${this.s}.create_response($1, $2, $3, $4, $5, $6, $7, $8) AS created`,
      [
        stream,
        newEpoch(),
        limits.lease,
        limits.maxLifetime + limits.ttl,
        limits.ttl,
        limits.maxEvents,
        Number.isFinite(limits.maxBytes) ? limits.maxBytes : Number.MAX_SAFE_INTEGER,
        this.host.lockTimeout,
      ],
    )
    return (row as { created: boolean } | undefined)?.created === true
  }

  /**
   * Appends the producer's event number `seq` (counted from 1), stored only right after event
   * `seq - 1`. Resolves with its id (also for a resend of an event already stored: append `seq` has
   * sequence number `seq`), or `undefined` once the response has ended; rejects with
   * `ERR_HISTORY_LOST` when an earlier event is missing (then nothing after it is stored: a stored
   * answer never has a hole).
   */
  append(
    _id: string,
    stream: string,
    event: NewEvent,
    _limits: ResponseLimits,
    seq: number,
  ): Promise<string | undefined> {
    return this.batches.add(stream, { n: seq, event })
  }

  /** One atomic statement, told whether a live lease stops it. */
  protected async finish(
    stream: string,
    event: NewEvent,
    reason: ResponseEnd,
    limits: ResponseLimits,
    onlyIfLapsed: boolean,
  ): Promise<{ state: ResponseState } | undefined> {
    const rows = await this.run(
      'end',
      stream,
      `SELECT * FROM ${this.s}.end_response($1, $2, $3, $4, $5::bytea, $6, $7, $8, $9)`,
      [
        stream,
        reason,
        event.event ?? '',
        typeof event.value === 'string',
        Buffer.from(event.data),
        weightOf(event.event, event.data),
        onlyIfLapsed,
        limits.ttl,
        this.host.lockTimeout,
      ],
    )
    const row = rows[0] as { status: string; epoch: string; end_seq: string | null } | undefined
    if (row === undefined) return undefined
    if (row.status !== 'active') this.host.appended(stream)
    return { state: stateOf(row.status, row.epoch, row.end_seq) }
  }

  async get(id: string): Promise<ResponseState | undefined> {
    const stream = `${RESPONSE_STREAM_PREFIX}${id}`
    const rows = await this.run(
      'read',
      stream,
      `SELECT status, epoch, end_seq FROM ${this.s}.streams WHERE stream = $1 AND status IS NOT NULL AND expires_at > clock_timestamp()`,
      [stream],
    )
    const row = rows[0] as { status: string; epoch: string; end_seq: string | null } | undefined
    return row === undefined ? undefined : stateOf(row.status, row.epoch, row.end_seq)
  }

  async renew(id: string, lease: number): Promise<boolean> {
    const stream = `${RESPONSE_STREAM_PREFIX}${id}`
    const rows = await this.run(
      'renew',
      stream,
      `UPDATE ${this.s}.streams SET lease_until = clock_timestamp() + $2 * interval '1 millisecond'
       WHERE stream = $1 AND status = 'active' AND expires_at > clock_timestamp() RETURNING 1 AS renewed`,
      [stream, lease],
    )
    return rows.length === 1
  }

  private async send(stream: string, items: readonly Append[]): Promise<(string | undefined)[]> {
    const rows = await this.run(
      'append to',
      stream,
      `SELECT * FROM ${this.s}.append_response($1, $2, $3, $4, $5::bytea[], $6, $7)`,
      [
        stream,
        items[0]!.n,
        items.map((item) => item.event.event ?? ''),
        items.map((item) => typeof item.event.value === 'string'),
        items.map((item) => Buffer.from(item.event.data)),
        items.map((item) => weightOf(item.event.event, item.event.data)),
        this.host.lockTimeout,
      ],
    )
    const row = rows[0] as { epoch: string; status: string | null; seqs: string[] }
    const seqs = row.seqs.map(Number)
    if (seqs.some((seq) => seq > 0)) this.host.appended(stream)
    const refused = seqs.indexOf(REFUSED)
    if (refused >= 0) {
      throw new RewindError(
        'ERR_HISTORY_LOST',
        `append ${items[refused]!.n} to response stream ${JSON.stringify(stream)} was refused: an earlier append of its producer was not stored (a failed write), and a stored answer must not have a hole; the response fails`,
      )
    }
    return seqs.map((seq) => (seq > 0 ? `${row.epoch}-${seq}` : undefined))
  }

  private async run(action: string, stream: string, text: string, values: unknown[]): Promise<object[]> {
    try {
      return await this.host.database.query(text, values)
    } catch (cause) {
      throw this.host.unavailable(`${action} the response of`, stream, cause)
    }
  }
}

function stateOf(status: string, epoch: string, endSeq: string | null): ResponseState {
  return {
    status: status as ResponseStatus,
    origin: `${epoch}-0`,
    endId: endSeq === null ? undefined : `${epoch}-${endSeq}`,
  }
}
