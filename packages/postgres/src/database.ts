/**
 * The store's side of the database: the pool it queries (its own, or the application's), the schema
 * created once before the first query, and the statements that read.
 */
import pg, { type ClientConfig, type Pool, type PoolConfig } from 'pg'
import type { EventRow } from './events.js'
import type { PostgresStoreOptions, ResolvedOptions } from './options.js'
import { schemaSql } from './schema.js'

/** Most streams one poll asks about in one statement. */
const POLL_CHUNK = 1000

/** A stream's row as reads see it. */
export interface StreamRow {
  readonly epoch: string
  /** The first retained sequence number (after trimming, and `maxAge` for feeds). */
  readonly first: number
  readonly last: number
}

/** A stream's row and a page of its events, read in one statement (one snapshot). */
export interface Page {
  readonly row: StreamRow | undefined
  readonly events: readonly EventRow[]
}

interface PageRow extends Partial<EventRow> {
  readonly epoch: string
  readonly first_seq: string
  readonly last_seq: string
}

/** The pool and the schema. */
export class Database {
  readonly pool: Pool
  readonly schema: string
  private readonly owned: boolean
  private readonly createSchema: boolean
  private readonly timeout: number
  private ready: Promise<void> | undefined
  /** The connection settings of the pool, for the `LISTEN` connection. */
  readonly settings: ClientConfig

  constructor(options: PostgresStoreOptions, resolved: ResolvedOptions) {
    this.schema = resolved.schema
    this.createSchema = resolved.createSchema
    this.timeout = resolved.commandTimeout
    if (options.pool !== undefined) {
      this.pool = options.pool
      this.owned = false
      this.settings = { ...((options.pool as Pool & { options?: PoolConfig }).options ?? {}) }
    } else {
      const config: PoolConfig = {
        max: resolved.poolSize,
        connectionTimeoutMillis: resolved.commandTimeout,
        // No statement_timeout: as a startup parameter, PgBouncer refuses the connection with it.
        keepAlive: true,
        ...(options.connectionString === undefined ? {} : { connectionString: options.connectionString }),
      }
      this.pool = new pg.Pool(config)
      // An idle connection that breaks is dropped by the pool; without a listener it would throw.
      this.pool.on('error', () => {})
      this.owned = true
      this.settings = config
    }
  }

  /**
   * Runs `text` once the schema exists, failing after `commandTimeout` (waiting for a connection of
   * the pool included). A query that timed out may still run on the server.
   */
  async query<R extends object>(text: string, values?: unknown[]): Promise<R[]> {
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${this.timeout} ms`)), this.timeout)
    })
    try {
      const running = (async () => {
        await this.migrate()
        return (await this.pool.query<R>(text, values)).rows
      })()
      running.catch(() => {})
      return await Promise.race([running, timeout])
    } finally {
      clearTimeout(timer)
    }
  }

  /**
   * Creates the schema (once per store), in a transaction under an advisory lock so that processes
   * starting together do not race on `CREATE OR REPLACE FUNCTION`. A failure is retried on the next
   * query.
   */
  migrate(): Promise<void> {
    if (!this.createSchema) return Promise.resolve()
    if (this.ready === undefined) {
      this.ready = (async () => {
        const client = await this.pool.connect()
        try {
          await client.query('BEGIN')
          await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`rewind schema ${this.schema}`])
          await client.query(schemaSql(this.schema))
          await client.query('COMMIT')
          client.release()
        } catch (error) {
          await client.query('ROLLBACK').catch(() => {})
          client.release(true)
          throw error
        }
      })()
      this.ready.catch(() => {
        this.ready = undefined
      })
    }
    return this.ready
  }

  /**
   * The row of `stream` and up to `limit` of its events after `afterSeq` (in the row's epoch only if
   * `epoch` is given and differs: then none), in one statement. With `maxAgeMs`, the events of a feed
   * older than that count as gone.
   */
  async page(
    stream: string,
    epoch: string | undefined,
    afterSeq: number,
    limit: number,
    maxAgeMs: number | null,
  ): Promise<Page> {
    const s = `"${this.schema}"`
    const rows = await this.query<PageRow>(
      `WITH r AS (
        SELECT t.stream, t.epoch, t.last_seq,
          CASE WHEN $5::bigint IS NULL OR t.status IS NOT NULL THEN t.first_seq
          ELSE coalesce((SELECT x.seq FROM ${s}.events x WHERE x.stream = t.stream AND x.seq >= t.first_seq
            AND x.created_at >= clock_timestamp() - $5::bigint * interval '1 millisecond'
            ORDER BY x.seq LIMIT 1), t.last_seq + 1) END AS first_seq
        FROM ${s}.streams t WHERE t.stream = $1)
      SELECT r.epoch, r.first_seq, r.last_seq, e.seq, e.event, e.is_string, e.data
      FROM r LEFT JOIN LATERAL (
        SELECT x.seq, x.event, x.is_string, x.data FROM ${s}.events x
        WHERE x.stream = r.stream AND x.seq > $3 AND x.seq >= r.first_seq AND ($2::text IS NULL OR r.epoch = $2)
        ORDER BY x.seq LIMIT $4) e ON true
      ORDER BY e.seq`,
      [stream, epoch ?? null, afterSeq, limit, maxAgeMs],
    )
    const head = rows[0]
    if (head === undefined) return { row: undefined, events: [] }
    const row = { epoch: head.epoch, first: Number(head.first_seq), last: Number(head.last_seq) }
    const events = head.seq === null || head.seq === undefined ? [] : (rows as EventRow[])
    return { row, events }
  }

  /** The epoch and last sequence number of each of `streams` that has a row. */
  async heads(streams: readonly string[]): Promise<Map<string, { epoch: string; last: number }>> {
    const heads = new Map<string, { epoch: string; last: number }>()
    for (let i = 0; i < streams.length; i += POLL_CHUNK) {
      const rows = await this.query<{ stream: string; epoch: string; last_seq: string }>(
        `SELECT stream, epoch, last_seq FROM "${this.schema}".streams WHERE stream = ANY($1::text[])`,
        [streams.slice(i, i + POLL_CHUNK)],
      )
      for (const row of rows) heads.set(row.stream, { epoch: row.epoch, last: Number(row.last_seq) })
    }
    return heads
  }

  /** Ends the pool if the store opened it. */
  async close(): Promise<void> {
    if (this.owned) await this.pool.end()
  }
}
