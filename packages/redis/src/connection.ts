/**
 * The command connection: opening (or adopting) ioredis clients, and running commands so that they
 * fail fast and typed while Redis is unreachable instead of waiting in ioredis's offline queue.
 */
import { RewindError } from '@rewind/core'
import { Redis, type RedisOptions } from 'ioredis'
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

/** Whether `value` looks like an ioredis client (duck-typed, so two copies of ioredis interoperate). */
function isClient(value: unknown): value is Redis {
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
  /** Whether the store opened this client (and so closes it). */
  readonly owned: boolean
  /** Set once the client has been ready; from then on, not being ready means Redis is unreachable. */
  private everReady: boolean
  private readonly pending = new Set<(cause: unknown) => void>()
  /** Commands sent before the first connection was ready, started when it is. */
  private readonly waiting = new Set<() => void>()
  private closed = false

  constructor(
    redis: string | Redis | undefined,
    private readonly options: ResolvedOptions,
    report: (error: unknown) => void,
  ) {
    let client: Redis
    if (redis === undefined || typeof redis === 'string') {
      client = new Redis(redis ?? DEFAULT_REDIS_URL, connectionOptions(options, 'rewind'))
      // Without a listener ioredis prints every failed connection attempt as an unhandled error.
      client.on('error', report)
      this.owned = true
    } else if (isClient(redis)) {
      if ((redis as { isCluster?: boolean }).isCluster === true) {
        throw new RewindError(
          'ERR_INVALID_ARGUMENT',
          'Redis Cluster clients are not supported: give a client of a single Redis server (or a URL)',
          { field: 'redis' },
        )
      }
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
    return this.client.duplicate(connectionOptions(this.options, name))
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
