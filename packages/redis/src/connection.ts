/**
 * The command connection: opening (or adopting) ioredis clients, and running commands so that they
 * fail fast and typed while Redis is unreachable instead of waiting in ioredis's offline queue.
 */
import { RewindError } from '@rewind/core'
import { Cluster, type ClusterNode, type ClusterOptions, Redis, type RedisOptions } from 'ioredis'
import { backoff, DEFAULT_REDIS_URL, type ResolvedOptions } from './options.js'
import { defineScripts, type ScriptedRedis } from './scripts.js'

/** How long `close()` lets `QUIT` take before it drops a connection. */
const QUIT_TIMEOUT = 1000

/**
 * Options for the connections the store opens. No offline queue and no resending: a command that
 * cannot be sent now fails now, and a command that timed out is not run later behind the caller's
 * back (an append the publisher was told had failed must not appear after a reconnection).
 */
function connectionOptions(options: ResolvedOptions, name: string): RedisOptions {
  return {
    enableOfflineQueue: false,
    autoResendUnfulfilledCommands: false,
    lazyConnect: false,
    connectionName: name,
    retryStrategy: (attempt: number) =>
      backoff(attempt, options.minReconnectDelay, options.maxReconnectDelay),
  }
}

/**
 * Options for a `Cluster` the store opens: the same fail-fast rules at the cluster's level, and the
 * same backoff for reconnecting to it. Node connections keep ioredis's offline queue: a cluster opens
 * them lazily with the first command routed to them, which that queue holds until they connect (the
 * store's own `commandTimeout` still bounds the wait).
 */
function clusterOptions(options: ResolvedOptions, name: string): ClusterOptions {
  return {
    enableOfflineQueue: false,
    lazyConnect: false,
    clusterRetryStrategy: (attempt: number) =>
      backoff(attempt, options.minReconnectDelay, options.maxReconnectDelay),
    redisOptions: { connectionName: name, autoResendUnfulfilledCommands: false },
  }
}

/** Whether `value` looks like an ioredis client (duck-typed, so two copies of ioredis interoperate). */
function isClient(value: unknown): value is Redis | Cluster {
  return (
    value !== null &&
    typeof value === 'object' &&
    typeof (value as Partial<Redis>).duplicate === 'function' &&
    typeof (value as Partial<Redis>).defineCommand === 'function' &&
    typeof (value as Partial<Redis>).status === 'string'
  )
}

/** The connection that carries appends, reads and watches (the caller's client, or one the store opened). */
export class CommandConnection {
  readonly client: ScriptedRedis
  /** The same client when it is a Redis Cluster client, else `undefined`. */
  readonly cluster: Cluster | undefined
  /** Whether the store opened this client (and so closes it). */
  readonly owned: boolean
  /** Set once the client has been ready; from then on, not being ready means Redis is unreachable. */
  private everReady: boolean
  private readonly pending = new Set<(cause: unknown) => void>()
  /** Commands sent before the first connection was ready, started when it is. */
  private readonly waiting = new Set<() => void>()
  private closed = false

  constructor(
    redis: string | Redis | Cluster | undefined,
    cluster: readonly ClusterNode[] | undefined,
    private readonly options: ResolvedOptions,
    report: (error: unknown) => void,
  ) {
    let client: Redis | Cluster
    if (cluster !== undefined) {
      if (redis !== undefined) {
        throw new RewindError(
          'ERR_INVALID_ARGUMENT',
          'give either redis (a URL or a client) or cluster (the startup nodes of a Redis Cluster), not both',
          { field: 'cluster' },
        )
      }
      if (!Array.isArray(cluster) || cluster.length === 0) {
        throw new RewindError(
          'ERR_INVALID_ARGUMENT',
          'cluster must be a non-empty array of startup nodes ({ host, port } or redis:// URLs)',
          { field: 'cluster' },
        )
      }
      client = new Cluster([...cluster], clusterOptions(options, 'rewind'))
      client.on('error', report)
      this.owned = true
    } else if (redis === undefined || typeof redis === 'string') {
      client = new Redis(redis ?? DEFAULT_REDIS_URL, connectionOptions(options, 'rewind'))
      // Without a listener ioredis prints every failed connection attempt as an unhandled error.
      client.on('error', report)
      this.owned = true
    } else if (isClient(redis)) {
      client = redis
      this.owned = false
    } else {
      throw new RewindError(
        'ERR_INVALID_ARGUMENT',
        `redis must be a connection URL or an ioredis client, got ${redis === null ? 'null' : typeof redis}`,
        { field: 'redis' },
      )
    }
    this.client = defineScripts(client)
    this.cluster = (client as { isCluster?: boolean }).isCluster === true ? (client as Cluster) : undefined
    this.everReady = client.status === 'ready'
    client.on('ready', this.onReady)
  }

  /**
   * Runs `send` once the client is ready. Rejects with `fail(cause)` when Redis is known to be
   * unreachable (at once), when no reply comes within `commandTimeout`, or when the store closes.
   * On the first connection it waits for it to complete, within the same timeout.
   */
  run<T>(send: (client: ScriptedRedis) => Promise<T>, fail: (cause: unknown) => Error): Promise<T> {
    const client = this.client
    if (this.closed) return Promise.reject(fail(new Error('the store is closed')))
    return new Promise<T>((resolve, reject) => {
      let settled = false
      const finish = (): boolean => {
        if (settled) return false
        settled = true
        clearTimeout(timer)
        this.waiting.delete(start)
        this.pending.delete(abort)
        return true
      }
      const abort = (cause: unknown): void => {
        if (finish()) reject(fail(cause))
      }
      const start = (): void => {
        this.waiting.delete(start)
        send(client).then((value) => {
          if (finish()) resolve(value)
        }, abort)
      }
      const timer = setTimeout(
        () => abort(new Error(`no reply from Redis within ${this.options.commandTimeout} ms`)),
        this.options.commandTimeout,
      )
      this.pending.add(abort)
      const status = client.status
      if (status === 'ready') start()
      else if (!this.everReady && (status === 'wait' || status === 'connecting' || status === 'connect')) {
        // One shared listener: a burst of publishes at startup must not pile up listeners on the client.
        this.waiting.add(start)
        // Stryker disable next-line ConditionalExpression: connect() on a connecting or connected client only rejects (caught), in Redis and Cluster alike
        if (status === 'wait') client.connect().catch(() => {})
      } else {
        abort(new Error(`not connected to Redis (connection ${status})`))
      }
    })
  }

  /**
   * Opens a duplicate connection for blocking reads, with the store's reconnection backoff. The
   * caller owns it and must add an `error` listener and disconnect it.
   */
  duplicate(name: string): Redis {
    return (this.client as Redis).duplicate(connectionOptions(this.options, name))
  }

  /**
   * Opens a connection to one node of the cluster (for a shard's live tail), with the cluster's
   * `redisOptions` (credentials, TLS) and the store's reconnection backoff. The caller owns it.
   */
  connectNode(cluster: Cluster, host: string, port: number, name: string): Redis {
    return new Redis({
      ...cluster.options.redisOptions,
      ...connectionOptions(this.options, name),
      host,
      port,
      // Shard channels are not keys: ioredis would not prefix them anyway, and the tail names them in full.
      keyPrefix: undefined,
    })
  }

  /** Rejects what is in flight and quits the client if the store opened it. */
  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    for (const abort of [...this.pending]) abort(new Error('the store was closed'))
    const client = this.client
    client.removeListener('ready', this.onReady)
    if (!this.owned) return
    if (client.status === 'ready') {
      let timer: NodeJS.Timeout | undefined
      await Promise.race([
        client.quit().catch(() => {}),
        new Promise<void>((resolve) => {
          timer = setTimeout(resolve, QUIT_TIMEOUT)
        }),
      ])
      clearTimeout(timer)
    }
    // Also cancels a pending reconnection, which QUIT alone does not while Redis is down.
    client.disconnect()
  }

  private readonly onReady = (): void => {
    this.everReady = true
    const waiting = [...this.waiting]
    this.waiting.clear()
    for (const start of waiting) start()
  }
}
