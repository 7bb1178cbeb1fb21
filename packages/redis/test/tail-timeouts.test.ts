/**
 * The single-server tail against a Redis that stops answering with its socket open (a freeze, a
 * half-open connection), held by a proxy in front of a real Redis: a reply that never comes fails
 * after its bound (`blockMs` + `replyTimeout` for a blocking read, `replyTimeout` for any other
 * command), the silent connection is replaced, and the tail resumes where it stopped.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { sleep, waitUntil } from '../../../test/support/wait.js'
import { ReplyTimeout } from '../src/tail.js'
import { redisForTests } from './helpers/redis-server.js'
import { ReplyProxy } from './helpers/reply-proxy.js'
import { type HarnessOptions, tailOn } from './helpers/tail-harness.js'

const server = await redisForTests('tail timeouts')

/** The message the tail reports for a command that got no reply within `ms`. */
const timedOut = (ms: number) =>
  `the Redis live tail failed (no reply within ${ms} ms); it retries and resumes where it stopped`

describe.skipIf(server === undefined)('the live tail against a Redis that stops answering', () => {
  const proxies: ReplyProxy[] = []
  afterEach(async () => {
    await Promise.all(proxies.splice(0).map((proxy) => proxy.close()))
  })

  /**
   * A tail connected through a fresh proxy, with a reply timeout of 1 s: short for a test, long
   * enough that a busy machine does not miss a reply that came.
   */
  async function throughProxy(options: HarnessOptions = {}) {
    const proxy = await ReplyProxy.start(server!.url)
    proxies.push(proxy)
    const t = tailOn(server!.url, { url: proxy.url, replyTimeout: 1000, expectReports: true, ...options })
    return { ...t, proxy }
  }

  it('gives up on a read after blockMs + replyTimeout, replaces the connection, and catches up', async () => {
    const t = await throughProxy({ blockMs: 100 })
    try {
      const key = t.key('s')
      t.tail.add('s', key, '0-0')
      const first = await t.append(key, '0-0', 'before')
      await waitUntil(() => t.batches.length === 1, 'the first delivery')
      t.proxy.hold()
      const second = await t.append(key, first, 'while Redis is silent')
      await waitUntil(() => t.reported.length > 0, 'the read to time out')
      const [failure] = t.reported as Error[]
      expect(failure!.message).toBe(timedOut(1100))
      expect(failure!.cause).toBeInstanceOf(ReplyTimeout)
      // The silent connection was dropped and a new one opened (its replies held as well, for now).
      await waitUntil(() => t.proxy.accepted === 2, 'a new connection')
      expect(t.batches).toEqual([['s', [first]]])
      t.proxy.release()
      await waitUntil(() => t.batches.length === 2, 'the delivery after Redis answers again')
      expect(t.batches).toEqual([
        ['s', [first]],
        ['s', [second]],
      ])
      expect(t.reported).toHaveLength(1)
      expect(t.resets).toEqual([])
    } finally {
      t.proxy.release()
      await t.close()
    }
  })

  it('waits for a connection that gets no reply to become ready, one listener at a time', async () => {
    const proxy = await ReplyProxy.start(server!.url)
    proxies.push(proxy)
    proxy.hold()
    const t = tailOn(server!.url, { url: proxy.url })
    try {
      const key = t.key('s')
      t.tail.add('s', key, '0-0')
      // Its ready check unanswered, the connection is not ready: the tail waits 40 ms at a time,
      // for the connection's 'ready' event too. A wait set before a sleep's timer ends before it.
      await sleep(100)
      const listening = t.connections[0]!.listenerCount('ready')
      await sleep(100)
      expect(t.connections[0]!.listenerCount('ready')).toBe(listening)
      proxy.release()
      const id = await t.append(key, '0-0', 'once ready')
      await waitUntil(() => t.batches.length === 1, 'the delivery once ready')
      expect(t.batches).toEqual([['s', [id]]])
    } finally {
      proxy.release()
      await t.close()
    }
  })

  it('gives up on a command that does not block after replyTimeout alone', async () => {
    // Replies are held from the moment the connection is ready: the tail's first command, CLIENT
    // ID, gets none. Reads block for a minute, so only the shorter bound can have ended it.
    const t = await throughProxy({
      onConnect: (connection) => connection.once('ready', () => proxies[0]!.hold()),
    })
    try {
      const key = t.key('s')
      t.tail.add('s', key, '0-0')
      await waitUntil(() => t.reported.length > 0, 'CLIENT ID to time out')
      expect((t.reported[0] as Error).message).toBe(timedOut(1000))
      expect(t.proxy.accepted).toBe(1)
      await waitUntil(() => t.proxy.accepted === 2, 'a new connection')
      t.proxy.release()
      const id = await t.append(key, '0-0', 'after')
      await waitUntil(() => t.batches.length === 1, 'the delivery after Redis answers again')
      expect(t.batches).toEqual([['s', [id]]])
      expect(t.reported).toHaveLength(1)
    } finally {
      t.proxy.release()
      await t.close()
    }
  })
})
