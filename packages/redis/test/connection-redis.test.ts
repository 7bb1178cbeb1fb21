/**
 * The command connection on a real Redis: the options of the clients it opens (read back from
 * ioredis), that a command sent before the first connection is ready waits for it, that one sent
 * once Redis became unreachable fails at once and typed, the reply timeout, what `close()` does to
 * commands in flight and to the client (QUIT within a bound for a client it opened, nothing for an
 * adopted one). A proxy in front of Redis holds its replies where a test needs a silent Redis.
 */
import { Redis } from 'ioredis'
import { afterEach, describe, expect, it } from 'vitest'
import { freePort } from '../../../test/support/ports.js'
import { waitUntil, within } from '../../../test/support/wait.js'
import { CommandConnection } from '../src/connection.js'
import { type RedisStoreOptions, resolveOptions } from '../src/options.js'
import { redisForTests } from './helpers/redis-server.js'
import { ReplyProxy } from './helpers/reply-proxy.js'

const server = await redisForTests('command connection')

/** Failures as a command's caller sees them, each cause recorded. */
function failures() {
  const causes: string[] = []
  const fail = (cause: unknown) => {
    causes.push((cause as Error).message)
    return new Error(`failed: ${(cause as Error).message}`)
  }
  return { causes, fail }
}

/** The message `run` rejects with, or `undefined` when it resolved. */
function rejection(promise: Promise<unknown>): Promise<string | undefined> {
  return promise.then(
    () => undefined,
    (error: unknown) => (error as Error).message,
  )
}

describe.skipIf(server === undefined)('CommandConnection on a real Redis', () => {
  const connections: CommandConnection[] = []
  const proxies: ReplyProxy[] = []
  const clients: Redis[] = []
  afterEach(async () => {
    for (const proxy of proxies) proxy.release()
    await Promise.all(connections.splice(0).map((connection) => connection.close()))
    for (const client of clients.splice(0)) client.disconnect()
    await Promise.all(proxies.splice(0).map((proxy) => proxy.close()))
  })

  /** A connection to `redis` (a URL or a client) with `options`, and what it reports. */
  function open(
    redis: string | Redis | undefined,
    options: RedisStoreOptions = {},
    cluster?: { host: string; port: number }[],
  ) {
    const reported: unknown[] = []
    const connection = new CommandConnection(redis, cluster, resolveOptions(options), (error) =>
      reported.push(error),
    )
    connections.push(connection)
    return { connection, reported }
  }

  async function proxy(): Promise<ReplyProxy> {
    const started = await ReplyProxy.start(server!.url)
    proxies.push(started)
    return started
  }

  /** A connection of its own through a proxy, ready, whose replies the proxy then holds. */
  async function silentOnceReady(options: RedisStoreOptions) {
    const silent = await proxy()
    const { connection } = open(silent.url, options)
    await waitUntil(() => connection.client.status === 'ready', 'the client to be ready')
    silent.hold()
    return { silent, connection, ...failures() }
  }

  it('opens its client with no offline queue, no resending, its name and the store backoff, and quits it', async () => {
    const { connection } = open(server!.url, { minReconnectDelay: 250, maxReconnectDelay: 250 })
    expect(connection.owned).toBe(true)
    const options = (connection.client as Redis).options
    expect(options.enableOfflineQueue).toBe(false)
    expect(options.autoResendUnfulfilledCommands).toBe(false)
    expect(options.connectionName).toBe('rewind')
    expect(options.retryStrategy?.(5)).toBe(250)
    const tail = connection.duplicate('rewind-tail')
    try {
      expect(tail.options.connectionName).toBe('rewind-tail')
      expect(tail.options.enableOfflineQueue).toBe(false)
      expect(tail.options.autoResendUnfulfilledCommands).toBe(false)
      expect(tail.options.retryStrategy?.(5)).toBe(250)
      await waitUntil(() => tail.status === 'ready', 'the duplicate to be ready')
    } finally {
      tail.disconnect()
    }
    const { causes, fail } = failures()
    expect(await connection.run((client) => client.ping(), fail)).toBe('PONG')
    await connection.close()
    await waitUntil(() => connection.client.status === 'end', 'the connection to end', 2000)
    // A command that got its reply is not failed later (not by its timer, not by close).
    expect(causes).toEqual([])
    await connection.close()
  })

  it('opens a cluster client with the same fail-fast rules and backoff, and reports its errors', async () => {
    const { connection, reported } = open(undefined, { minReconnectDelay: 250, maxReconnectDelay: 250 }, [
      { host: '127.0.0.1', port: await freePort() },
    ])
    expect(connection.owned).toBe(true)
    const options = connection.cluster!.options
    expect(options.enableOfflineQueue).toBe(false)
    expect(options.lazyConnect).toBe(false)
    expect(options.clusterRetryStrategy?.(5)).toBe(250)
    expect(options.redisOptions).toMatchObject({
      connectionName: 'rewind',
      autoResendUnfulfilledCommands: false,
    })
    await waitUntil(() => reported.length > 0, 'an error reported for the unreachable cluster')
  })

  it('fails a command at once, typed, while Redis is unreachable before it was ever ready', async () => {
    const { connection, reported } = open(`redis://127.0.0.1:${await freePort()}`, {
      minReconnectDelay: 2000,
      maxReconnectDelay: 2000,
      commandTimeout: 5000,
    })
    await waitUntil(() => connection.client.status === 'reconnecting', 'the first attempt to fail')
    expect(reported.length).toBeGreaterThan(0)
    const { causes, fail } = failures()
    const message = await within(
      rejection(connection.run((client) => client.ping(), fail)),
      'the refusal',
      1000,
    )
    expect(message).toBe('failed: not connected to Redis (connection reconnecting)')
    expect(causes).toHaveLength(1)
  })

  it('holds commands sent before the first connection is ready, and runs them once it is', async () => {
    const silent = await proxy()
    silent.hold()
    const { connection } = open(silent.url)
    const { causes, fail } = failures()
    expect(connection.client.status).toBe('connecting')
    const first = connection.run((client) => client.ping('first'), fail)
    // Connected, its ready check unanswered.
    await waitUntil(() => connection.client.status === 'connect', 'the connection to the proxy')
    const second = connection.run((client) => client.ping('second'), fail)
    silent.release()
    expect(await Promise.all([first, second])).toEqual(['first', 'second'])
    expect(causes).toEqual([])
  })

  it('closes at once a connection that never became ready, without waiting on a QUIT', async () => {
    const silent = await proxy()
    silent.hold()
    const { connection } = open(silent.url)
    await waitUntil(() => connection.client.status === 'connect', 'the connection to the proxy')
    const started = Date.now()
    await within(connection.close(), 'close')
    expect(Date.now() - started).toBeLessThan(900)
    await waitUntil(() => connection.client.status === 'end', 'the connection to end', 2000)
  })

  it('connects an adopted lazy client for the first command, and leaves it open, without its listener', async () => {
    const client = new Redis(server!.url, { lazyConnect: true })
    clients.push(client)
    const listening = client.listenerCount('ready')
    const { connection } = open(client)
    expect(connection.owned).toBe(false)
    const { fail } = failures()
    expect(await connection.run((c) => c.ping(), fail)).toBe('PONG')
    await connection.close()
    expect(client.status).toBe('ready')
    expect(client.listenerCount('ready')).toBe(listening)
  })

  it('fails a command at once while a client that was ready reconnects, adopted or its own', async () => {
    for (const adopt of [true, false]) {
      const silent = await proxy()
      let redis: string | Redis = silent.url
      if (adopt) {
        const client = new Redis(silent.url, { retryStrategy: () => 20 })
        clients.push(client)
        await waitUntil(() => client.status === 'ready', 'the adopted client to be ready')
        redis = client
      }
      const { connection } = open(redis, { minReconnectDelay: 20, maxReconnectDelay: 20 })
      await waitUntil(() => connection.client.status === 'ready', 'the client to be ready')
      silent.hold()
      connection.client.disconnect(true)
      await waitUntil(() => connection.client.status === 'connect', 'the reconnection to the proxy')
      const { fail } = failures()
      const message = await within(rejection(connection.run((c) => c.ping(), fail)), 'the refusal', 1000)
      expect(message).toBe('failed: not connected to Redis (connection connect)')
    }
  })

  it('fails a command that gets no reply after commandTimeout, once, whatever comes later', async () => {
    const { silent, connection, causes, fail } = await silentOnceReady({ commandTimeout: 300 })
    let replied: Promise<unknown> | undefined
    const message = await within(
      rejection(
        connection.run((client) => {
          const reply = client.call('NO-SUCH-COMMAND')
          replied = reply.catch(() => {})
          return reply
        }, fail),
      ),
      'the timeout',
    )
    expect(message).toBe('failed: no reply from Redis within 300 ms')
    // The error reply, once it comes, fails nothing again.
    silent.release()
    await replied
    await new Promise((resolve) => setImmediate(resolve))
    expect(causes).toEqual(['no reply from Redis within 300 ms'])
  })

  it('at close fails what is in flight, lets QUIT take up to a second, then drops the connection', async () => {
    const { connection, causes, fail } = await silentOnceReady({ commandTimeout: 10_000 })
    const inFlight = rejection(connection.run((client) => client.ping(), fail))
    const started = Date.now()
    const closing = within(connection.close(), 'close')
    // A second close while the first waits for QUIT is a no-op: it sends no QUIT of its own to wait for.
    await connection.close()
    expect(Date.now() - started).toBeLessThan(900)
    await closing
    const took = Date.now() - started
    expect(await inFlight).toBe('failed: the store was closed')
    expect(causes).toEqual(['the store was closed'])
    expect(took).toBeGreaterThanOrEqual(900)
    expect(took).toBeLessThan(5000)
    await waitUntil(() => connection.client.status === 'end', 'the connection to end', 2000)
  })
})
