/**
 * The store on a real Redis Cluster of three masters, started by this file: the slot function
 * against Redis's own, publish/resume/gap on streams of every shard, two hubs sharing the cluster,
 * one tail connection per shard however many streams, responses across instances, and a stream
 * whose slot moves to another master while it is followed.
 */
import fc from 'fast-check'
import { Cluster } from 'ioredis'
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { tokens } from '../../../test/support/answers-across-instances.js'
import { listen } from '../../../test/support/listen.js'
import { Collector } from '../../../test/support/store-delivery.js'
import { sleep, waitUntil } from '../../../test/support/wait.js'
import { createRedisStore, type RedisStore, type RedisStoreOptions } from '../src/index.js'
import { keySlot } from '../src/slots.js'
import { clusterForTests } from './helpers/cluster.js'
import { uniquePrefix } from './helpers/redis-server.js'
import { type App, Opened } from './helpers/sse.js'

const cluster = await clusterForTests('Redis Cluster')

describe.skipIf(cluster === undefined)('the Redis store on Redis Cluster', () => {
  const nodes = cluster?.nodes ?? []
  const stores: RedisStore[] = []
  const opened = new Opened()
  const { raw } = opened
  const given: Cluster[] = []
  let reported: unknown[] = []

  afterEach(async () => {
    await opened.closeAll()
    await Promise.all(stores.splice(0).map((store) => store.close()))
    for (const client of given.splice(0)) await client.quit()
    const errors = reported
    reported = []
    expect(errors).toEqual([])
  })

  afterAll(async () => {
    await cluster?.close()
  })

  function store(options: RedisStoreOptions = {}): RedisStore {
    const created = createRedisStore({
      cluster: options.redis === undefined ? nodes : undefined,
      prefix: uniquePrefix('cluster'),
      onError: (error) => reported.push(error),
      ...options,
    })
    stores.push(created)
    return created
  }

  /** A Cluster client of the caller's own, which the store must leave open. */
  function clusterClient(): Cluster {
    const client = new Cluster([...nodes])
    given.push(client)
    return client
  }

  const app = (on: RedisStore): Promise<App> => opened.app(on, { heartbeatInterval: 0 })

  /** One stream name per master, `label0`, `label1`…, with the port of the master holding it. */
  async function oneStreamPerShard(on: RedisStore, label: string): Promise<[string, number][]> {
    const found = new Map<number, string>()
    for (let i = 0; found.size < nodes.length && i < 1000; i++) {
      const stream = `${label}${i}`
      const port = await cluster!.masterOf(keySlot(on.key(stream)))
      if (!found.has(port)) found.set(port, stream)
    }
    expect(found.size).toBe(3)
    return [...found].map(([port, stream]) => [stream, port])
  }

  /** How many connections named `rewind-tail` each master has. */
  async function tailConnections(): Promise<number[]> {
    return Promise.all(
      nodes.map(async ({ port }) => {
        const list = (await cluster!.node(port).call('CLIENT', 'LIST')) as string
        return list.split('\n').filter((line) => line.includes(' name=rewind-tail ')).length
      }),
    )
  }

  it('computes the slot of any key as CLUSTER KEYSLOT does', async () => {
    const keys = [
      ...fc.sample(fc.string({ maxLength: 30, unit: fc.constantFrom('{', '}', 'a', 'é', '😀', ':') }), 150),
      ...fc.sample(fc.string({ maxLength: 30, unit: 'grapheme' }), 150),
    ]
    const admin = cluster!.node(nodes[0]!.port)
    const pipeline = admin.pipeline()
    for (const key of keys) pipeline.call('CLUSTER', 'KEYSLOT', key)
    const slots = ((await pipeline.exec()) ?? []).map(([error, slot]) => (error === null ? slot : error))
    expect(slots).toEqual(keys.map(keySlot))
  })

  it('publishes, resumes and signals gaps on streams of all three shards', async () => {
    const on = store({ maxLen: 5, trim: 'exact' })
    const a = await app(on)
    const streams = await oneStreamPerShard(on, 'feed')
    for (const [stream, port] of streams) {
      const live = await raw(a.url(stream))
      await sleep(100)
      const ids: string[] = []
      for (let i = 0; i < 3; i++) ids.push(await a.hub.publish(stream, { data: `${stream}-${i}` }))
      await waitUntil(() => live.messages.length === 3, `live events of ${stream}`)
      expect(live.messages.map((event) => event.id)).toEqual(ids)
      // The stream is where its slot says, on the master that serves it.
      expect(await cluster!.node(port).exists(on.key(stream))).toBe(1)

      const resumed = await raw(a.url(stream), ids[0])
      await waitUntil(() => resumed.messages.length === 2, `the resumed replay of ${stream}`)
      expect(resumed.messages.map((event) => event.id)).toEqual(ids.slice(1))
      expect(resumed.gaps).toEqual([])

      for (let i = 3; i < 12; i++) ids.push(await a.hub.publish(stream, { data: `${stream}-${i}` }))
      const behind = await raw(a.url(stream), ids[0])
      await waitUntil(() => behind.messages.length === 5, `the retained events of ${stream}`)
      expect(behind.events[0]).toMatchObject({ event: 'rewind-gap', data: 'evicted' })
      expect(behind.messages.map((event) => event.id)).toEqual(ids.slice(7))
      await waitUntil(() => live.messages.length === 12, `every live event of ${stream}`)
      expect(live.messages.map((event) => event.id)).toEqual(ids)
    }
  })

  it('delivers across two hubs on the cluster, one of them on a Cluster client of its own', async () => {
    const prefix = uniquePrefix('shared')
    const client = clusterClient()
    const onClient = store({ redis: client, prefix })
    const a = await app(onClient)
    const b = await app(store({ prefix }))
    const streams = await oneStreamPerShard(onClient, 'room')
    const onA = await Promise.all(streams.map(([stream]) => raw(a.url(stream))))
    const onB = await Promise.all(streams.map(([stream]) => raw(b.url(stream))))
    await sleep(150)
    const published = await Promise.all(
      streams.map(async ([stream], i) => [
        await b.hub.publish(stream, { data: 'from b' }),
        await a.hub.publish(stream, { data: 'from a' }),
        await (i % 2 === 0 ? b : a).hub.publish(stream, { data: 'either' }),
      ]),
    )
    for (const [i, ids] of published.entries()) {
      await waitUntil(() => onA[i]!.messages.length === 3 && onB[i]!.messages.length === 3, 'both hubs')
      expect(onA[i]!.messages.map((event) => event.id)).toEqual(ids)
      expect(onB[i]!.messages.map((event) => event.id)).toEqual(ids)
    }
    // The store leaves a client it was given open.
    await onClient.close()
    expect(client.status).toBe('ready')
  })

  it('follows 60 streams over one tail connection per master, and closes them all', async () => {
    const follower = store({ redis: clusterClient() })
    const collector = new Collector()
    follower.attach(collector)
    const publisher = store({ prefix: follower.prefix })
    const streams = Array.from({ length: 60 }, (_, i) => `many${i}`)
    const ports = new Set(
      await Promise.all(streams.map((stream) => cluster!.masterOf(keySlot(follower.key(stream))))),
    )
    expect(ports.size).toBe(3)
    await Promise.all(streams.map((stream) => follower.watch(stream)))
    const ids = await Promise.all(
      streams.map((stream) => publisher.append(stream, { event: undefined, data: stream, value: stream })),
    )
    await waitUntil(() => streams.every((stream) => collector.ids(stream).length === 1), 'every stream')
    expect(streams.map((stream) => collector.ids(stream)[0])).toEqual(ids)
    expect(await tailConnections()).toEqual([1, 1, 1])
    await follower.close()
    await expect.poll(tailConnections, { timeout: 3000 }).toEqual([0, 0, 0])
  })

  it('serves a response started on hub A from hub B, and a cancel from B stops A', async () => {
    const prefix = uniquePrefix('responses')
    const a = await app(store({ prefix }))
    const b = await app(store({ prefix }))
    const responses = (on: App) => on.hub.responses

    const { id, done } = await responses(a).start(tokens(30, 5))
    const bRequest = await startResponseServer(b)
    const client = await raw(bRequest.url(id))
    await waitUntil(() => client.ended, 'the end of the response', 10_000)
    expect(client.events.filter((e) => e.event === undefined).map((e) => e.data)).toEqual(
      Array.from({ length: 30 }, (_, i) => `t${i}`),
    )
    expect(client.events.find((e) => e.event === 'rewind-end')?.data).toBe('done')
    expect(await done).toBe('done')

    const record: { finished?: boolean } = {}
    const slow = await responses(a).start(tokens(100_000, 5, record))
    const watcher = await raw(bRequest.url(slow.id))
    await waitUntil(() => watcher.events.length >= 3, 'tokens')
    expect(await responses(b).cancel(slow.id)).toBe('cancelled')
    expect(await slow.done).toBe('cancelled')
    await waitUntil(() => record.finished === true, 'the producer on A to stop', 2000)
    await waitUntil(() => watcher.ended, 'the client on B to end')
    expect(watcher.events.find((e) => e.event === 'rewind-end')?.data).toBe('cancelled')
    await bRequest.close()
  })

  it('keeps delivering a stream whose slot moves to another master while it is followed', async () => {
    const on = store({ blockMs: 300 })
    const a = await app(on)
    const [stream, from] = (await oneStreamPerShard(on, 'moving'))[0]!
    const slot = keySlot(on.key(stream))
    const client = await raw(a.url(stream))
    await sleep(100)
    const ids = [await a.hub.publish(stream, { data: 'before' })]
    await waitUntil(() => client.messages.length === 1, 'the first event')

    const to = nodes.find(({ port }) => port !== from)!.port
    await cluster!.moveSlot(slot, to)
    expect(await cluster!.node(to).exists(on.key(stream))).toBe(1)
    const moved = performance.now()
    for (let i = 0; i < 3; i++) ids.push(await a.hub.publish(stream, { data: `after${i}` }))
    await waitUntil(() => client.messages.length === 4, 'the events after the move', 5000)
    console.log(
      `slot move: the events published after it reached the client in ${Math.round(performance.now() - moved)} ms`,
    )
    expect(client.messages.map((event) => event.id)).toEqual(ids)
    expect(client.gaps).toEqual([])
    // The tail followed the stream to its new master and left the old one.
    await expect
      .poll(tailConnections, { timeout: 3000 })
      .toEqual(nodes.map(({ port }) => (port === to ? 1 : 0)))
  })
})

/** Serves `{ response: id }` of `on`'s hub at `/responses/<id>` on a port of its own. */
async function startResponseServer(on: App): Promise<{ url(id: string): string; close(): Promise<void> }> {
  const listening = await listen((req, res) => {
    on.hub.serve(req, res, { response: decodeURIComponent((req.url ?? '').split('/')[2] ?? '') })
  })
  return { url: (id) => `${listening.url}/responses/${id}`, close: listening.close }
}
