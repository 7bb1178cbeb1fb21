/**
 * A single-server {@link Tail} on its own, on a real Redis, without a store around it: what it
 * delivers (in batches), resets and reports, the connections it opened and the commands it sent on
 * them, and a plain connection to the server for appends and `CLIENT UNBLOCK`.
 */
import { Redis, type RedisOptions } from 'ioredis'
import { expect } from 'vitest'
import { EventCache, type RedisEvent } from '../../src/events.js'
import { Tail, type TailOptions } from '../../src/tail.js'
import { deleteKeys, uniquePrefix } from './redis-server.js'

/** What a test may change of the tail's options; `url` is where its blocking connection goes. */
export interface HarnessOptions
  extends Partial<
    Pick<TailOptions, 'blockMs' | 'replyTimeout' | 'minReconnectDelay' | 'maxReconnectDelay' | 'unblock'>
  > {
  /** Where the tail connects (a proxy in front of `server`, say). @defaultValue the server's URL */
  readonly url?: string
  /** Errors the test expects: `close` then only checks that nothing else was reported. */
  readonly expectReports?: boolean
  /** Options of the connections the tail opens (ioredis's defaults otherwise). */
  readonly redisOptions?: RedisOptions
  /** Called with each connection the tail opens, before the tail sees it. */
  readonly onConnect?: (connection: Redis) => void
  /** Called with each command as the tail sends it, once the tail counts it as in flight. */
  readonly onSend?: (command: string[]) => void
}

export type Harness = ReturnType<typeof tailOn>

/**
 * A tail on the Redis at `serverUrl` (blocking reads of a minute by default, a reply timeout of 5 s,
 * reconnects within 20 to 40 ms), under a fresh key prefix. `close` ends it, deletes its keys and,
 * unless `expectReports`, checks that it reported nothing.
 */
export function tailOn(serverUrl: string, options: HarnessOptions = {}) {
  const batches: [string, string[]][] = []
  const resets: string[] = []
  const reported: unknown[] = []
  const connections: Redis[] = []
  /** Every command the tail sent on its connections, in order. */
  const sent: string[][] = []
  let answered = 0
  const admin = new Redis(serverUrl)
  const cache = new EventCache({ deserialize: JSON.parse, report: (error) => reported.push(error) })
  const tail = new Tail({
    toEvent: (key, entry) => cache.event(key, entry),
    deliver: (stream, events: readonly RedisEvent[]) => {
      batches.push([stream, events.map((event) => event.id)])
    },
    reset: (stream) => resets.push(stream),
    report: (error) => reported.push(error),
    blockMs: options.blockMs ?? 60_000,
    replyTimeout: options.replyTimeout ?? 5000,
    minReconnectDelay: options.minReconnectDelay ?? 20,
    maxReconnectDelay: options.maxReconnectDelay ?? 40,
    connect: () => {
      const connection = new Redis(options.url ?? serverUrl, options.redisOptions ?? {})
      connections.push(connection)
      const call = connection.call.bind(connection) as (...args: unknown[]) => Promise<unknown>
      connection.call = ((...args: unknown[]) => {
        const command = args.map(String)
        sent.push(command)
        options.onSend?.(command)
        const reply = call(...args)
        // Counted before the tail sees the reply: by the next turn of the event loop it has.
        reply.then(
          () => answered++,
          () => answered++,
        )
        return reply
      }) as typeof connection.call
      options.onConnect?.(connection)
      return connection
    },
    unblock: options.unblock ?? ((clientId) => admin.call('CLIENT', 'UNBLOCK', clientId) as Promise<number>),
  })
  const prefix = uniquePrefix('tail')
  /** Appends an entry that records `prev` as its predecessor; resolves with its id. */
  const append = async (key: string, prev: string, data: string): Promise<string> =>
    (await admin.xadd(key, '*', 'prev', prev, 'data', data)) as string
  const close = async (): Promise<void> => {
    await tail.close()
    await deleteKeys(admin, prefix)
    await admin.quit()
    if (!options.expectReports) expect(reported).toEqual([])
  }
  return {
    tail,
    batches,
    resets,
    reported,
    connections,
    sent,
    /** The blocking reads the tail sent so far. */
    reads: () => sent.filter(([name]) => name === 'XREAD'),
    /** Whether every command the tail sent has been answered (or has failed). */
    settled: () => answered === sent.length,
    admin,
    append,
    key: (name: string) => `${prefix}{${name}}`,
    close,
  }
}
