/**
 * The live tail: one blocking connection per store follows every watched stream with a single
 * `XREAD BLOCK`, however many subscribers there are, and hands new entries to the hub in stream order.
 * It remembers the last id it delivered per stream, so after Redis comes back it carries on from
 * there: every entry Redis accepted is delivered once, in order.
 */
import { RewindError } from '@rewind/core'
import { describeError } from '@rewind/core/adapter'
import type { Redis } from 'ioredis'
import { type Cursor, deliverEntries, type EntrySink, type XReadReply } from './delivery.js'
import { backoff } from './options.js'

/**
 * Most entries one XREAD returns over all its streams (when it follows fewer streams than this):
 * it asks for `TAIL_BUDGET / streams` per stream, at least one. A backlog (after an outage, or a
 * burst) is then read in bounded batches without blocking, instead of up to a batch per stream.
 */
export const TAIL_BUDGET = 1000
/** Attempts to wake an XREAD that has been sent but that Redis has not started blocking yet. */
const UNBLOCK_ATTEMPTS = 8

/** What the tail needs from its store. */
export interface TailOptions extends EntrySink {
  readonly blockMs: number
  /** How long past `blockMs` a reply may take before the connection is deemed dead. */
  readonly replyTimeout: number
  readonly minReconnectDelay: number
  readonly maxReconnectDelay: number
  /** Opens the blocking connection; called on the first watch. The tail disconnects it on close. */
  readonly connect: () => Redis
  /** Sends `CLIENT UNBLOCK <id>` on the command connection; resolves with Redis's answer (1 or 0). */
  readonly unblock: (clientId: number) => Promise<number>
}

/** A command in flight on the blocking connection. */
interface Request {
  /** The tail's generation when it was sent (XREAD only); older ones miss a stream added since. */
  readonly generation: number
  /** The connection's client id, for `CLIENT UNBLOCK`; undefined for a request that must not be woken. */
  readonly clientId: number | undefined
  readonly interrupt: (reason: Error) => void
}

/** The request was cut short on purpose (the store closed, or the connection was lost). */
class Interrupted extends Error {}

/** A tail's connection did not answer in time (the single server's, or a cluster master's). */
export class ReplyTimeout extends Error {}

/** What the store asks of its live tail, on one server or on a cluster. */
export interface LiveTail {
  /** Whether `stream` is being followed. */
  has(stream: string): boolean
  /** Follows `stream` (at Redis key `key`) from `startId` on: every entry after it is delivered. */
  add(stream: string, key: string, startId: string): void
  /** Stops following `stream`. */
  remove(stream: string): void
  /** Ends the tail, clears its timers and closes its connections. */
  close(): Promise<void>
}

/** Follows the watched streams of one store over its one blocking connection (see above). */
export class Tail implements LiveTail {
  private readonly cursors = new Map<string, Cursor>()
  private connection: Redis | undefined
  private running: Promise<void> | undefined
  private closed = false
  /** Bumped whenever a stream is added, so an XREAD issued before can be told apart and woken. */
  private generation = 0
  private request: Request | undefined
  private clientId: number | undefined
  /** Ends the current pause early (close); `idle` marks a pause that a new stream also ends. */
  private waiting: { readonly stop: () => void; readonly idle: boolean } | undefined
  private unblocking = false
  private readonly timers = new Set<NodeJS.Timeout>()

  constructor(private readonly options: TailOptions) {}

  /** Whether `stream` is being followed. */
  has(stream: string): boolean {
    return this.cursors.has(stream)
  }

  /**
   * Follows `stream` from `startId` on: every entry after it is delivered. The blocking read in
   * flight, which does not include the stream, is woken so the next one does.
   */
  add(stream: string, key: string, startId: string): void {
    if (this.closed || this.cursors.has(stream)) return
    this.cursors.set(stream, { stream, key, lastId: startId })
    this.generation++
    if (this.running === undefined) this.start()
    if (this.waiting?.idle) this.waiting.stop()
    this.wake()
  }

  /** Stops following `stream`; what the read in flight returns for it is dropped. */
  remove(stream: string): void {
    this.cursors.delete(stream)
  }

  /** Ends the loop, clears its timers and disconnects the blocking connection. */
  async close(): Promise<void> {
    this.closed = true
    this.cursors.clear()
    this.waiting?.stop()
    // Stryker disable next-line StringLiteral: a closed loop stops without reporting the reason
    this.request?.interrupt(new Interrupted('the store was closed'))
    for (const timer of this.timers) clearTimeout(timer)
    this.timers.clear()
    await this.running
    this.connection?.disconnect()
  }

  private start(): void {
    const connection = this.options.connect()
    connection.on('error', this.options.report)
    connection.on('close', this.onClose)
    this.connection = connection
    this.running = this.loop(connection).catch(this.options.report)
  }

  private readonly onClose = (): void => {
    this.clientId = undefined
    // Without autoResendUnfulfilledCommands ioredis never settles the command that was in flight.
    this.request?.interrupt(new Interrupted('the connection to Redis was lost'))
  }

  private async loop(connection: Redis): Promise<void> {
    let failures = 0
    while (!this.closed) {
      if (this.cursors.size === 0) {
        await this.pause(undefined, undefined)
        continue
      }
      if (connection.status !== 'ready') {
        if (connection.status === 'end') connection.connect().catch(() => {})
        // ioredis reconnects with the store's backoff; the timer only guards against a missed event.
        await this.pause(this.options.maxReconnectDelay, connection)
        continue
      }
      try {
        if (this.clientId === undefined) {
          this.clientId = Number(await this.send(connection, ['CLIENT', 'ID'], false))
          // Streams may have come and gone meanwhile (an XREAD over none is a syntax error).
          continue
        }
        const cursors = [...this.cursors.values()]
        const reply = (await this.send(connection, xreadArguments(cursors, this.options.blockMs), true)) as
          | XReadReply
          | undefined
        failures = 0
        // Stryker disable next-line StringLiteral: ioredis defaults keyPrefix to '', so the fallback (for the type) is never used
        if (reply != null) this.dispatch(reply, cursors, connection.options.keyPrefix ?? '')
      } catch (error) {
        if (this.closed) break
        failures++
        if (error instanceof ReplyTimeout) {
          // A connection that stopped answering (a half-open socket) is replaced by a fresh one.
          // Stryker disable next-line BooleanLiteral: ended instead, the connection is opened again by the loop (status 'end')
          connection.disconnect(true)
        }
        this.options.report(
          new RewindError(
            'ERR_STORE_UNAVAILABLE',
            `the Redis live tail failed (${describeError(error)}); it retries and resumes where it stopped`,
            { cause: error },
          ),
        )
        await this.pause(
          backoff(failures, this.options.minReconnectDelay, this.options.maxReconnectDelay),
          undefined,
        )
      }
    }
  }

  /** Sends one command on the blocking connection, bounded in time and interruptible. */
  private send(connection: Redis, args: (string | number)[], blocking: boolean): Promise<unknown> {
    return new Promise((resolve, reject) => {
      let settled = false
      const timeout = (blocking ? this.options.blockMs : 0) + this.options.replyTimeout
      const timer = setTimeout(() => settle(new ReplyTimeout(`no reply within ${timeout} ms`)), timeout)
      const settle = (error: Error | undefined, value?: unknown): void => {
        // A request is current until its first settlement, after which a second one changes nothing:
        // its promise is settled, its timer cleared, and `this.request` is another request or none.
        // Stryker disable next-line ConditionalExpression: see above
        if (settled) return
        // Stryker disable next-line BooleanLiteral: see above
        settled = true
        clearTimeout(timer)
        if (this.request === request) this.request = undefined
        if (error === undefined) resolve(value)
        else reject(error)
      }
      const request: Request = {
        generation: this.generation,
        clientId: blocking ? this.clientId : undefined,
        interrupt: (reason) => settle(reason),
      }
      this.request = request
      const [name, ...rest] = args
      connection.call(String(name), ...rest).then(
        (value) => settle(undefined, value),
        (error: unknown) => settle(error instanceof Error ? error : new Error(String(error))),
      )
    })
  }

  private dispatch(reply: NonNullable<XReadReply>, cursors: readonly Cursor[], keyPrefix: string): void {
    // Redis names each stream by its full key, including an ioredis keyPrefix of the caller's client.
    const byKey = new Map<string, Cursor>()
    for (const cursor of cursors) byKey.set(keyPrefix + cursor.key, cursor)
    for (const [key, entries] of reply) {
      const cursor = byKey.get(key)
      // Dropped if the stream was unwatched (or unwatched and watched again) while the read was in flight.
      if (cursor === undefined || this.cursors.get(cursor.stream) !== cursor) continue
      deliverEntries(this.options, cursor, entries)
    }
  }

  /**
   * Wakes the XREAD in flight if it was issued before the newest stream was added. `CLIENT UNBLOCK`
   * answers 0 when the XREAD has not reached Redis yet (or has just returned); it is then tried again
   * shortly, a bounded number of times. If all fail, the XREAD still returns within `blockMs`.
   */
  private wake(): void {
    const request = this.request
    if (this.unblocking || this.closed || request === undefined) return
    const { clientId } = request
    if (request.generation >= this.generation || clientId === undefined) return
    this.unblocking = true
    this.unblock(request, clientId)
      .catch(this.options.report)
      .finally(() => {
        this.unblocking = false
        // A stream added while waiting for the answer may be missing from a newer XREAD.
        if (this.request !== request) this.wake()
      })
  }

  private async unblock(request: Request, clientId: number): Promise<void> {
    for (let attempt = 0; attempt < UNBLOCK_ATTEMPTS; attempt++) {
      // The XREAD has returned, or was interrupted (which is also how `close()` ends this).
      if (this.request !== request) return
      let unblocked: number
      try {
        unblocked = await this.options.unblock(clientId)
      } catch {
        // The command connection failed: the XREAD still returns within `blockMs`.
        return
      }
      if (unblocked === 1) return
      await this.sleep(2 ** attempt)
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.timers.delete(timer)
        resolve()
      }, ms)
      this.timers.add(timer)
    })
  }

  /**
   * Waits for `ms` (or, with `ms` undefined, until a stream is added), for `readyOf` to become
   * ready if given, or until the tail closes, whichever comes first.
   */
  private pause(ms: number | undefined, readyOf: Redis | undefined): Promise<void> {
    // Stryker disable next-line ConditionalExpression: the loop checks `closed` just before each pause; this guards a pause that would never end
    if (this.closed) return Promise.resolve()
    return new Promise((resolve) => {
      let timer: NodeJS.Timeout | undefined
      const stop = (): void => {
        clearTimeout(timer)
        readyOf?.removeListener('ready', stop)
        // Stryker disable next-line ConditionalExpression,EqualityOperator,OptionalChaining: only the current pause is ever stopped (by its timer, its 'ready' event, close or add), and stopping a finished one again does nothing
        if (this.waiting?.stop === stop) this.waiting = undefined
        resolve()
      }
      if (ms !== undefined) timer = setTimeout(stop, ms)
      readyOf?.once('ready', stop)
      this.waiting = { stop, idle: ms === undefined }
    })
  }
}

/**
 * The blocking read of every followed stream. Each one names every key with its last id, so its cost
 * grows with the number of streams followed; its reply is bounded by {@link TAIL_BUDGET} entries, or
 * one per stream when more streams are followed.
 */
function xreadArguments(cursors: readonly Cursor[], blockMs: number): (string | number)[] {
  const count = Math.max(1, Math.floor(TAIL_BUDGET / cursors.length))
  const args: (string | number)[] = ['XREAD', 'COUNT', count, 'BLOCK', blockMs, 'STREAMS']
  for (const cursor of cursors) args.push(cursor.key)
  for (const cursor of cursors) args.push(cursor.lastId)
  return args
}
