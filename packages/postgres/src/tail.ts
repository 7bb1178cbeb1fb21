/**
 * The live tail: one `LISTEN` connection per store, whatever the number of subscribers, and a poll.
 * A notification carries only a stream's name (a wake-up, never the data); the tail then reads the
 * stream's events after the last one it delivered, from the table, and hands them to the hub in
 * order. The poll asks, every `pollInterval`, where every followed stream is, so a lost notification,
 * a dead `LISTEN` connection or a pooler that drops `LISTEN` delays delivery by one interval at most.
 * After every (re)connection the tail reads every followed stream again (the catch-up), since
 * notifications sent while it was not listening are gone.
 */
import { randomBytes } from 'node:crypto'
import { RewindError } from '@rewind/core'
import type { StoredEvent } from '@rewind/core/adapter'
import pg, { type ClientConfig, type Notification } from 'pg'
import type { Database } from './database.js'
import { type Decoder, toEvent } from './events.js'
import { NO_EPOCH } from './ids.js'
import { backoff } from './options.js'

/** Most events one read of the tail takes from a stream; a backlog is read in pages of this. */
export const TAIL_PAGE = 1000

/** Where the tail is in one stream. */
interface Cursor {
  /** Epoch of the stream's row when the cursor last moved ({@link NO_EPOCH} without a row). */
  epoch: string
  /** The last sequence number delivered (or the stream's last when watching started). */
  seq: number
  /** A read of the stream is under way. */
  reading: boolean
  /** Something asked for a read while one was under way: read again after it. */
  again: boolean
}

/** What the tail needs from its store. */
export interface TailOptions extends Decoder {
  readonly database: Database
  /** The channel appends are announced on. */
  readonly channel: string
  /** The `LISTEN` connection's settings; `undefined` to poll only. */
  readonly listen: ClientConfig | undefined
  readonly pollInterval: number
  readonly probeTimeout: number
  readonly minReconnectDelay: number
  readonly maxReconnectDelay: number
  readonly deliver: (stream: string, events: readonly StoredEvent[]) => void
  readonly reset: (stream: string) => void
}

/** How the tail learns of new events: through notifications (checked by a probe), or by polling only. */
export type TailMode = 'connecting' | 'listening' | 'polling'

/** Follows the watched streams of one store (see above). */
export class Tail {
  private readonly cursors = new Map<string, Cursor>()
  private client: pg.Client | undefined
  private started = false
  private closed = false
  private failures = 0
  private poller: NodeJS.Timeout | undefined
  private polling = false
  private reconnectTimer: NodeJS.Timeout | undefined
  private probe: { readonly token: string; readonly timer: NodeJS.Timeout } | undefined
  private readonly pending = new Set<string>()
  private flushScheduled = false
  /** How events reach this tail now; see {@link TailMode}. */
  mode: TailMode = 'connecting'

  constructor(private readonly options: TailOptions) {}

  /** The channel probes are sent on, beside the events' channel. */
  private get probeChannel(): string {
    return `${this.options.channel}_probe`
  }

  /** Whether `stream` is being followed. */
  has(stream: string): boolean {
    return this.cursors.has(stream)
  }

  /** Follows `stream` from `seq` of `epoch` on: every event after it is delivered. */
  add(stream: string, epoch: string, seq: number): void {
    if (this.closed || this.cursors.has(stream)) return
    this.cursors.set(stream, { epoch, seq, reading: false, again: false })
    if (!this.started) this.start()
  }

  /** Stops following `stream`. */
  remove(stream: string): void {
    this.cursors.delete(stream)
  }

  /** `stream` may have new events (a notification, or an append of this process): read it soon. */
  poke(stream: string): void {
    if (!this.cursors.has(stream)) return
    this.pending.add(stream)
    if (this.flushScheduled) return
    this.flushScheduled = true
    setImmediate(() => {
      this.flushScheduled = false
      const streams = [...this.pending]
      this.pending.clear()
      for (const name of streams) void this.read(name)
    })
  }

  /** Ends the tail: clears its timers and closes its connection. */
  async close(): Promise<void> {
    this.closed = true
    this.cursors.clear()
    clearInterval(this.poller)
    clearTimeout(this.reconnectTimer)
    if (this.probe !== undefined) clearTimeout(this.probe.timer)
    const client = this.client
    this.client = undefined
    if (client !== undefined) await client.end().catch(() => {})
  }

  private start(): void {
    this.started = true
    this.poller = setInterval(() => void this.poll(), this.options.pollInterval)
    this.poller.unref()
    if (this.options.listen === undefined) {
      this.mode = 'polling'
      return
    }
    void this.connect()
  }

  /** Opens the `LISTEN` connection, listens, probes, and catches up; on failure, retries later. */
  private async connect(): Promise<void> {
    if (this.closed) return
    // TCP keepalive after 10 s idle, so a connection that died silently (a half-open socket) is
    // noticed and replaced; the poll covers the meantime.
    const client = new pg.Client({
      keepAlive: true,
      keepAliveInitialDelayMillis: 10_000,
      ...this.options.listen,
    })
    this.client = client
    this.mode = 'connecting'
    client.on('notification', this.onNotification)
    client.on('error', (error) => this.lost(client, error))
    client.on('end', () => this.lost(client, new Error('the LISTEN connection ended')))
    try {
      await client.connect()
      await client.query(`LISTEN "${this.options.channel}"; LISTEN "${this.probeChannel}"`)
      if (this.client !== client) return
      this.failures = 0
      this.sendProbe()
    } catch (error) {
      this.lost(client, error)
      return
    }
    // Notifications sent before LISTEN took effect are gone: read every followed stream once.
    void this.poll()
  }

  /** The `LISTEN` connection failed or ended: report it, poll meanwhile, and reconnect with backoff. */
  private lost(client: pg.Client, error: unknown): void {
    if (this.client !== client || this.closed) return
    this.client = undefined
    this.mode = 'polling'
    if (this.probe !== undefined) {
      clearTimeout(this.probe.timer)
      this.probe = undefined
    }
    client.removeAllListeners('notification')
    client.end().catch(() => {})
    this.failures++
    this.options.report(
      new RewindError(
        'ERR_STORE_UNAVAILABLE',
        `the Postgres LISTEN connection failed (${describe(error)}); the store polls every ${this.options.pollInterval} ms meanwhile, reconnects, and reads every followed stream again`,
        { cause: error },
      ),
    )
    const delay = backoff(this.failures, this.options.minReconnectDelay, this.options.maxReconnectDelay)
    this.reconnectTimer = setTimeout(() => void this.connect(), delay)
    this.reconnectTimer.unref()
  }

  /**
   * Sends a notification to itself through the pool: if it does not come back within `probeTimeout`,
   * the `LISTEN` connection is not really listening (a pooler in transaction mode accepts `LISTEN`
   * and drops it when the transaction ends), which is said once, and the tail relies on polling.
   */
  private sendProbe(): void {
    const token = randomBytes(9).toString('base64url')
    const client = this.client
    const timer = setTimeout(() => {
      if (this.probe?.token !== token || this.client !== client) return
      this.probe = undefined
      this.mode = 'polling'
      this.options.report(
        new RewindError(
          'ERR_STORE_UNAVAILABLE',
          `the Postgres LISTEN connection got no notification within ${this.options.probeTimeout} ms of its own probe: it probably goes through a pooler in transaction mode (PgBouncer's pool_mode = transaction drops LISTEN silently). Events still arrive, by polling every ${this.options.pollInterval} ms; for live delivery give the store's listen option a direct connection (or a pooler in session mode)`,
        ),
      )
    }, this.options.probeTimeout)
    timer.unref()
    this.probe = { token, timer }
    this.options.database
      .query('SELECT pg_notify($1, $2)', [this.probeChannel, token])
      .catch((error: unknown) => {
        this.options.report(error)
      })
  }

  private readonly onNotification = (message: Notification): void => {
    if (message.channel === this.probeChannel) {
      if (this.probe !== undefined && message.payload === this.probe.token) {
        clearTimeout(this.probe.timer)
        this.probe = undefined
        this.mode = 'listening'
      }
      return
    }
    if (message.channel === this.options.channel && message.payload !== undefined) this.poke(message.payload)
  }

  /** Asks where every followed stream is, and reads those that moved. */
  private async poll(): Promise<void> {
    if (this.polling || this.closed || this.cursors.size === 0) return
    this.polling = true
    try {
      const heads = await this.options.database.heads([...this.cursors.keys()])
      for (const [stream, cursor] of this.cursors) {
        const head = heads.get(stream)
        const moved =
          head === undefined
            ? cursor.epoch !== NO_EPOCH
            : head.epoch !== cursor.epoch || head.last > cursor.seq
        if (moved) void this.read(stream)
      }
    } catch (error) {
      if (!this.closed) {
        this.options.report(
          new RewindError(
            'ERR_STORE_UNAVAILABLE',
            `the Postgres live tail could not poll (${describe(error)}); it tries again in ${this.options.pollInterval} ms`,
            { cause: error },
          ),
        )
      }
    } finally {
      this.polling = false
    }
  }

  /** Reads `stream` after its cursor and delivers what follows it, page by page; one read at a time. */
  private async read(stream: string): Promise<void> {
    const cursor = this.cursors.get(stream)
    if (cursor === undefined) return
    if (cursor.reading) {
      cursor.again = true
      return
    }
    cursor.reading = true
    try {
      for (;;) {
        const page = await this.options.database.page(stream, undefined, cursor.seq, TAIL_PAGE, null)
        if (this.cursors.get(stream) !== cursor) return
        if (!this.advance(stream, cursor, page.row, page.events)) break
      }
    } catch (error) {
      if (!this.closed) {
        this.options.report(
          new RewindError(
            'ERR_STORE_UNAVAILABLE',
            `the Postgres live tail could not read stream ${JSON.stringify(stream)} (${describe(error)}); the next poll tries again`,
            { cause: error },
          ),
        )
      }
    } finally {
      cursor.reading = false
      if (cursor.again && this.cursors.get(stream) === cursor) {
        cursor.again = false
        void this.read(stream)
      }
    }
  }

  /**
   * Moves `cursor` over a page read after it, delivering its events if they follow the cursor.
   * Anything else (the stream was deleted or started a new epoch; events were trimmed before the tail
   * read them) resets the stream's subscribers, who resume from history with the gap signal.
   * Returns true when another page may follow.
   */
  private advance(
    stream: string,
    cursor: Cursor,
    row: { epoch: string; first: number; last: number } | undefined,
    rows: readonly import('./events.js').EventRow[],
  ): boolean {
    if (row === undefined) {
      if (cursor.epoch !== NO_EPOCH) {
        this.lose(stream, `stream ${JSON.stringify(stream)} was deleted (its TTL passed) while followed live`)
        cursor.epoch = NO_EPOCH
        cursor.seq = 0
      }
      return false
    }
    // A stream created since it was watched (from no row) is followed from its first event.
    if (cursor.epoch === NO_EPOCH && cursor.seq === 0 && row.first === 1) cursor.epoch = row.epoch
    if (row.epoch !== cursor.epoch) {
      this.lose(stream, `stream ${JSON.stringify(stream)} started a new epoch while followed live`)
      cursor.epoch = row.epoch
      cursor.seq = row.last
      return false
    }
    const first = rows[0]
    if (first === undefined ? row.first > cursor.seq + 1 : Number(first.seq) !== cursor.seq + 1) {
      this.lose(
        stream,
        `the live tail of stream ${JSON.stringify(stream)} missed the events after ${cursor.seq}: they were trimmed (past maxLen or maxBytes) before it read them`,
      )
      cursor.seq = row.last
      return false
    }
    if (first === undefined) return false
    const events = rows.map((entry) => toEvent(stream, row.epoch, entry, this.options))
    cursor.seq = events[events.length - 1]!.major
    try {
      this.options.deliver(stream, events)
    } catch (error) {
      this.options.report(error)
    }
    return rows.length === TAIL_PAGE
  }

  private lose(stream: string, message: string): void {
    this.options.report(new RewindError('ERR_HISTORY_LOST', message))
    try {
      this.options.reset(stream)
    } catch (error) {
      this.options.report(error)
    }
  }
}

/**
 * Announces appends: the names of the streams appended to in one turn of the event loop go out in one
 * `pg_notify` statement, its own tiny transaction after the appends committed (never inside an
 * application's transaction, where NOTIFY would hold Postgres's cluster-wide notify lock until commit).
 */
export class Notifier {
  private readonly pending = new Set<string>()
  private busy = false
  private scheduled = false
  private closed = false

  constructor(
    private readonly database: Database,
    private readonly channel: string,
    private readonly report: (error: unknown) => void,
  ) {}

  /** Announces an append to `stream`. */
  notify(stream: string): void {
    if (this.closed) return
    this.pending.add(stream)
    if (this.busy || this.scheduled) return
    this.scheduled = true
    setImmediate(() => {
      this.scheduled = false
      void this.flush()
    })
  }

  close(): void {
    this.closed = true
    this.pending.clear()
  }

  private async flush(): Promise<void> {
    if (this.busy || this.pending.size === 0 || this.closed) return
    this.busy = true
    const streams = [...this.pending]
    this.pending.clear()
    try {
      await this.database.query('SELECT pg_notify($1, s) FROM unnest($2::text[]) AS s', [
        this.channel,
        streams,
      ])
    } catch (error) {
      // The readers' poll still finds the events.
      if (!this.closed) this.report(error)
    } finally {
      this.busy = false
      if (this.pending.size > 0) void this.flush()
    }
  }
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error)
}
