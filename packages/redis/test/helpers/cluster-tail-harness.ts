/**
 * A {@link ClusterTail} on its own, on a real Redis Cluster, without a store around it: what it
 * delivers (in batches) and reports, the shard connections it opened (optionally through a proxy in
 * front of each master), the reads it sent, and a cluster client of the test's own for appends that
 * announce themselves as the store's scripts do (`SPUBLISH` on the shard channel named like the key).
 */
import { Cluster, type ClusterOptions, Redis, type RedisOptions } from 'ioredis'
import { expect } from 'vitest'
import { ClusterTail, type ClusterTailOptions } from '../../src/cluster-tail.js'
import type { XReadReply } from '../../src/delivery.js'
import { EventCache, type RedisEvent } from '../../src/events.js'
import { keySlot } from '../../src/slots.js'
import type { TestCluster } from './cluster.js'
import { uniquePrefix } from './redis-server.js'

/** The name of the shard connections the harness opens, as `CLIENT LIST` shows it. */
export const SHARD_CONNECTION_NAME = 'rewind-cluster-tail-test'

export interface ClusterTailHarnessOptions
  extends Partial<
    Pick<ClusterTailOptions, 'blockMs' | 'replyTimeout' | 'minReconnectDelay' | 'maxReconnectDelay'>
  > {
  /** Options of the tail's cluster client (`keyPrefix`, `lazyConnect`…). */
  readonly clusterOptions?: ClusterOptions
  /** More options of the shard connections (a `username`, say). */
  readonly shardOptions?: RedisOptions
  /** The port a shard connection to the master on `port` goes to (a proxy's, say). @defaultValue `port` */
  readonly via?: (port: number) => number
  /** Sends a read in place of the tail's: `send` is the real one, through the cluster client. */
  readonly read?: (args: (string | number)[], send: () => Promise<XReadReply>) => Promise<XReadReply>
  /** Errors the test expects: `close` then only checks that nothing else was reported. */
  readonly expectReports?: boolean
}

export type ClusterTailHarness = ReturnType<typeof clusterTailOn>

/**
 * A cluster tail on `cluster` (slot map refreshed and connections pinged every minute by default,
 * a reply timeout of 5 s, reconnects within 20 to 40 ms), under a fresh key prefix. `close` ends
 * it, deletes its keys and, unless `expectReports`, checks that it reported nothing.
 */
export function clusterTailOn(cluster: TestCluster, options: ClusterTailHarnessOptions = {}) {
  const batches: [string, string[]][] = []
  const resets: string[] = []
  const reported: unknown[] = []
  /** Each shard connection the tail opened, with the master it was for. */
  const connections: { host: string; port: number; connection: Redis }[] = []
  /** Every read the tail sent, as its arguments. */
  const reads: (string | number)[][] = []
  const client = new Cluster([...cluster.nodes], options.clusterOptions)
  const admin = new Cluster([...cluster.nodes])
  const keyPrefix = options.clusterOptions?.keyPrefix ?? ''
  const cache = new EventCache({ deserialize: JSON.parse, report: (error) => reported.push(error) })
  const tail = new ClusterTail({
    toEvent: (key, entry) => cache.event(key, entry),
    deliver: (stream, events: readonly RedisEvent[]) => {
      batches.push([stream, events.map((event) => event.id)])
    },
    reset: (stream) => resets.push(stream),
    report: (error) => reported.push(error),
    cluster: client,
    blockMs: options.blockMs ?? 60_000,
    replyTimeout: options.replyTimeout ?? 5000,
    minReconnectDelay: options.minReconnectDelay ?? 20,
    maxReconnectDelay: options.maxReconnectDelay ?? 40,
    connect: (host, port) => {
      // The store's rules for its connections: fail fast rather than queue, never resend.
      const connection = new Redis({
        host,
        port: options.via?.(port) ?? port,
        connectionName: SHARD_CONNECTION_NAME,
        enableOfflineQueue: false,
        autoResendUnfulfilledCommands: false,
        retryStrategy: () => 20,
        ...options.shardOptions,
      })
      connections.push({ host, port, connection })
      return connection
    },
    read: (args) => {
      reads.push(args)
      const send = () => client.call(String(args[0]), ...args.slice(1)) as Promise<XReadReply>
      return options.read === undefined ? send() : options.read(args, send)
    },
  })
  const prefix = uniquePrefix('cluster-tail')
  const written = new Set<string>()
  /** The key of stream `name`, as the tail is given it (without the client's `keyPrefix`). */
  const key = (name: string): string => `${prefix}${name}`
  /** The key as Redis names it. */
  const fullKey = (name: string): string => keyPrefix + key(name)
  /**
   * Appends an entry to stream `name` that records `prev` as its predecessor and, unless
   * `announce` is false, announces it as the store's scripts do; resolves with its id.
   */
  const append = async (name: string, prev: string, data: string, announce = true): Promise<string> => {
    written.add(fullKey(name))
    const id = (await admin.xadd(fullKey(name), '*', 'prev', prev, 'data', data)) as string
    if (announce) await admin.call('SPUBLISH', fullKey(name), prev)
    return id
  }
  /** Appends `count` entries, chained, without announcing them; resolves with their ids. */
  const backlog = async (name: string, count: number): Promise<string[]> => {
    const ids: string[] = []
    let prev = ''
    for (let i = 0; i < count; i++) {
      prev = await append(name, prev, `"${i}"`, false)
      ids.push(prev)
    }
    return ids
  }
  /** Follows stream `name` from `startId`. */
  const follow = (name: string, startId = '0-0'): void => tail.add(name, key(name), startId)
  /** The ids delivered for `name`, in order. */
  const delivered = (name: string): string[] =>
    batches.filter(([stream]) => stream === name).flatMap(([, ids]) => ids)
  /** The port of the master that serves stream `name` now. */
  const masterOf = (name: string): Promise<number> => cluster.masterOf(keySlot(fullKey(name)))
  /** `count` stream names (`label0`, `label1`…) served by the master on `port`, in different slots. */
  const streamsOn = async (port: number, label: string, count: number): Promise<string[]> => {
    const found: string[] = []
    const slots = new Set<number>()
    for (let i = 0; found.length < count && i < 10_000; i++) {
      const name = `${label}${i}`
      const slot = keySlot(fullKey(name))
      if (slots.has(slot) || (await masterOf(name)) !== port) continue
      slots.add(slot)
      found.push(name)
    }
    expect(found).toHaveLength(count)
    return found
  }
  /** How many shard connections of the harness each master has, by `CLIENT LIST`. */
  const connectionsByMaster = (): Promise<number[]> =>
    Promise.all(
      cluster.nodes.map(async ({ port }) => {
        const list = (await cluster.node(port).call('CLIENT', 'LIST')) as string
        return list.split('\n').filter((line) => line.includes(` name=${SHARD_CONNECTION_NAME} `)).length
      }),
    )
  /** How many connections subscribe to stream `name`'s shard channel, on its master. */
  const subscribers = async (name: string): Promise<number> => {
    const reply = (await cluster.node(await masterOf(name)).call('PUBSUB', 'SHARDNUMSUB', fullKey(name))) as [
      string,
      number,
    ]
    return Number(reply[1])
  }
  const close = async (): Promise<void> => {
    await tail.close()
    for (const written_ of written) await admin.del(written_)
    await Promise.all([client.quit().catch(() => {}), admin.quit()])
    if (!options.expectReports) expect(reported).toEqual([])
  }
  return {
    tail,
    client,
    admin,
    batches,
    resets,
    reported,
    connections,
    reads,
    key,
    fullKey,
    append,
    backlog,
    follow,
    delivered,
    masterOf,
    streamsOn,
    connectionsByMaster,
    subscribers,
    close,
  }
}
