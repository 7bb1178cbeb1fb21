/**
 * The Redis Streams history store: each Rewind stream is a Redis stream, appended with `XADD`,
 * replayed with `XRANGE` and followed live by one blocking `XREAD` per process (on a cluster, one
 * subscription per shard). Every app instance that uses the same Redis can resume any client.
 */
import { type GapReason, RewindError } from '@rewind/core'
import {
  type AsyncHistoryStore,
  AttachedHub,
  describeError,
  type NewEvent,
  type Position,
  RESPONSE_STREAM_PREFIX,
  type ReadResult,
  readCount,
  type StoreDelivery,
  storeErrorReport,
} from '@rewind/core/adapter'
import { AppendBatches } from './append-batches.js'
import { ClusterTail } from './cluster-tail.js'
import { CommandConnection } from './connection.js'
import type { EntrySink, XReadReply } from './delivery.js'
import { EventCache, RecentPages, type RedisEvent } from './events.js'
import {
  compareStreamIds,
  formatStreamId,
  MAX_ID_PART,
  parseStreamId,
  previousStreamId,
  type StreamId,
  toPosition,
  ZERO_ID,
  ZERO_POSITION,
} from './ids.js'
import { streamKey } from './keys.js'
import { type RedisStoreOptions, type ResolvedOptions, resolveOptions } from './options.js'
import { RedisResponses } from './responses.js'
import { type LiveTail, Tail } from './tail.js'

/** `CLIENT SETNAME` of the live tail's connections, to tell them apart in `CLIENT LIST`. */
const TAIL_CONNECTION_NAME = 'rewind-tail'

/**
 * A history store on Redis Streams, shared by every process that uses the same Redis and prefix.
 * Create one per hub with {@link createRedisStore}; close it after the hub.
 */
export class RedisStore implements AsyncHistoryStore {
  /** Always false: every operation goes to Redis, so the hub awaits it. */
  readonly synchronous = false
  /** Prefix of the Redis keys: stream `s` lives in the key `prefix + '{' + s + '}'` (see {@link key}). */
  readonly prefix: string
  /** Responses (streams that end) kept in this Redis: their records beside their streams. */
  readonly responses: RedisResponses
  private readonly options: ResolvedOptions
  private readonly connection: CommandConnection
  private readonly cache: EventCache
  /** Pages read lately: readers of the same page share one array, and so one encoding of it. */
  private readonly pages = new RecentPages()
  private readonly appends = new AppendBatches((stream, events) => this.appendMany(stream, events))
  private readonly tail: LiveTail
  /** The hub the live tail delivers to. */
  private readonly hub = new AttachedHub(
    'this Redis store is already attached to a hub; create one store per hub',
  )
  /** Watches whose start id is being fetched; a watch in this map when it lands joins the tail. */
  private readonly starting = new Map<string, { promise: Promise<void> }>()
  private closing: Promise<void> | undefined
  /** Failures no caller sees: to `onError`, or logged (each kind at most once a minute). */
  private readonly report: (error: unknown) => void

  constructor(options: RedisStoreOptions = {}) {
    this.options = resolveOptions(options)
    this.report = storeErrorReport('rewind/redis', this.options.onError)
    this.prefix = this.options.prefix
    this.cache = new EventCache({
      deserialize: this.options.deserialize,
      report: (error) => this.report(error),
    })
    this.connection = new CommandConnection(options.redis, options.cluster, this.options, this.report)
    this.responses = new RedisResponses(
      this.connection,
      (stream) => this.key(stream),
      (action, stream, cause) => this.unavailable(action, stream, cause),
    )
    const sink: EntrySink = {
      toEvent: (key, entry) => this.cache.event(key, entry),
      deliver: (stream, events) => this.hub.deliver(stream, events),
      reset: (stream) => this.hub.reset(stream),
      report: this.report,
    }
    const cluster = this.connection.cluster
    this.tail =
      cluster === undefined
        ? new Tail({
            ...sink,
            blockMs: this.options.blockMs,
            replyTimeout: this.options.commandTimeout,
            minReconnectDelay: this.options.minReconnectDelay,
            maxReconnectDelay: this.options.maxReconnectDelay,
            connect: () => this.connection.duplicate(TAIL_CONNECTION_NAME),
            unblock: (clientId) =>
              this.connection.run(
                (client) => client.call('CLIENT', 'UNBLOCK', clientId) as Promise<number>,
                toError,
              ),
          })
        : new ClusterTail({
            ...sink,
            cluster,
            blockMs: this.options.blockMs,
            replyTimeout: this.options.commandTimeout,
            minReconnectDelay: this.options.minReconnectDelay,
            maxReconnectDelay: this.options.maxReconnectDelay,
            connect: (host, port) => this.connection.connectNode(cluster, host, port, TAIL_CONNECTION_NAME),
            read: (args) =>
              this.connection.run(
                (client) => client.call(String(args[0]), ...args.slice(1)) as Promise<XReadReply>,
                toError,
              ),
          })
  }

  /** `XADD`/`XTRIM` trimming: `~` (whole nodes) or `=` (exact). */
  private get trimMode(): '~' | '=' {
    return this.options.trim === 'exact' ? '=' : '~'
  }

  /** `maxAge` as the scripts take it: milliseconds, `'0'` for none. */
  private get maxAgeArgument(): string {
    return Number.isFinite(this.options.maxAge) ? String(this.options.maxAge) : '0'
  }

  /**
   * `maxAge` for reading `stream`: none for a response's stream, which is bounded by its own limits
   * and kept whole for its TTL once ended (a feed's age would trim an answer while clients read it).
   */
  private maxAgeOf(stream: string): string {
    return stream.startsWith(RESPONSE_STREAM_PREFIX) ? '0' : this.maxAgeArgument
  }

  /**
   * The Redis key of `stream`: `prefix + '{' + stream + '}'`, or, for a name with a brace,
   * `prefix + '{#' + <16 hex digits of the name's SHA-1> + '}#' + stream`. The braces are a hash tag:
   * on Redis Cluster every key of a stream is in the slot of its tag.
   */
  key(stream: string): string {
    return streamKey(this.prefix, stream)
  }

  /** `'1'` on a cluster, where appends announce their ids to the live tails with `SPUBLISH`. */
  private get notify(): '0' | '1' {
    return this.connection.cluster === undefined ? '0' : '1'
  }

  /**
   * Appends an event with `XADD ... MAXLEN`, recording the id of the entry before it, and resolves
   * with the new id; the appends of one turn to a stream go in one script call. Rejects with `ERR_STORE_UNAVAILABLE` at once while Redis is unreachable, or
   * after `commandTimeout` without a reply, so the publisher can answer 503. (Like any write over a
   * network, one that timed out may still have been applied.)
   */
  append(stream: string, event: NewEvent): Promise<string> {
    return this.appends.append(stream, event)
  }

  /** Appends `events` to `stream` in one script call (see append-batches.ts); resolves with their ids. */
  private appendMany(stream: string, events: readonly NewEvent[]): Promise<string[]> {
    const key = this.key(stream)
    const fields: string[] = []
    for (const event of events) {
      fields.push(event.event ?? '', typeof event.value === 'string' ? '1' : '0', event.data)
    }
    return this.connection.run(
      (client) =>
        client.rewindAppend(
          key,
          this.trimMode,
          this.options.maxLen,
          this.maxAgeArgument,
          Number.isFinite(this.options.streamTtl) ? String(this.options.streamTtl) : '0',
          this.notify,
          ...fields,
        ),
      (cause) => this.unavailable('append to', stream, cause),
    )
  }

  /**
   * Reads up to `limit` events after a position, with the contract of `SyncHistoryStore.read`. An id
   * older than the first retained entry is `evicted` unless it is that entry's predecessor (stored
   * with the entry, so approximate trimming never causes a false gap); an id that is not
   * `<digits>-<digits>`, is newer than the newest entry, or is not the recorded predecessor of the
   * entry after it (Redis lost it: see {@link follows}), is `unknown`.
   *
   * A gap, and a read from `null`, return the position just before the first retained entry with no
   * events and `done: false`: the gap signal then carries that position, and the next read, from it,
   * returns the events. (The position is accepted as a resume id, so a client that drops right after
   * the signal does not get the gap twice.)
   */
  async read(stream: string, after: string | null | undefined, limit: number): Promise<ReadResult> {
    const key = this.key(stream)
    const count = readCount(limit)
    const afterId = typeof after === 'string' ? parseStreamId(after) : undefined
    // Redis refuses a range after the greatest possible id; nothing could follow it anyway.
    const start =
      afterId !== undefined && count > 0 && !(afterId.ms === MAX_ID_PART && afterId.seq === MAX_ID_PART)
        ? `(${formatStreamId(afterId)}`
        : ''
    const [firstText, firstPrev, newestText, page, lastText] = await this.connection.run(
      (client) => client.rewindRead(key, start, count, this.trimMode, this.maxAgeOf(stream)),
      (cause) => this.unavailable('read', stream, cause),
    )
    const first = parseStreamId(firstText)
    if (first === undefined) return readEmpty(after, afterId, parseStreamId(lastText))
    const newest = parseStreamId(newestText)!
    if (after === undefined) return { events: [], position: toPosition(newest), done: true }
    // Redis never stores 0-0, so the first entry always has a predecessor.
    const before = toPosition(previousStreamId(first) ?? ZERO_ID)
    if (after === null) return { events: [], position: before, done: false }
    if (afterId === undefined || compareStreamIds(afterId, newest) > 0) return gapAt('unknown', before)
    if (compareStreamIds(afterId, first) < 0 && !justBefore(afterId, first, firstPrev)) {
      return gapAt('evicted', before)
    }
    const events = this.pages.same(
      `${start} ${count} ${key}`,
      page.map((entry) => this.cache.event(key, entry)),
    )
    // Redis trims only from the start, so an id at or after the first retained entry must be the
    // recorded predecessor of the entry that follows it. If not, Redis lost that id with others
    // around it (a reload of an older snapshot, a failover to a lagging replica) and then issued
    // later ones: it no longer knows the id, and what the client missed cannot be told.
    const head = events[0]
    if (head !== undefined && compareStreamIds(afterId, first) >= 0 && !follows(head, afterId)) {
      return gapAt('unknown', before)
    }
    const last = events[events.length - 1]
    if (last === undefined) {
      return { events, position: toPosition(afterId), done: compareStreamIds(afterId, newest) >= 0 }
    }
    return { events, position: last, done: events.length < count || last.id === newestText }
  }

  /** Called once by the hub: where the live tail delivers events. */
  attach(delivery: StoreDelivery): void {
    this.hub.attach(delivery)
  }

  /**
   * Starts following `stream` live. Resolves once its start id (the stream's last generated id, or
   * `0-0` if it does not exist yet) is fixed: every event appended after that is delivered.
   */
  watch(stream: string): Promise<void> {
    if (this.tail.has(stream)) return Promise.resolve()
    const pending = this.starting.get(stream)
    if (pending !== undefined) return pending.promise
    const key = this.key(stream)
    // Stryker disable next-line ObjectLiteral: a placeholder, replaced on the next statement before anything reads it
    const entry: { promise: Promise<void> } = { promise: Promise.resolve() }
    entry.promise = this.connection
      .run(
        (client) => client.rewindStart(key),
        (cause) => this.unavailable('watch', stream, cause),
      )
      .then(
        (startId) => {
          // Unwatched meanwhile: the subscribers that wanted it are gone.
          if (this.starting.get(stream) !== entry) return
          this.starting.delete(stream)
          this.tail.add(stream, key, startId)
        },
        (error: unknown) => {
          if (this.starting.get(stream) === entry) this.starting.delete(stream)
          throw error
        },
      )
    this.starting.set(stream, entry)
    return entry.promise
  }

  /** Stops following `stream` live. */
  unwatch(stream: string): void {
    this.starting.delete(stream)
    this.tail.remove(stream)
  }

  /**
   * Ends the live tail, rejects commands in flight, and closes the connections the store opened
   * (not a client it was given). Resolves promptly, even while Redis is down.
   */
  close(): Promise<void> {
    if (this.closing === undefined) {
      this.starting.clear()
      // Stryker disable next-line BlockStatement: clearing the cache only frees memory; a closed store refuses every read
      this.closing = Promise.all([this.tail.close(), this.connection.close()]).then(() => {
        this.cache.clear()
        this.pages.clear()
      })
    }
    return this.closing
  }

  private unavailable(action: string, stream: string, cause: unknown): RewindError {
    return new RewindError(
      'ERR_STORE_UNAVAILABLE',
      `the Redis store could not ${action} stream ${JSON.stringify(stream)}: ${describeError(cause)}`,
      { cause },
    )
  }
}

/**
 * A read of a stream with no entries. A missing key (never written, or expired after `streamTtl`)
 * resumes only from `0-0`, what a fresh client of it is told; Redis kept nothing else of it, not even
 * the ids it issued, so any other id is `unknown`. A key that `maxAge` emptied still knows its last
 * id: that id resumes exactly (the next entry records it as its predecessor), an older one missed
 * the entries trimmed since (`evicted`), and a newer one was never issued (`unknown`).
 */
function readEmpty(
  after: string | null | undefined,
  afterId: StreamId | undefined,
  last: StreamId | undefined,
): ReadResult {
  const position = last === undefined ? ZERO_POSITION : toPosition(last)
  const current = last ?? ZERO_ID
  if (typeof after !== 'string') return { events: [], position, done: true }
  const order = afterId === undefined ? 1 : compareStreamIds(afterId, current)
  if (order === 0) return { events: [], position, done: true }
  const reason: GapReason = order < 0 && last !== undefined ? 'evicted' : 'unknown'
  return { events: [], position, gap: reason, done: true }
}

/**
 * True when `id`, older than the first retained entry, is still exact: the entry's recorded
 * predecessor, or the position just before it (which the gap signal hands out). Anything else older
 * was either trimmed or lost, so events between it and the first entry are missing.
 */
function justBefore(id: StreamId, first: StreamId, firstPrev: string): boolean {
  const prev = parseStreamId(firstPrev)
  if (prev !== undefined && compareStreamIds(id, prev) === 0) return true
  const before = previousStreamId(first)
  return before !== undefined && compareStreamIds(id, before) === 0
}

/**
 * True when `event` was appended right after `id`, as its recorded predecessor says. An entry
 * without one (written by something else than this store) cannot be checked and is trusted.
 */
function follows(event: RedisEvent, id: StreamId): boolean {
  if (event.prev === '') return true
  const prev = parseStreamId(event.prev)
  return prev !== undefined && compareStreamIds(prev, id) === 0
}

function gapAt(reason: GapReason, position: Position): ReadResult {
  return { events: [], position, gap: reason, done: false }
}

function toError(cause: unknown): Error {
  return cause instanceof Error ? cause : new Error(String(cause))
}

/**
 * Creates a history store on Redis Streams, for hubs in many processes that share one Redis.
 *
 * @example
 * ```ts
 * import { createHub } from '@rewind/core'
 * import { createRedisStore } from '@rewind/redis'
 *
 * const store = createRedisStore({ redis: process.env.REDIS_URL })
 * const hub = createHub({ store })
 * ```
 */
export function createRedisStore(options?: RedisStoreOptions): RedisStore {
  return new RedisStore(options)
}
