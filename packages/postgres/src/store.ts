/**
 * The Postgres history store: each Rewind stream is a row of `streams` (its epoch and sequence) and
 * its events are rows of `events`, appended by one function call per batch, read with one statement,
 * and followed live by one `LISTEN` connection and a poll per process. Every app instance that uses
 * the same database and schema can resume any client.
 */
import { type GapReason, RewindError } from '@rewind/core'
import {
  type AsyncHistoryStore,
  AttachedHub,
  describeError,
  type NewEvent,
  type Position,
  type ReadResult,
  readCount,
  type StoreDelivery,
  storeErrorReport,
} from '@rewind/core/adapter'
import type { ClientBase, ClientConfig } from 'pg'
import { Batches } from './batches.js'
import { Database } from './database.js'
import { type Decoder, toEvent, weightOf } from './events.js'
import { NO_EPOCH, newEpoch, parseId, positionOf } from './ids.js'
import { type PostgresStoreOptions, type ResolvedOptions, resolveOptions } from './options.js'
import { PostgresResponses } from './responses.js'
import { channelOf } from './schema.js'
import { Notifier, Tail, type TailMode } from './tail.js'

/** Most streams one sweep deletes. */
const SWEEP_BATCH = 500

/**
 * A history store on Postgres, shared by every process that uses the same database and schema.
 * Create one per hub with {@link createPostgresStore}; close it after the hub.
 */
export class PostgresStore implements AsyncHistoryStore {
  /** Always false: every operation goes to Postgres, so the hub awaits it. */
  readonly synchronous = false
  /** The schema of the store's tables and functions. */
  readonly schema: string
  /** Responses (streams that end) kept in this database: their records beside their streams. */
  readonly responses: PostgresResponses
  private readonly options: ResolvedOptions
  private readonly database: Database
  private readonly decoder: Decoder
  private readonly tail: Tail
  private readonly notifier: Notifier
  private readonly appends: Batches<NewEvent, string>
  /** The hub the live tail delivers to. */
  private readonly hub = new AttachedHub(
    'this Postgres store is already attached to a hub; create one store per hub',
  )
  private readonly sweeper: NodeJS.Timeout
  private closing: Promise<void> | undefined
  /** Failures no caller sees: to `onError`, or logged (each kind at most once a minute). */
  private readonly report: (error: unknown) => void

  constructor(options: PostgresStoreOptions = {}) {
    this.options = resolveOptions(options)
    this.report = storeErrorReport('rewind/postgres', this.options.onError)
    this.schema = this.options.schema
    this.database = new Database(options, this.options)
    this.decoder = { deserialize: this.options.deserialize, report: (error) => this.report(error) }
    const channel = channelOf(this.schema)
    this.notifier = new Notifier(this.database, channel, this.report)
    this.tail = new Tail({
      ...this.decoder,
      database: this.database,
      channel,
      listen: listenSettings(options.listen, this.database.settings),
      pollInterval: this.options.pollInterval,
      probeTimeout: this.options.probeTimeout,
      minReconnectDelay: this.options.minReconnectDelay,
      maxReconnectDelay: this.options.maxReconnectDelay,
      deliver: (stream, events) => this.hub.deliver(stream, events),
      reset: (stream) => this.hub.reset(stream),
    })
    this.appends = new Batches(
      this.options.maxBatch,
      (stream, events) => this.appendBatch(stream, events),
      (events) => events.length,
      (stream, waiting) =>
        this.unavailable('append to', stream, `${waiting} appends wait for Postgres already`),
    )
    this.responses = new PostgresResponses({
      database: this.database,
      maxBatch: this.options.maxBatch,
      lockTimeout: this.lockTimeout,
      appended: (stream) => this.appended(stream),
      unavailable: (action, stream, cause) => this.unavailable(action, stream, cause),
    })
    this.sweeper = setInterval(() => void this.sweep(), this.options.sweepInterval)
    this.sweeper.unref()
  }

  /**
   * How long a write waits for its stream's row lock: less than `commandTimeout`, so that Postgres
   * usually gives up before the caller is told the write failed (and the write is not applied later).
   */
  private get lockTimeout(): number {
    return Math.max(1, Math.floor(this.options.commandTimeout * 0.8))
  }

  /**
   * How the live tail learns of new events: `listening` once its probe notification came back,
   * `polling` when it could not listen (every `pollInterval`), `connecting` before either.
   */
  get mode(): TailMode {
    return this.tail.mode
  }

  /** Creates the schema now (it is otherwise created before the first query). */
  migrate(): Promise<void> {
    return this.database.migrate()
  }

  /**
   * Appends an event and resolves with its id. Appends to one stream that arrive while one is under
   * way go together in the next transaction. Rejects with `ERR_STORE_UNAVAILABLE` when Postgres does
   * not take it, so the publisher can answer 503.
   */
  append(stream: string, event: NewEvent): Promise<string> {
    return this.appends.add(stream, event)
  }

  /**
   * Appends an event inside the application's own transaction, on its client: the event exists if
   * and only if the transaction commits, with the id it returns. The cost: the stream's row stays
   * locked until that transaction ends, so the stream's other appends (from every process) wait for
   * it; keep such transactions short. Nothing is announced: call {@link announce} after `COMMIT`
   * (else the poll delivers the event within `pollInterval`). `event.data` is the text stored, and
   * `event.value` a string when the data was published as one (else it is parsed back with
   * `deserialize`).
   */
  async appendWithin(client: ClientBase, stream: string, event: NewEvent): Promise<string> {
    await this.database.migrate()
    const [id] = await this.appendBatch(stream, [event], client)
    return id!
  }

  /** Tells every process that `stream` has new events (after an {@link appendWithin} committed). */
  announce(stream: string): void {
    this.appended(stream)
  }

  private async appendBatch(
    stream: string,
    events: readonly NewEvent[],
    client?: ClientBase,
  ): Promise<string[]> {
    const finite = (value: number): number | null => (Number.isFinite(value) ? value : null)
    let rows: { epoch: string; last_seq: string }[]
    try {
      const text = `SELECT * FROM "${this.schema}".append($1, $2, $3, $4, $5::bytea[], $6, $7, $8, $9, $10, $11)`
      const values = [
        stream,
        newEpoch(),
        events.map((event) => event.event ?? ''),
        events.map((event) => typeof event.value === 'string'),
        events.map((event) => Buffer.from(event.data)),
        events.map((event) => weightOf(event.event, event.data)),
        this.options.maxLen,
        finite(this.options.maxBytes) ?? Number.MAX_SAFE_INTEGER,
        finite(this.options.maxAge),
        finite(this.options.streamTtl) ?? 100 * 365 * 24 * 3600 * 1000,
        // In the application's transaction the lock timeout would outlive the append: none there.
        client === undefined ? this.lockTimeout : null,
      ]
      rows =
        client === undefined
          ? await this.database.query(text, values)
          : (await client.query<{ epoch: string; last_seq: string }>(text, values)).rows
    } catch (cause) {
      throw this.unavailable('append to', stream, cause)
    }
    const { epoch, last_seq } = rows[0]!
    const last = Number(last_seq)
    if (client === undefined) this.appended(stream)
    return events.map((_, i) => `${epoch}-${last - events.length + 1 + i}`)
  }

  /** Events of `stream` were committed: announce them to every process, and read them here now. */
  private appended(stream: string): void {
    this.notifier.notify(stream)
    this.tail.poke(stream)
  }

  /**
   * Reads up to `limit` events after a position, with the contract of `SyncHistoryStore.read`, in one
   * statement. An id of another epoch is `epoch`; one older than the position before the oldest
   * retained event is `evicted`; one that is malformed or newer than the newest is `unknown`. A
   * stream without a row has the single position `0-0`; `0-0` against a stream that has one resumes
   * from its start when nothing was trimmed yet, and is `evicted` otherwise.
   */
  async read(stream: string, after: string | null | undefined, limit: number): Promise<ReadResult> {
    const count = readCount(limit)
    const parsed = typeof after === 'string' ? parseId(after) : undefined
    const wanted = parsed !== undefined && count > 0
    let page: Awaited<ReturnType<Database['page']>>
    try {
      page = await this.database.page(
        stream,
        parsed?.epoch === NO_EPOCH ? undefined : parsed?.epoch,
        wanted ? parsed.seq : 0,
        wanted ? count : 0,
        Number.isFinite(this.options.maxAge) ? this.options.maxAge : null,
      )
    } catch (cause) {
      throw this.unavailable('read', stream, cause)
    }
    const row = page.row
    if (row === undefined) {
      const position = positionOf(NO_EPOCH, 0)
      if (typeof after !== 'string' || (parsed?.epoch === NO_EPOCH && parsed.seq === 0)) {
        return { events: [], position, done: true }
      }
      return { events: [], position, gap: parsed === undefined ? 'unknown' : 'epoch', done: true }
    }
    const before = positionOf(row.epoch, row.first - 1)
    const empty = row.first > row.last
    if (after === undefined) return { events: [], position: positionOf(row.epoch, row.last), done: true }
    if (after === null) return { events: [], position: before, done: empty }
    if (parsed === undefined) return gapAt('unknown', before, empty)
    // `0-0` was given before the stream had a row: it is exact while nothing has been trimmed.
    const origin = parsed.epoch === NO_EPOCH && parsed.seq === 0
    if (origin && row.first !== 1) return gapAt('evicted', before, empty)
    if (!origin && parsed.epoch !== row.epoch) return gapAt('epoch', before, empty)
    if (parsed.seq > row.last) return gapAt('unknown', before, empty)
    if (parsed.seq < row.first - 1) return gapAt('evicted', before, empty)
    const events = page.events.map((entry) => toEvent(stream, row.epoch, entry, this.decoder))
    const last = events[events.length - 1]
    if (last === undefined) {
      return { events, position: positionOf(row.epoch, parsed.seq), done: parsed.seq >= row.last }
    }
    return { events, position: last, done: last.major >= row.last }
  }

  /** Called once by the hub: where the live tail delivers events. */
  attach(delivery: StoreDelivery): void {
    this.hub.attach(delivery)
  }

  /** Called once the hub that attached with `delivery` has closed: another hub may attach now. */
  detach(delivery: StoreDelivery): void {
    this.hub.detach(delivery)
  }

  /**
   * Starts following `stream` live. Resolves once its current position is read: every event
   * committed after that is delivered (by notification, or by the poll at the latest).
   */
  async watch(stream: string): Promise<void> {
    if (this.tail.has(stream)) return
    let head: { epoch: string; last: number } | undefined
    try {
      head = (await this.database.heads([stream])).get(stream)
    } catch (cause) {
      throw this.unavailable('watch', stream, cause)
    }
    this.tail.add(stream, head?.epoch ?? NO_EPOCH, head?.last ?? 0)
  }

  /** Stops following `stream` live. */
  unwatch(stream: string): void {
    this.tail.remove(stream)
  }

  /**
   * Deletes a bounded batch of streams whose TTL has passed (idle feeds, expired responses), and
   * their events, in one statement. Each process sweeps; `SKIP LOCKED` keeps them out of each other's
   * way and out of the way of appends.
   */
  async sweep(): Promise<number> {
    const s = `"${this.schema}"`
    try {
      const rows = await this.database.query<{ deleted: string }>(
        `WITH gone AS (
          DELETE FROM ${s}.streams WHERE stream IN (
            SELECT stream FROM ${s}.streams WHERE expires_at < clock_timestamp()
            ORDER BY expires_at LIMIT ${SWEEP_BATCH} FOR UPDATE SKIP LOCKED)
          RETURNING stream),
        events AS (DELETE FROM ${s}.events WHERE stream IN (SELECT stream FROM gone))
        SELECT count(*) AS deleted FROM gone`,
      )
      return Number(rows[0]?.deleted ?? 0)
    } catch (error) {
      if (this.closing === undefined) this.report(error)
      return 0
    }
  }

  /**
   * Ends the live tail, clears the timers, and ends the pool the store opened (not a pool it was
   * given).
   */
  close(): Promise<void> {
    if (this.closing === undefined) {
      clearInterval(this.sweeper)
      this.notifier.close()
      this.closing = this.tail.close().then(() => this.database.close())
    }
    return this.closing
  }

  private unavailable(action: string, stream: string, cause: unknown): RewindError {
    return new RewindError(
      'ERR_STORE_UNAVAILABLE',
      `the Postgres store could not ${action} stream ${JSON.stringify(stream)}: ${describeError(cause)}`,
      { cause },
    )
  }
}

function gapAt(reason: GapReason, position: Position, done: boolean): ReadResult {
  return { events: [], position, gap: reason, done }
}

/** The `LISTEN` connection's settings: the `listen` option, else the pool's. */
function listenSettings(
  listen: PostgresStoreOptions['listen'],
  pool: ClientConfig,
): ClientConfig | undefined {
  if (listen === false) return undefined
  if (typeof listen === 'string') return { connectionString: listen }
  if (listen !== undefined) return listen
  return pool
}

/**
 * Creates a history store on Postgres, for hubs in many processes that share one database.
 *
 * @example
 * ```ts
 * import { createHub } from '@rewind/core'
 * import { createPostgresStore } from '@rewind/postgres'
 *
 * const store = createPostgresStore({ connectionString: process.env.DATABASE_URL })
 * const hub = createHub({ store })
 * ```
 */
export function createPostgresStore(options?: PostgresStoreOptions): PostgresStore {
  return new PostgresStore(options)
}
