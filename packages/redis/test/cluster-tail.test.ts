/**
 * The cluster's live tail on its own, on a real Redis Cluster of three masters started by this
 * file: one connection per master that has followed streams, one `SSUBSCRIBE` per slot, entries
 * read after each subscription (appended before it, never announced), backlogs read in rounds of
 * `TAIL_BUDGET`, reads in flight for streams no longer followed dropped, streams rerouted when
 * their slot moves or the client's slot map was stale or empty, and nothing left after `close()`.
 */
import fc from 'fast-check'
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { eventually, sleep, waitUntil } from '../../../test/support/wait.js'
import { nodeAddress } from '../src/cluster-tail.js'
import { keySlot } from '../src/slots.js'
import { TAIL_BUDGET } from '../src/tail.js'
import { clusterForTests } from './helpers/cluster.js'
import {
  type ClusterTailHarness,
  type ClusterTailHarnessOptions,
  clusterTailOn,
} from './helpers/cluster-tail-harness.js'

const cluster = await clusterForTests('cluster tail')

describe('a node of the slot map', () => {
  it('splits into host and port at the last colon, IPv6 addresses included', () => {
    expect(nodeAddress('127.0.0.1:7001')).toEqual(['127.0.0.1', 7001])
    expect(nodeAddress('::1:7001')).toEqual(['::1', 7001])
    const host = fc.oneof(fc.ipV4(), fc.ipV6(), fc.domain())
    fc.assert(
      fc.property(host, fc.integer({ min: 1, max: 65_535 }), (address, port) => {
        expect(nodeAddress(`${address}:${port}`)).toEqual([address, port])
      }),
    )
  })
})

describe.skipIf(cluster === undefined)('the live tail on Redis Cluster', () => {
  const ports = (cluster?.nodes ?? []).map(({ port }) => port)
  const open: ClusterTailHarness[] = []

  afterEach(async () => {
    await Promise.all(open.splice(0).map((t) => t.close()))
  })

  afterAll(async () => {
    await cluster?.close()
  })

  function tailOn(options: ClusterTailHarnessOptions = {}): ClusterTailHarness {
    const t = clusterTailOn(cluster!, options)
    open.push(t)
    return t
  }

  /** Timers of this process now (the tail's own among them). */
  const timers = (): number => process.getActiveResourcesInfo().filter((kind) => kind === 'Timeout').length

  it('opens one connection per master that has streams, to that master, and delivers each announced entry', async () => {
    const t = tailOn()
    const names = (await Promise.all(ports.map((port, i) => t.streamsOn(port, `s${i}-`, 2)))).flat()
    for (const name of names) t.follow(name)
    await eventually(
      async () => (await Promise.all(names.map(t.subscribers))).every((n) => n === 1),
      'the subscriptions',
    )
    // One connection per master, whatever the number of streams on it, to the master's own address.
    expect(t.connections.map(({ host, port }) => [host, port]).sort()).toEqual(
      ports.map((port) => ['127.0.0.1', port]).sort(),
    )
    expect(await t.connectionsByMaster()).toEqual([1, 1, 1])
    const ids = new Map<string, string>()
    for (const name of names) ids.set(name, await t.append(name, '', `"${name}"`))
    await waitUntil(() => t.batches.length === names.length, 'a delivery per stream')
    for (const name of names) expect(t.delivered(name)).toEqual([ids.get(name)])
    expect(t.resets).toEqual([])
  })

  it('reads after subscribing what was appended before, unannounced, on a new connection and on a ready one', async () => {
    const t = tailOn()
    const [first, second] = await t.streamsOn(ports[0]!, 'before', 2)
    const firstIds = await t.backlog(first!, 3)
    t.follow(first!)
    await waitUntil(
      () => t.delivered(first!).length === 3,
      'the entries appended before the first subscription',
    )
    expect(t.delivered(first!)).toEqual(firstIds)
    // The master's connection is ready now: following another stream there subscribes at once.
    const secondIds = await t.backlog(second!, 2)
    t.follow(second!)
    await waitUntil(
      () => t.delivered(second!).length === 2,
      'the entries appended before the second subscription',
    )
    expect(t.delivered(second!)).toEqual(secondIds)
    expect(t.connections).toHaveLength(1)
  })

  it('subscribes and reads one slot at a time, and streams of one slot together', async () => {
    const t = tailOn()
    // Two slots on one master, two streams in each (a hash tag keeps a pair in one slot).
    const [a, b] = await t.streamsOn(ports[1]!, 'slot', 2)
    const names = [`{${a}}x`, `{${a}}y`, `{${b}}x`, `{${b}}y`]
    expect(new Set(names.map((name) => keySlot(t.fullKey(name)))).size).toBe(2)
    for (const name of names) await t.backlog(name, 1)
    for (const name of names) t.follow(name)
    await waitUntil(() => t.batches.length === 4, 'every stream')
    // Redis refuses channels or keys of different slots in one command (CROSSSLOT): nothing failed.
    const keysOf = (read: (string | number)[]) => read.slice(4, 4 + (read.length - 4) / 2)
    for (const read of t.reads) expect(new Set(keysOf(read).map((key) => keySlot(String(key)))).size).toBe(1)
    // Both slots' streams were subscribed in the same turn: each pair was read in one XREAD.
    expect(t.reads.map((read) => keysOf(read).length).sort()).toEqual([2, 2])
  })

  it('ignores a stream it already follows, and a stream never followed', async () => {
    const t = tailOn()
    const [name] = await t.streamsOn(ports[2]!, 'twice', 1)
    const ids = await t.backlog(name!, 2)
    t.follow(name!)
    t.follow(name!, ids[1])
    expect(t.tail.has(name!)).toBe(true)
    expect(t.tail.has('never')).toBe(false)
    t.tail.remove('never')
    await waitUntil(() => t.delivered(name!).length === 2, 'the entries after the first start')
    expect(t.delivered(name!)).toEqual(ids)
  })

  it('unsubscribes a stream it stops following, closes a master connection with its last stream, opens it again', async () => {
    const t = tailOn()
    const [kept, dropped] = await t.streamsOn(ports[0]!, 'leave', 2)
    t.follow(kept!)
    t.follow(dropped!)
    await eventually(async () => (await t.subscribers(dropped!)) === 1, 'the subscription')
    t.tail.remove(dropped!)
    expect(t.tail.has(dropped!)).toBe(false)
    await eventually(async () => (await t.subscribers(dropped!)) === 0, 'the unsubscription')
    expect(await t.subscribers(kept!)).toBe(1)
    await t.append(dropped!, '', '"unfollowed"')
    const id = await t.append(kept!, '', '"followed"')
    await waitUntil(() => t.batches.length === 1, 'the followed stream')
    await sleep(100)
    expect(t.batches).toEqual([[kept, [id]]])

    t.tail.remove(kept!)
    await eventually(async () => (await t.connectionsByMaster())[0] === 0, 'the connection to close')
    expect(await t.subscribers(kept!)).toBe(0)
    t.follow(kept!, id)
    expect(t.connections).toHaveLength(2)
    await eventually(async () => (await t.subscribers(kept!)) === 1, 'a new subscription')
    const again = await t.append(kept!, id, '"again"')
    await waitUntil(() => t.delivered(kept!).length === 2, 'the stream followed again')
    expect(t.delivered(kept!)).toEqual([id, again])
  })

  it(`reads a backlog in rounds of ${TAIL_BUDGET} entries, shared by the streams read together`, async () => {
    const t = tailOn()
    const [tag] = await t.streamsOn(ports[1]!, 'budget', 1)
    const alone = `{${tag}}alone`
    const ids = await t.backlog(alone, 2500)
    t.follow(alone)
    await waitUntil(() => t.delivered(alone).length === 2500, 'the whole backlog')
    expect(t.delivered(alone)).toEqual(ids)
    expect(t.batches.map(([, batch]) => batch.length)).toEqual([1000, 1000, 500])

    // Three streams of one slot, subscribed and read together (a new connection subscribes them in
    // one command): a third of the budget each.
    const u = tailOn()
    const three = ['a', 'b', 'c'].map((suffix) => `{${tag}}${suffix}`)
    for (const name of three) await u.backlog(name, 400)
    for (const name of three) u.follow(name)
    await waitUntil(() => three.every((name) => u.delivered(name).length === 400), 'the three backlogs')
    const share = Math.floor(TAIL_BUDGET / 3)
    for (const name of three) {
      expect(u.batches.filter(([stream]) => stream === name).map(([, batch]) => batch.length)).toEqual([
        share,
        400 - share,
      ])
    }
  })

  it(`reads at most ${TAIL_BUDGET} streams in one round, one entry each`, async () => {
    const t = tailOn()
    const [tag] = await t.streamsOn(ports[2]!, 'many', 1)
    const names = Array.from({ length: TAIL_BUDGET + 1 }, (_, i) => `{${tag}}${i}`)
    for (const name of names) await t.backlog(name, 1)
    for (const name of names) t.follow(name)
    await waitUntil(() => t.batches.length === names.length, 'every stream', 20_000)
    // Each stream filled its share (one entry), so it is read again, and then has nothing new.
    const streamsRead = t.reads.map((read) => (read.length - 4) / 2)
    expect(streamsRead[0]).toBe(TAIL_BUDGET)
    expect(Math.max(...streamsRead)).toBe(TAIL_BUDGET)
    expect(t.reads[0]![2]).toBe(1)
    expect(t.batches.every(([, ids]) => ids.length === 1)).toBe(true)
    expect(new Set(t.batches.map(([stream]) => stream)).size).toBe(names.length)
  })

  it('drops a read in flight for a stream no longer followed, and delivers it once when followed again', async () => {
    let held: (() => void) | undefined
    const t = tailOn({
      read: async (args, send) => {
        if (held !== undefined || !String(args.join(' ')).includes('inflight')) return send()
        const reply = await send()
        await new Promise<void>((resolve) => {
          held = resolve
        })
        return reply
      },
    })
    const [gone, back] = await t.streamsOn(ports[0]!, 'inflight', 2)
    await t.backlog(gone!, 1)
    const backIds = await t.backlog(back!, 2)
    t.follow(gone!)
    await waitUntil(() => held !== undefined, 'the read to be held')
    const releaseFirst = held!
    t.tail.remove(gone!)
    releaseFirst()
    await sleep(100)
    expect(t.delivered(gone!)).toEqual([])

    // Unfollowed and followed again while its read is in flight: only the new follow's read counts.
    held = undefined
    t.follow(back!)
    await waitUntil(() => held !== undefined, 'the second read to be held')
    const releaseSecond = held!
    t.tail.remove(back!)
    t.follow(back!)
    releaseSecond()
    await waitUntil(() => t.delivered(back!).length >= 2, 'the stream followed again')
    await sleep(100)
    expect(t.delivered(back!)).toEqual(backIds)
  })

  it('moves a stream whose slot moves to another master, and closes the old connection once it has no stream', async () => {
    const t = tailOn()
    const [stays, moves] = await t.streamsOn(ports[1]!, 'moving', 2)
    for (const name of [stays!, moves!]) t.follow(name)
    await eventually(async () => (await t.subscribers(moves!)) === 1, 'the subscription')
    const to = ports[2]!
    await cluster!.moveSlot(keySlot(t.fullKey(moves!)), to)
    // Redis ends the moved slot's subscription; the tail follows the stream to its new master.
    await eventually(
      async () => (await t.subscribers(moves!)) === 1,
      'the subscription on the new master',
      5000,
    )
    expect(await t.masterOf(moves!)).toBe(to)
    expect(await t.connectionsByMaster()).toEqual([0, 1, 1])
    const id = await t.append(moves!, '', '"after the move"')
    await waitUntil(() => t.delivered(moves!).length === 1, 'the entry after the move')
    expect(t.delivered(moves!)).toEqual([id])

    // The last stream on a master moves: its connection goes.
    await cluster!.moveSlot(keySlot(t.fullKey(stays!)), to)
    await eventually(
      async () => (await t.connectionsByMaster())[1] === 0,
      'the old connection to close',
      5000,
    )
    expect(await t.connectionsByMaster()).toEqual([0, 0, 1])
    const later = await t.append(stays!, '', '"after its move"')
    await waitUntil(() => t.delivered(stays!).length === 1, 'the entry after the second move')
    expect(t.delivered(stays!)).toEqual([later])
    expect(t.reported).toEqual([])
  })

  it('tells the end of a moved slot subscription from an error, however many channels the connection keeps', async () => {
    const t = tailOn()
    // Redis's notice names the channel and the number of subscriptions left: here eleven.
    const names = await t.streamsOn(ports[2]!, 'many-left', 12)
    for (const name of names) t.follow(name)
    await eventually(
      async () => (await Promise.all(names.map(t.subscribers))).every((n) => n === 1),
      'the subscriptions',
    )
    const moves = names[0]!
    await cluster!.moveSlot(keySlot(t.fullKey(moves)), ports[0]!)
    await eventually(
      async () => (await t.masterOf(moves)) === ports[0] && (await t.subscribers(moves)) === 1,
      'the move',
    )
    const id = await t.append(moves, '', '"after the move"')
    await waitUntil(() => t.delivered(moves).length === 1, 'the entry after the move')
    expect(t.delivered(moves)).toEqual([id])
    expect(t.reported).toEqual([])
  })

  it('reroutes at once a stream its client routed by a stale slot map, told by the MOVED answer to its subscription', async () => {
    const t = tailOn()
    const [name] = await t.streamsOn(ports[0]!, 'stale', 1)
    // The tail's client learns the slot map now; the slot then moves behind its back.
    await t.client.ping()
    const to = ports[1]!
    await cluster!.moveSlot(keySlot(t.fullKey(name!)), to)
    const id = await t.append(name!, '', '"moved before it was followed"', false)
    t.follow(name!)
    // Neither the periodic refresh (every minute) nor a subscription timing out (5 s) comes within
    // the wait: only the MOVED answer can reroute it. An expected answer on a slot move, not a failure.
    await waitUntil(() => t.delivered(name!).length === 1, 'the stream on its new master', 3000)
    expect(t.delivered(name!)).toEqual([id])
    expect(t.connections.map(({ port }) => port)).toEqual([ports[0], to])
    await eventually(async () => (await t.connectionsByMaster())[0] === 0, 'the stale connection to close')
    const live = await t.append(name!, id, '"live"')
    await waitUntil(() => t.delivered(name!).length === 2, 'an announced entry on the new master')
    expect(t.delivered(name!)).toEqual([id, live])
  })

  it('asks for the slot map when it has no master for a stream, and routes the stream once it has', async () => {
    const t = tailOn()
    const [name] = await t.streamsOn(ports[2]!, 'unmapped', 1)
    const id = await t.append(name!, '', '"before the map"', false)
    await t.client.ping()
    // What a client's map holds for a slot no master serves yet (mid-failover); made by hand here,
    // since a really uncovered slot takes the whole test cluster down.
    const slot = keySlot(t.fullKey(name!))
    const owners = t.client.slots[slot]
    t.client.slots[slot] = undefined as unknown as string[]
    t.follow(name!)
    expect(t.connections).toHaveLength(0)
    // No periodic refresh within the wait (every minute): the tail asked for this one.
    await waitUntil(() => t.delivered(name!).length === 1, 'the stream, once the map came')
    expect(t.delivered(name!)).toEqual([id])
    expect(t.client.slots[slot]).toEqual(owners)
  })

  it("follows streams under the client's keyPrefix, named in full by Redis", async () => {
    const t = tailOn({ clusterOptions: { keyPrefix: 'app:' } })
    const [name] = await t.streamsOn(ports[0]!, 'prefixed', 1)
    expect(t.fullKey(name!)).toBe(`app:${t.key(name!)}`)
    t.follow(name!)
    await eventually(
      async () => (await t.subscribers(name!)) === 1,
      'the subscription on the prefixed channel',
    )
    const id = await t.append(name!, '', '"prefixed"')
    await waitUntil(() => t.delivered(name!).length === 1, 'the prefixed stream')
    expect(t.delivered(name!)).toEqual([id])
  })

  it('refreshes the slot map every blockMs while it follows streams, and only then', async () => {
    const t = tailOn({ blockMs: 50 })
    let refreshes = 0
    t.client.on('refresh', () => refreshes++)
    const names = await t.streamsOn(ports[1]!, 'refresh', 5)
    // Followed 10 ms apart: one timer would not refresh once per stream, whenever each came.
    for (const name of names) {
      t.follow(name)
      await sleep(10)
    }
    refreshes = 0
    await sleep(400)
    // Eight periods: one refresh each, however many streams.
    expect(refreshes).toBeGreaterThanOrEqual(3)
    expect(refreshes).toBeLessThanOrEqual(12)
    for (const name of names) t.tail.remove(name)
    await sleep(60)
    refreshes = 0
    await sleep(300)
    expect(refreshes).toBe(0)
  })

  it('waits on close for the read in flight', async () => {
    let answer: (() => void) | undefined
    const t = tailOn({
      read: async (_args, send) => {
        const reply = await send()
        await new Promise<void>((resolve) => {
          answer = resolve
        })
        return reply
      },
    })
    const [name] = await t.streamsOn(ports[0]!, 'inflight-close', 1)
    await t.backlog(name!, 1)
    t.follow(name!)
    await waitUntil(() => answer !== undefined, 'a read in flight')
    let closed = false
    const closing = t.tail.close().then(() => {
      closed = true
    })
    await sleep(100)
    expect(closed).toBe(false)
    answer!()
    await closing
    expect(t.batches).toEqual([])
  })

  it('drops a read answered after close, and leaves no connection, listener or timer behind', async () => {
    let answer: (() => void) | undefined
    const t = tailOn({
      blockMs: 50,
      read: async (_args, send) => {
        const reply = await send()
        await new Promise<void>((resolve) => {
          answer = resolve
        })
        return reply
      },
    })
    const before = timers()
    const listeners = t.client.listenerCount('refresh')
    const names = (await Promise.all(ports.map((port, i) => t.streamsOn(port, `closing${i}-`, 1)))).flat()
    for (const name of names) await t.backlog(name, 1)
    for (const name of names) t.follow(name)
    await waitUntil(() => answer !== undefined, 'a read in flight')
    const closing = t.tail.close()
    answer!()
    // Later reads (of the other masters' streams) answer at once.
    const release = setInterval(() => answer?.(), 5)
    await closing
    clearInterval(release)
    expect(t.batches).toEqual([])
    await eventually(
      async () => (await t.connectionsByMaster()).every((n) => n === 0),
      'every connection to close',
    )
    expect(t.client.listenerCount('refresh')).toBe(listeners - 1)
    expect(timers()).toBeLessThanOrEqual(before)
    // Closed is closed: nothing is followed or delivered any more.
    t.follow(names[0]!)
    expect(t.tail.has(names[0]!)).toBe(false)
    await t.append(names[0]!, '', '"after close"')
    await sleep(100)
    expect(t.batches).toEqual([])
    expect(t.connections).toHaveLength(3)
  })
})
