/**
 * The cluster's live tail when a master stops answering, drops its connections or a read fails, on
 * a real Redis Cluster of three masters started by this file, each shard connection going through a
 * proxy that can hold Redis's replies or reset connections: a silent connection is replaced once
 * (not once per check), a subscription that gets no answer is retried on a new connection, a
 * dropped connection is reported as it is and subscribes again, failed reads back off and retry
 * from where they stopped, and `close()` ends a pause at once and leaves no timer behind.
 */
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest'
import { eventually, sleep, waitUntil } from '../../../test/support/wait.js'
import { ReplyTimeout } from '../src/tail.js'
import { clusterForTests } from './helpers/cluster.js'
import {
  type ClusterTailHarness,
  type ClusterTailHarnessOptions,
  clusterTailOn,
} from './helpers/cluster-tail-harness.js'
import { ReplyProxy } from './helpers/reply-proxy.js'

const cluster = await clusterForTests('cluster tail faults')

describe.skipIf(cluster === undefined)('the live tail on Redis Cluster, under faults', () => {
  const ports = (cluster?.nodes ?? []).map(({ port }) => port)
  const open: ClusterTailHarness[] = []
  const proxies: ReplyProxy[] = []

  afterEach(async () => {
    vi.restoreAllMocks()
    for (const proxy of proxies) {
      proxy.release()
      proxy.restore()
    }
    await Promise.all(open.splice(0).map((t) => t.close()))
    await Promise.all(proxies.splice(0).map((proxy) => proxy.close()))
  })

  afterAll(async () => {
    await cluster?.close()
  })

  /** A tail whose shard connections go through a fresh proxy per master; `proxy(port)` is the master's. */
  async function throughProxies(options: ClusterTailHarnessOptions = {}) {
    const byPort = new Map<number, ReplyProxy>()
    for (const port of ports) {
      const proxy = await ReplyProxy.start(`redis://127.0.0.1:${port}`)
      proxies.push(proxy)
      byPort.set(port, proxy)
    }
    const t = clusterTailOn(cluster!, {
      replyTimeout: 1000,
      expectReports: true,
      via: (port) => Number(new URL(byPort.get(port)!.url).port),
      ...options,
    })
    open.push(t)
    return { ...t, proxy: (port: number) => byPort.get(port)! }
  }

  /** What the tail reported that is Rewind's own word (not a connection's error passed on). */
  const ownReports = (t: ClusterTailHarness): Error[] =>
    (t.reported as Error[]).filter((error) => (error as { code?: string }).code === 'ERR_STORE_UNAVAILABLE')

  const timers = (): number => process.getActiveResourcesInfo().filter((kind) => kind === 'Timeout').length

  it('replaces a connection that stops answering its ping once, not once per check, and reads what it missed', async () => {
    const t = await throughProxies({ blockMs: 100 })
    const port = ports[0]!
    const [name] = await t.streamsOn(port, 'silent', 1)
    t.follow(name!)
    await eventually(async () => (await t.subscribers(name!)) === 1, 'the subscription')
    const connection = t.connections[0]!.connection
    const ping = connection.ping.bind(connection) as () => Promise<string>
    let pings = 0
    connection.ping = (() => {
      pings++
      return ping()
    }) as typeof connection.ping
    // Checked every 100 ms, answered each time.
    await waitUntil(() => pings >= 3, 'three pings answered')
    pings = 0
    t.proxy(port).hold()
    // Announced to a connection whose replies are held: the announcement is lost with it.
    const id = await t.append(name!, '', '"while silent"')
    await waitUntil(() => t.reported.length > 0, 'the ping to time out')
    // Ten checks came while the ping waited: none sent another. The new connection waits for its
    // own replies.
    expect(pings).toBeLessThanOrEqual(1)
    await sleep(1200)
    expect(t.reported).toHaveLength(1)
    const [report] = t.reported as Error[]
    expect(report).toMatchObject({ code: 'ERR_STORE_UNAVAILABLE' })
    expect(report!.message).toBe(
      `the Redis live tail's connection to 127.0.0.1:${port} stopped answering (no reply within 1000 ms); it reconnects and reads what it missed`,
    )
    expect(report!.cause).toBeInstanceOf(ReplyTimeout)
    expect(t.proxy(port).accepted).toBe(2)
    expect(t.delivered(name!)).toEqual([])
    t.proxy(port).release()
    await waitUntil(() => t.delivered(name!).length === 1, 'the entry missed while Redis was silent')
    expect(t.delivered(name!)).toEqual([id])
    expect(t.reported).toHaveLength(1)
  })

  it('retries on a new connection a subscription that gets no answer, and reads both streams of the master', async () => {
    const t = await throughProxies()
    const port = ports[1]!
    const [first, second] = await t.streamsOn(port, 'unanswered', 2)
    t.follow(first!)
    await eventually(async () => (await t.subscribers(first!)) === 1, 'the first subscription')
    t.proxy(port).hold()
    const firstId = await t.append(first!, '', '"announced while held"')
    const secondId = await t.append(second!, '', '"before its subscription"', false)
    t.follow(second!)
    await waitUntil(() => t.reported.length > 0, 'the subscription to time out')
    const [report] = t.reported as Error[]
    expect(report).toMatchObject({ code: 'ERR_STORE_UNAVAILABLE' })
    expect(report!.message).toBe(
      `the Redis live tail could not subscribe on 127.0.0.1:${port} (no reply within 1000 ms); it reconnects and subscribes again`,
    )
    expect(report!.cause).toBeInstanceOf(ReplyTimeout)
    await waitUntil(() => t.proxy(port).accepted === 2, 'a new connection')
    t.proxy(port).release()
    await waitUntil(() => t.batches.length === 2, 'both streams')
    expect(t.delivered(first!)).toEqual([firstId])
    expect(t.delivered(second!)).toEqual([secondId])
    expect(t.reported).toHaveLength(1)
  })

  it('lets go, without a word, of a subscription that fails after its stream was unfollowed', async () => {
    const t = await throughProxies()
    const port = ports[2]!
    const [kept, gone] = await t.streamsOn(port, 'letgo', 2)
    t.follow(kept!)
    await eventually(async () => (await t.subscribers(kept!)) === 1, 'the first subscription')
    t.proxy(port).hold()
    t.follow(gone!)
    t.tail.remove(gone!)
    // The subscription of `gone` times out (1 s): nothing is followed through it any more.
    await sleep(1500)
    expect(t.reported).toEqual([])
    expect(t.proxy(port).accepted).toBe(1)
    t.proxy(port).release()
    const id = await t.append(kept!, '', '"still followed"')
    await waitUntil(() => t.delivered(kept!).length === 1, 'the stream still followed')
    expect(t.batches).toEqual([[kept, [id]]])
  })

  it('passes on a dropped connection as it is, subscribes again once it reconnects, and takes nothing cut short for silence', async () => {
    // A ping and a subscription are in flight when the connection drops: ioredis leaves them
    // unsettled, and their timeouts (1 s) come after the connection was replaced.
    const t = await throughProxies({ blockMs: 100 })
    const port = ports[0]!
    const [first, second] = await t.streamsOn(port, 'dropped', 2)
    t.follow(first!)
    await eventually(async () => (await t.subscribers(first!)) === 1, 'the first subscription')
    t.proxy(port).hold()
    const secondId = await t.append(second!, '', '"before its subscription"', false)
    t.follow(second!)
    await sleep(300)
    t.proxy(port).reset()
    t.proxy(port).release()
    await waitUntil(() => t.reported.length > 0, 'the reset')
    const firstId = await t.append(first!, '', '"announced while down"')
    t.proxy(port).restore()
    await waitUntil(() => t.batches.length === 2, 'both streams after the reconnection')
    expect(t.delivered(first!)).toEqual([firstId])
    expect(t.delivered(second!)).toEqual([secondId])
    const accepted = t.proxy(port).accepted
    await sleep(1500)
    // Only the connection's own errors, as ioredis gave them, and no needless reconnection.
    for (const error of t.reported) expect(error).toMatchObject({ code: 'ECONNRESET' })
    expect(t.proxy(port).accepted).toBe(accepted)
    // Subscribed again: an announcement wakes it.
    const live = await t.append(first!, firstId, '"live"')
    await waitUntil(() => t.delivered(first!).length === 2, 'an announced entry')
    expect(t.delivered(first!)).toEqual([firstId, live])
    // And checked again: the new connection falling silent is noticed as the first one would be.
    const before = t.reported.length
    t.proxy(port).hold()
    await waitUntil(() => t.reported.length > before, 'the new connection to be found silent', 5000)
    expect((t.reported[before] as Error).message).toMatch(/ stopped answering \(no reply within 1000 ms\)/)
  })

  it('ignores an announcement that arrives after its stream was unfollowed', async () => {
    const t = await throughProxies()
    const port = ports[1]!
    const [kept, gone] = await t.streamsOn(port, 'late-announcement', 2)
    const [keptFirst] = await t.backlog(kept!, 1)
    const [goneFirst] = await t.backlog(gone!, 1)
    t.follow(kept!)
    t.follow(gone!)
    // Subscribed, and read after subscribing: nothing of either is in flight any more.
    await waitUntil(() => t.batches.length === 2, 'the reads after subscribing')
    // Redis sends the announcement before it is told to unsubscribe; the tail reads it after.
    t.proxy(port).hold()
    await t.append(gone!, goneFirst!, '"announced"')
    t.tail.remove(gone!)
    t.proxy(port).release()
    const id = await t.append(kept!, keptFirst!, '"still followed"')
    await waitUntil(() => t.delivered(kept!).length === 2, 'the stream still followed')
    await sleep(100)
    expect(t.delivered(kept!)).toEqual([keptFirst, id])
    expect(t.delivered(gone!)).toEqual([goneFirst])
    expect(t.reported).toEqual([])
  })

  it('reports a subscription Redis refuses, keeps the connection, and subscribes once Redis allows it', async () => {
    // A user the ACL denies SSUBSCRIBE, on every master.
    const user = `rewind-nosub-${process.pid}`
    const acl = (...rules: string[]) =>
      Promise.all(ports.map((port) => cluster!.node(port).call('ACL', 'SETUSER', user, ...rules)))
    await acl('on', 'nopass', '~*', '&*', '+@all', '-ssubscribe')
    try {
      const t = await throughProxies({ blockMs: 100, shardOptions: { username: user } })
      let refreshes = 0
      t.client.on('refresh', () => refreshes++)
      const port = ports[0]!
      const [name, gone] = await t.streamsOn(port, 'refused', 2)
      const [id] = await t.backlog(name!, 1)
      t.follow(name!)
      t.follow(gone!)
      await waitUntil(() => t.reported.length >= 3, 'the refusals')
      // Unfollowed while refused: not tried again.
      t.tail.remove(gone!)
      const refused = `the Redis live tail could not subscribe on 127.0.0.1:${port} (NOPERM`
      for (const report of ownReports(t)) {
        expect(report.message.startsWith(refused), report.message).toBe(true)
        expect(report.message.endsWith('; it refreshes the slot map and tries again every 100 ms')).toBe(true)
      }
      expect(ownReports(t)).toHaveLength(t.reported.length)
      expect(refreshes).toBeGreaterThan(0)
      expect(t.delivered(name!)).toEqual([])
      await acl('+ssubscribe')
      await waitUntil(() => t.delivered(name!).length === 1, 'the stream, once subscribed')
      expect(t.delivered(name!)).toEqual([id])
      await sleep(300)
      expect(await t.subscribers(gone!)).toBe(0)
      // Never taken for a connection that stopped answering: the one connection stayed.
      expect(t.proxy(port).accepted).toBe(1)
      const live = await t.append(name!, id!, '"announced"')
      await waitUntil(() => t.delivered(name!).length === 2, 'an announced entry')
      expect(t.delivered(name!)).toEqual([id, live])
    } finally {
      await Promise.all(ports.map((port) => cluster!.node(port).call('ACL', 'DELUSER', user)))
    }
  })

  it('backs off more after each failed read, and from the start again after one succeeds', async () => {
    // The largest delay each time: 80, 160, 320, 640 ms after the 1st, 2nd, 3rd, 4th failure.
    vi.spyOn(Math, 'random').mockReturnValue(0.999_999)
    let failing = 0
    const sent: number[] = []
    const t = await throughProxies({
      minReconnectDelay: 40,
      maxReconnectDelay: 10_000,
      read: (_args, send) => {
        sent.push(performance.now())
        if (failing === 0) return send()
        failing--
        return Promise.reject(new Error('LOADING Redis is loading the dataset in memory'))
      },
    })
    const [name] = await t.streamsOn(ports[1]!, 'backoff', 1)
    const ids = await t.backlog(name!, 3)
    failing = 4
    t.follow(name!)
    await waitUntil(() => t.delivered(name!).length === 3, 'the entries after four failed reads')
    expect(t.delivered(name!)).toEqual(ids)
    const gaps = sent.slice(1).map((at, i) => at - sent[i]!)
    expect(gaps).toHaveLength(4)
    for (const [i, least] of [80, 160, 320, 640].entries()) expect(gaps[i]).toBeGreaterThanOrEqual(least - 2)

    failing = 1
    const before = sent.length
    ids.push(await t.append(name!, ids[2]!, '"after a success"'))
    await waitUntil(() => t.delivered(name!).length === 4, 'the entry after one more failed read')
    expect(t.delivered(name!)).toEqual(ids)
    expect(sent.length - before).toBe(2)
    // The first failure since a success waits the first delay again, not the fifth (1280 ms).
    expect(sent[before + 1]! - sent[before]!).toBeLessThan(640)
    expect(t.reported.map((error) => (error as Error).message)).toEqual(
      Array(5).fill(
        'the Redis live tail failed (LOADING Redis is loading the dataset in memory); it retries and resumes where it stopped',
      ),
    )
    expect(ownReports(t)).toHaveLength(5)
    expect(ownReports(t)[0]!.cause).toMatchObject({
      message: 'LOADING Redis is loading the dataset in memory',
    })
  })

  it('ends a backoff pause at once on close', async () => {
    vi.spyOn(Math, 'random').mockReturnValue(0.999_999)
    let reads = 0
    const t = await throughProxies({
      minReconnectDelay: 5000,
      maxReconnectDelay: 60_000,
      read: () => {
        reads++
        return Promise.reject(new Error('LOADING Redis is loading the dataset in memory'))
      },
    })
    const [name] = await t.streamsOn(ports[2]!, 'pause', 1)
    await t.backlog(name!, 1)
    t.follow(name!)
    await waitUntil(() => t.reported.length === 1, 'the first failed read')
    const closing = performance.now()
    await t.tail.close()
    expect(performance.now() - closing).toBeLessThan(1000)
    expect(reads).toBe(1)
  })

  it('does not report, nor pause for, a read that fails after close', async () => {
    let fail: (() => void) | undefined
    const t = await throughProxies({
      minReconnectDelay: 5000,
      maxReconnectDelay: 5000,
      read: () =>
        new Promise((_resolve, reject) => {
          fail = () => reject(new Error('the connection was closed'))
        }),
    })
    const [name] = await t.streamsOn(ports[0]!, 'late', 1)
    await t.backlog(name!, 1)
    t.follow(name!)
    await waitUntil(() => fail !== undefined, 'a read in flight')
    const closing = t.tail.close()
    fail!()
    const started = performance.now()
    await closing
    expect(performance.now() - started).toBeLessThan(1000)
    await sleep(100)
    expect(t.reads).toHaveLength(1)
    expect(t.reported).toEqual([])
  })

  it('reads nothing of a stream unfollowed before its subscription was answered', async () => {
    const t = await throughProxies()
    const port = ports[1]!
    const [kept, gone] = await t.streamsOn(port, 'unanswered-gone', 2)
    t.follow(kept!)
    await eventually(async () => (await t.subscribers(kept!)) === 1, 'the first subscription')
    await t.backlog(gone!, 1)
    t.proxy(port).hold()
    t.follow(gone!)
    t.tail.remove(gone!)
    t.proxy(port).release()
    await eventually(async () => (await t.subscribers(gone!)) === 0, 'the unsubscription')
    await sleep(100)
    expect(t.reads.filter((read) => read.includes(t.key(gone!)))).toEqual([])
    expect(t.batches).toEqual([])
    expect(t.reported).toEqual([])
  })

  it('clears the timer of every ping and subscription that was answered', async () => {
    const t = await throughProxies({ blockMs: 20, replyTimeout: 60_000 })
    const names = (await Promise.all(ports.map((port, i) => t.streamsOn(port, `timers${i}-`, 5)))).flat()
    const before = timers()
    for (const name of names) t.follow(name)
    await eventually(
      async () => (await Promise.all(names.map(t.subscribers))).every((n) => n === 1),
      'the subscriptions',
    )
    // Fifteen subscriptions, and a ping per master every 20 ms for half a second.
    await sleep(500)
    expect(timers() - before).toBeLessThan(10)
    // Subscriptions that fail: a master's connection closed with ten of them in flight.
    const port = ports[0]!
    const more = await t.streamsOn(port, 'timers-more-', 10)
    t.proxy(port).hold()
    for (const name of more) t.follow(name)
    await sleep(50)
    for (const name of [...names, ...more]) t.tail.remove(name)
    await sleep(50)
    expect(timers() - before).toBeLessThan(10)
    expect(t.reported).toEqual([])
  })
})
