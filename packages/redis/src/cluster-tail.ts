/**
 * The live tail on Redis Cluster: one subscriber connection per master (shard), not per stream.
 *
 * The single-server tail blocks in one `XREAD` over every followed stream. A cluster refuses that
 * (`CROSSSLOT`) as soon as two streams are in different slots, even on the same node, and streams
 * spread over all 16384 slots. So here the append scripts announce each new id with `SPUBLISH` on a
 * shard channel named like the stream's key (same slot, so it stays on that shard), each shard's
 * connection `SSUBSCRIBE`s to the channels of the streams followed there, and an announcement marks
 * its stream for a non-blocking `XREAD` from the last id delivered, sent through the cluster client.
 * Announcements only wake the tail; the entries always come from the stream, after the cursor, so
 * a lost or duplicated announcement can delay delivery but never reorder or skip it.
 *
 * Announcements are lost while a shard's connection is down, or when a stream's slot moves to
 * another master (resharding, failover): the tail reads each stream again after every (re)subscription,
 * and every `blockMs` it refreshes the cluster's slot map and moves streams whose slot changed
 * masters to that master's connection (then reads them), and pings each connection, replacing one
 * that does not answer within `replyTimeout`.
 */
import { RewindError } from '@rewind/core'
import { describeError } from '@rewind/core/adapter'
import type { Cluster, Redis } from 'ioredis'
import { type Cursor, deliverEntries, type EntrySink, type XReadReply } from './delivery.js'
import { backoff } from './options.js'
import { keySlot } from './slots.js'
import { type LiveTail, ReplyTimeout, TAIL_BUDGET } from './tail.js'

/** What the cluster's tail needs from its store. */
export interface ClusterTailOptions extends EntrySink {
  readonly cluster: Cluster
  /** How often the slot map is refreshed and each shard's connection checked, in milliseconds. */
  readonly blockMs: number
  /** How long a subscription or a ping may take before the connection is deemed dead. */
  readonly replyTimeout: number
  readonly minReconnectDelay: number
  readonly maxReconnectDelay: number
  /** Opens the subscriber connection of the master at `host:port`; the tail disconnects it. */
  readonly connect: (host: string, port: number) => Redis
  /** Sends a non-blocking `XREAD` through the cluster client, bounded in time. */
  readonly read: (args: (string | number)[]) => Promise<XReadReply>
}

/** A followed stream, with what routes it to its shard. */
interface ClusterCursor extends Cursor {
  /** The key as Redis names it (with an ioredis `keyPrefix`): the stream's shard channel. */
  readonly channel: string
  readonly slot: number
  /** The shard whose connection follows it, if its master is known. */
  shard: Shard | undefined
}

/** The narrow view of the tail a shard reports to. */
interface ShardHost {
  readonly options: ClusterTailOptions
  /** Marks streams for a read: they have new entries, or announcements of them may have been lost. */
  touch(cursors: Iterable<ClusterCursor>): void
  /** Redis ended the subscription of `cursor` on `shard` (its slot moved): route it again. */
  released(shard: Shard, cursor: ClusterCursor): void
}

/**
 * What ioredis reports when Redis ends a shard channel's subscription by itself, which Redis 7 does
 * to a slot's subscribers when the slot moves to another master: ioredis takes the unasked-for
 * `sunsubscribe` reply for a protocol error and names the reply, channel included.
 */
const RELEASED = /Command queue state error\. .*Last reply: sunsubscribe,(.*),\d+$/s

/** One master's subscriber connection and the streams followed through it. */
class Shard {
  readonly channels = new Map<string, ClusterCursor>()
  private readonly connection: Redis
  private checking = false
  /**
   * How many times the connection closed. A reply awaited from before a close never comes: ioredis
   * neither resends nor fails what was in flight (`autoResendUnfulfilledCommands` is off), so such a
   * wait ends only in a timeout, which must not be taken for a connection that stopped answering.
   */
  private closes = 0
  /** Streams whose subscription Redis refused (other than by a timeout): tried again at each check. */
  private readonly refused = new Set<ClusterCursor>()

  constructor(
    readonly node: string,
    private readonly host: ShardHost,
  ) {
    const [address, port] = nodeAddress(node)
    this.connection = host.options.connect(address, port)
    this.connection.on('error', this.onError)
    this.connection.on('ready', this.onReady)
    this.connection.on('smessage', this.onMessage)
    this.connection.on('moved', this.onMoved)
    this.connection.on('close', this.onClose)
  }

  follow(cursor: ClusterCursor): void {
    this.channels.set(cursor.channel, cursor)
    cursor.shard = this
    if (this.connection.status === 'ready') this.subscribe([cursor])
  }

  /** Forgets `cursor` without unsubscribing (Redis already did); true when no stream is left here. */
  drop(cursor: ClusterCursor): boolean {
    this.channels.delete(cursor.channel)
    cursor.shard = undefined
    return this.channels.size === 0
  }

  /** Stops following `cursor`; true when no stream is left here. */
  unfollow(cursor: ClusterCursor): boolean {
    this.channels.delete(cursor.channel)
    cursor.shard = undefined
    // The last stream's connection is closed instead; one that is not ready has no subscriptions.
    // Stryker disable next-line ConditionalExpression,LogicalOperator,EqualityOperator: a needless SUNSUBSCRIBE, on a connection being closed or one that refuses it at once (no offline queue), changes nothing
    if (this.channels.size > 0 && this.connection.status === 'ready') {
      this.connection.sunsubscribe(cursor.channel).catch(() => {})
    }
    return this.channels.size === 0
  }

  /**
   * Subscribes again what Redis refused, pings the connection, and replaces the connection (it
   * reconnects and subscribes again) if no answer comes.
   */
  check(): void {
    if (this.checking || this.connection.status !== 'ready') return
    if (this.refused.size > 0) {
      const again = [...this.refused].filter((cursor) => this.channels.get(cursor.channel) === cursor)
      this.refused.clear()
      this.subscribe(again)
    }
    this.checking = true
    const closes = this.closes
    within(this.connection.ping(), this.host.options.replyTimeout).then(
      () => {
        this.checking = false
      },
      (error: unknown) => {
        // Closed meanwhile: the close ended this check, and the new connection answered its own.
        if (closes !== this.closes) return
        this.host.options.report(
          new RewindError(
            'ERR_STORE_UNAVAILABLE',
            `the Redis live tail's connection to ${this.node} stopped answering (${describeError(error)}); it reconnects and reads what it missed`,
            { cause: error },
          ),
        )
        // Its close ends this check.
        this.connection.disconnect(true)
      },
    )
  }

  /** Ends the connection: it does not reconnect, and what was in flight on it fails (unreported). */
  close(): void {
    // An error of a connection being closed is no news.
    // Stryker disable next-line all: ioredis emits no error once it disconnected on request
    this.connection.removeListener('error', this.onError).on('error', () => {})
    this.connection.disconnect()
  }

  private readonly onError = (error: unknown): void => {
    const released = error instanceof Error ? RELEASED.exec(error.message) : null
    const cursor = released === null ? undefined : this.channels.get(released[1]!)
    // Expected on a slot move, not a failure: the stream is routed to its new master instead.
    if (cursor !== undefined) this.host.released(this, cursor)
    else if (released === null) this.host.options.report(error)
  }

  private readonly onClose = (): void => {
    // Stryker disable next-line UpdateOperator: only whether the count changed matters
    this.closes++
    this.checking = false
  }

  /** (Re)subscribes to every channel: a new connection starts without subscriptions. */
  private readonly onReady = (): void => {
    this.subscribe([...this.channels.values()])
  }

  private readonly onMessage = (channel: string): void => {
    const cursor = this.channels.get(channel)
    if (cursor !== undefined) this.host.touch([cursor])
  }

  /**
   * An `SSUBSCRIBE` was answered `MOVED`: the cluster client's slot map is stale. ioredis says so
   * with this event and leaves the subscription's promise unsettled, so the refresh (which moves the
   * streams to their master) is the way on, not the failure below, which would only come as a
   * timeout.
   */
  private readonly onMoved = (): void => {
    this.host.options.cluster.refreshSlotsCache()
  }

  /**
   * One `SSUBSCRIBE` per slot (Redis refuses channels of different slots in one). Once subscribed,
   * the streams are read: entries appended before the subscription took effect were not announced.
   */
  private subscribe(cursors: readonly ClusterCursor[]): void {
    for (const group of bySlot(cursors).values()) {
      const channels = group.map((cursor) => cursor.channel)
      const closes = this.closes
      within(this.connection.ssubscribe(...channels), this.host.options.replyTimeout).then(
        () => this.host.touch(group),
        (error: unknown) => {
          // Closed meanwhile (the new connection subscribes to every channel once ready), or
          // unfollowed here, or moved to another master: there is nothing to retry.
          if (closes !== this.closes) return
          if (!group.some((cursor) => this.channels.get(cursor.channel) === cursor)) return
          // A connection that does not answer is replaced, and subscribes again. A refusal (a MOVED
          // answer where ioredis rejects it, an ACL that denies SSUBSCRIBE) may mean the slot map
          // is stale: the refresh moves the streams, and those still here are tried again.
          const timedOut = error instanceof ReplyTimeout
          const then = timedOut
            ? 'it reconnects and subscribes again'
            : `it refreshes the slot map and tries again every ${this.host.options.blockMs} ms`
          this.host.options.report(
            new RewindError(
              'ERR_STORE_UNAVAILABLE',
              `the Redis live tail could not subscribe on ${this.node} (${describeError(error)}); ${then}`,
              { cause: error },
            ),
          )
          if (timedOut) this.connection.disconnect(true)
          else {
            for (const cursor of group) this.refused.add(cursor)
            this.host.options.cluster.refreshSlotsCache()
          }
        },
      )
    }
  }
}

/** Follows the watched streams of one store on a Redis Cluster (see above). */
export class ClusterTail implements LiveTail, ShardHost {
  private readonly cursors = new Map<string, ClusterCursor>()
  private readonly shards = new Map<string, Shard>()
  /** Streams to read: announced, or possibly missed. */
  private readonly dirty = new Set<ClusterCursor>()
  private readonly keyPrefix: string
  private draining: Promise<void> | undefined
  private failures = 0
  private closed = false
  private interval: NodeJS.Timeout | undefined
  private pausing: { readonly stop: () => void } | undefined

  constructor(readonly options: ClusterTailOptions) {
    this.keyPrefix = options.cluster.options.keyPrefix ?? ''
    options.cluster.on('refresh', this.reroute)
  }

  has(stream: string): boolean {
    return this.cursors.has(stream)
  }

  add(stream: string, key: string, startId: string): void {
    if (this.closed || this.cursors.has(stream)) return
    const channel = this.keyPrefix + key
    const cursor: ClusterCursor = {
      stream,
      key,
      lastId: startId,
      channel,
      slot: keySlot(channel),
      shard: undefined,
    }
    this.cursors.set(stream, cursor)
    this.route(cursor)
    if (this.interval === undefined) {
      this.interval = setInterval(this.check, this.options.blockMs)
      this.interval.unref()
    }
  }

  remove(stream: string): void {
    const cursor = this.cursors.get(stream)
    if (cursor === undefined) return
    this.cursors.delete(stream)
    this.dirty.delete(cursor)
    this.leave(cursor)
  }

  async close(): Promise<void> {
    this.closed = true
    this.options.cluster.removeListener('refresh', this.reroute)
    clearInterval(this.interval)
    this.pausing?.stop()
    this.cursors.clear()
    this.dirty.clear()
    await this.draining
    for (const shard of this.shards.values()) shard.close()
    this.shards.clear()
  }

  touch(cursors: Iterable<ClusterCursor>): void {
    // Only followed streams: none once closed.
    for (const cursor of cursors) {
      if (this.cursors.get(cursor.stream) === cursor) this.dirty.add(cursor)
    }
    this.drain()
  }

  released(shard: Shard, cursor: ClusterCursor): void {
    if (shard.drop(cursor)) {
      shard.close()
      this.shards.delete(shard.node)
    }
    // The refresh reroutes it (to the new master, or back here if the map is not updated yet: then
    // Redis answers MOVED to the subscription, which refreshes the map again).
    this.options.cluster.refreshSlotsCache()
  }

  /** The master that serves `slot` by the cluster client's slot map, as `host:port`. */
  private masterOf(slot: number): string | undefined {
    return this.options.cluster.slots[slot]?.[0]
  }

  /** Puts `cursor` on the connection of its slot's master, if not there yet. */
  private route(cursor: ClusterCursor): void {
    const node = this.masterOf(cursor.slot)
    if (node !== undefined && cursor.shard?.node === node) return
    this.leave(cursor)
    if (node === undefined) {
      // The slot map has no master for it (yet): the next refresh routes it.
      this.options.cluster.refreshSlotsCache()
      return
    }
    let shard = this.shards.get(node)
    if (shard === undefined) {
      shard = new Shard(node, this)
      this.shards.set(node, shard)
    }
    shard.follow(cursor)
  }

  private leave(cursor: ClusterCursor): void {
    const shard = cursor.shard
    if (shard?.unfollow(cursor)) {
      shard.close()
      this.shards.delete(shard.node)
    }
  }

  /** After the slot map changed (or was confirmed): streams whose master changed move to it. */
  private readonly reroute = (): void => {
    for (const cursor of this.cursors.values()) this.route(cursor)
  }

  /** Every `blockMs`: refresh the slot map (which reroutes), and check each shard's connection. */
  private readonly check = (): void => {
    if (this.cursors.size === 0) return
    this.options.cluster.refreshSlotsCache()
    for (const shard of this.shards.values()) shard.check()
  }

  private drain(): void {
    if (this.draining !== undefined || this.dirty.size === 0) return
    this.draining = this.readDirty()
      .catch(this.options.report)
      .finally(() => {
        this.draining = undefined
        // Streams touched between the loop's last check and now.
        this.drain()
      })
  }

  /**
   * Reads the marked streams in rounds of at most {@link TAIL_BUDGET} entries over all of them, one
   * `XREAD` per slot, all of a round at once. A stream that filled its share is read again.
   */
  private async readDirty(): Promise<void> {
    // Nothing is marked once closed (`close` clears the marks, and only followed streams are marked).
    while (this.dirty.size > 0) {
      const batch: ClusterCursor[] = []
      for (const cursor of this.dirty) {
        batch.push(cursor)
        if (batch.length >= TAIL_BUDGET) break
      }
      for (const cursor of batch) this.dirty.delete(cursor)
      const count = Math.max(1, Math.floor(TAIL_BUDGET / batch.length))
      let failure: unknown
      await Promise.all(
        [...bySlot(batch).values()].map((group) =>
          this.read(group, count).catch((error: unknown) => {
            failure = error
            for (const cursor of group) if (this.cursors.get(cursor.stream) === cursor) this.dirty.add(cursor)
          }),
        ),
      )
      if (failure === undefined) {
        this.failures = 0
        continue
      }
      if (this.closed) return
      this.failures++
      this.options.report(
        new RewindError(
          'ERR_STORE_UNAVAILABLE',
          `the Redis live tail failed (${describeError(failure)}); it retries and resumes where it stopped`,
          { cause: failure },
        ),
      )
      await this.pause(backoff(this.failures, this.options.minReconnectDelay, this.options.maxReconnectDelay))
    }
  }

  /** Reads one slot's streams after their cursors and delivers what came. */
  private async read(group: readonly ClusterCursor[], count: number): Promise<void> {
    const args: (string | number)[] = ['XREAD', 'COUNT', count, 'STREAMS']
    for (const cursor of group) args.push(cursor.key)
    for (const cursor of group) args.push(cursor.lastId)
    const reply = await this.options.read(args)
    if (reply == null) return
    // Redis names each stream by its full key, including an ioredis keyPrefix of the caller's client.
    const byChannel = new Map(group.map((cursor) => [cursor.channel, cursor]))
    for (const [key, entries] of reply) {
      const cursor = byChannel.get(key)
      // Stryker disable next-line ConditionalExpression: Redis names in its reply only the keys asked for
      if (cursor === undefined) continue
      // Dropped if the stream was unwatched (or unwatched and watched again) while the read was in flight.
      if (this.cursors.get(cursor.stream) !== cursor) continue
      deliverEntries(this.options, cursor, entries)
      if (entries.length >= count) this.dirty.add(cursor)
    }
  }

  private pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const stop = (): void => {
        clearTimeout(timer)
        this.pausing = undefined
        resolve()
      }
      const timer = setTimeout(stop, ms)
      this.pausing = { stop }
    })
  }
}

/** The host and port of a node named `host:port` (the host may be an IPv6 address, colons and all). */
export function nodeAddress(node: string): [host: string, port: number] {
  const colon = node.lastIndexOf(':')
  return [node.slice(0, colon), Number(node.slice(colon + 1))]
}

/** `promise`, or a {@link ReplyTimeout} after `ms`. */
function within<T>(promise: Promise<T>, ms: number): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new ReplyTimeout(`no reply within ${ms} ms`)), ms)
    promise.then(
      (value) => {
        clearTimeout(timer)
        resolve(value)
      },
      (error: unknown) => {
        clearTimeout(timer)
        reject(error)
      },
    )
  })
}

function bySlot(cursors: Iterable<ClusterCursor>): Map<number, ClusterCursor[]> {
  const groups = new Map<number, ClusterCursor[]>()
  for (const cursor of cursors) {
    const group = groups.get(cursor.slot)
    if (group === undefined) groups.set(cursor.slot, [cursor])
    else group.push(cursor)
  }
  return groups
}
