/**
 * The store behind a real hub, served over real HTTP to real SSE clients: live delivery, resuming
 * with Last-Event-ID, every gap path, and two app instances sharing one Redis.
 */
import { createParser } from 'eventsource-parser'
import { afterEach, describe, expect, it } from 'vitest'
import { sleep, waitUntil } from '../../../test/support/wait.js'
import { redisForTests, suiteStores, uniquePrefix } from './helpers/redis-server.js'
import { type App, Opened } from './helpers/sse.js'

const server = await redisForTests('hub over HTTP')

describe.skipIf(server === undefined)('a hub on the Redis store, over HTTP', () => {
  const redis = suiteStores(server, 'hub')
  const { store, reported } = redis
  const opened = new Opened()
  const { app, raw, browser } = opened

  async function publishAll(on: App, stream: string, count: number, label = 'e'): Promise<string[]> {
    const ids: string[] = []
    for (let i = 0; i < count; i++) ids.push(await on.hub.publish(stream, { data: `${label}${i}` }))
    return ids
  }

  afterEach(async () => {
    await opened.closeAll()
  })

  it('delivers published events live, with ids, types and multi-line data', async () => {
    const a = await app(store())
    const client = await raw(a.url('news'))
    expect(client.status).toBe(200)
    expect(client.contentType).toBe('text/event-stream; charset=utf-8')
    // The fresh client is told its position (0-0: nothing yet) before it is live.
    await waitUntil(() => client.lastEventId === '0-0', 'the fresh position')
    const first = await a.hub.publish('news', { event: 'headline', data: { title: 'Hello' } })
    const second = await a.hub.publish('news', { data: 'two\nlines' })
    await waitUntil(() => client.messages.length === 2, 'two events')
    expect(client.messages).toEqual([
      { id: first, event: 'headline', data: '{"title":"Hello"}' },
      { id: second, event: undefined, data: 'two\nlines' },
    ])
    expect(client.gaps).toEqual([])
    expect(a.hub.stats().published).toBe(2)
  })

  it('gives an EventSource exactly the events it missed when it reconnects by itself', async () => {
    const a = await app(store())
    const start = await a.hub.publish('s', { data: 'before' })
    const client = browser(a.url('s', start))
    const live = await publishAll(a, 's', 3, 'live')
    await waitUntil(() => client.messages.length === 3, 'three live events')
    // Cut every connection; the client reconnects on its own after the `retry:` hint, with Last-Event-ID.
    a.server.closeAllConnections()
    const missed = await publishAll(a, 's', 5, 'missed')
    await waitUntil(() => client.opens >= 2, 'the reconnection')
    const after = await publishAll(a, 's', 2, 'after')
    await waitUntil(() => client.messages.length === 10, 'all ten events')
    expect(client.messages.map((event) => event.id)).toEqual([...live, ...missed, ...after])
    expect(client.messages.map((event) => event.data)).toEqual([
      'live0',
      'live1',
      'live2',
      'missed0',
      'missed1',
      'missed2',
      'missed3',
      'missed4',
      'after0',
      'after1',
    ])
    expect(client.events.filter((event) => event.event === 'rewind-gap')).toEqual([])
  })

  it('replays exactly what followed a Last-Event-ID header, then goes live', async () => {
    const a = await app(store())
    const ids = await publishAll(a, 's', 10)
    const client = await raw(a.url('s'), ids[3])
    await waitUntil(() => client.messages.length === 6, 'the replay')
    expect(client.messages.map((event) => event.id)).toEqual(ids.slice(4))
    const live = await a.hub.publish('s', { data: 'live' })
    await waitUntil(() => client.messages.length === 7, 'the live event')
    expect(client.messages[6]!.id).toBe(live)
    expect(client.gaps).toEqual([])
  })

  it('replays a long history in pages, in order, without gap or duplicate', async () => {
    const a = await app(store({ maxLen: 5000 }))
    const ids: string[] = []
    const batch: Promise<string>[] = []
    for (let i = 0; i < 1200; i++) batch.push(a.hub.publish('long', { data: `e${i}` }))
    ids.push(...(await Promise.all(batch)))
    const client = await raw(a.url('long'), '0-0')
    await waitUntil(() => client.messages.length === 1200, 'the long replay')
    expect(client.messages.map((event) => event.id)).toEqual(ids)
  })

  it('signals an evicted position, with an id just before the first retained event, then replays', async () => {
    const a = await app(store({ maxLen: 5, trim: 'exact' }))
    const ids = await publishAll(a, 's', 12)
    const client = await raw(a.url('s'), ids[0])
    await waitUntil(() => client.messages.length === 5, 'the retained events')
    expect(client.events[0]).toEqual({ id: before(ids[7]!), event: 'rewind-gap', data: 'evicted' })
    expect(client.messages.map((event) => event.id)).toEqual(ids.slice(7))
    expect(client.gaps).toHaveLength(1)

    // A client that dropped right after the signal resumes from its id without a second gap.
    const resumed = await raw(a.url('s'), client.events[0]!.id)
    await waitUntil(() => resumed.messages.length === 5, 'the resumed replay')
    expect(resumed.gaps).toEqual([])
    expect(resumed.messages.map((event) => event.id)).toEqual(ids.slice(7))

    const live = await a.hub.publish('s', { data: 'live' })
    await waitUntil(() => client.messages.length === 6 && resumed.messages.length === 6, 'the live event')
    expect(client.messages[5]!.id).toBe(live)
    expect(resumed.messages[5]!.id).toBe(live)
  })

  it('signals unknown ids (foreign shapes, the future) and replays what is retained', async () => {
    const a = await app(store({ maxLen: 3, trim: 'exact' }))
    const ids = await publishAll(a, 's', 5)
    const [ms] = ids[4]!.split('-')
    for (const id of ['k3f9x-42', `${BigInt(ms!) + 10n}-0`]) {
      const client = await raw(a.url('s'), id)
      await waitUntil(() => client.messages.length === 3, `the replay after ${id}`)
      expect(client.events[0]).toEqual({ id: before(ids[2]!), event: 'rewind-gap', data: 'unknown' })
      expect(client.messages.map((event) => event.id)).toEqual(ids.slice(2))
    }
  })

  it('signals a resume into a stream whose key expired after streamTtl, then delivers live', async () => {
    const on = store({ streamTtl: 150 })
    const a = await app(on)
    const ids = await publishAll(a, 's', 3)
    for (let tries = 0; tries < 100 && (await redis.admin.exists(on.key('s'))) === 1; tries++) await sleep(20)
    expect(await redis.admin.exists(on.key('s'))).toBe(0)
    const client = await raw(a.url('s'), ids[2])
    await waitUntil(() => client.events.length === 1, 'the signal')
    expect(client.events[0]).toEqual({ id: '0-0', event: 'rewind-gap', data: 'unknown' })
    const live = await a.hub.publish('s', { data: 'live' })
    await waitUntil(() => client.messages.length === 1, 'the live event')
    expect(client.messages[0]!.id).toBe(live)
  })

  it('keeps serving filtered subscribers past an entry whose data does not deserialize', async () => {
    const on = store()
    const hubErrors: unknown[] = []
    const a = await app(
      on,
      { onError: (error) => hubErrors.push(error) },
      { filter: (event) => (event.value as { room?: string }).room === 'x' },
    )
    const first = await a.hub.publish('s', { data: { room: 'x', n: 1 } })
    // Written by other code: not JSON, so JSON.parse (the default deserialize) throws on it.
    const bad = await redis.admin.xadd(
      on.key('s'),
      '*',
      'prev',
      first,
      'event',
      '',
      'string',
      '0',
      'data',
      '{room: x',
    )
    const third = await a.hub.publish('s', { data: { room: 'x', n: 3 } })
    const expected = [third]
    for (let round = 0; round < 2; round++) {
      const client = await raw(a.url('s'), first)
      await waitUntil(() => client.messages.length === expected.length, `resume ${round}`)
      expect(client.messages.map((message) => message.id)).toEqual(expected)
      expect(client.gaps).toEqual([])
      expected.push(await a.hub.publish('s', { data: { room: 'x', n: 4 + round } }))
      await waitUntil(
        () => client.messages.length === expected.length,
        `the live event after resume ${round}`,
      )
      expect(client.messages.map((message) => message.id)).toEqual(expected)
      expect(client.ended).toBe(false)
    }
    expect(hubErrors).toEqual([])
    // Reported once, however many subscribers read it.
    const errors = reported.splice(0)
    expect(errors).toHaveLength(1)
    expect((errors[0] as { code?: string }).code).toBe('ERR_SERIALIZE')
    expect(String((errors[0] as Error).message)).toContain(bad!)
  })

  it('signals a malformed Last-Event-ID and replays what is retained', async () => {
    const a = await app(store({ maxLen: 3, trim: 'exact' }))
    const ids = await publishAll(a, 's', 5)
    const client = await raw(a.url('s', 'x'.repeat(200)))
    await waitUntil(() => client.messages.length === 3, 'the replay')
    expect(client.events[0]).toEqual({ id: before(ids[2]!), event: 'rewind-gap', data: 'malformed' })
    expect(client.messages.map((event) => event.id)).toEqual(ids.slice(2))
  })

  it('with the reset policy, signals the gap at the newest event and replays nothing', async () => {
    const a = await app(store({ maxLen: 3, trim: 'exact' }), { gapPolicy: 'reset' })
    const ids = await publishAll(a, 's', 6)
    const client = await raw(a.url('s'), ids[0])
    await waitUntil(() => client.events.length === 1, 'the signal')
    expect(client.events[0]).toEqual({ id: ids[5], event: 'rewind-gap', data: 'evicted' })
    const live = await a.hub.publish('s', { data: 'live' })
    await waitUntil(() => client.messages.length === 1, 'the live event')
    expect(client.messages[0]!.id).toBe(live)
  })

  it('tells eviction exactly under approximate trimming: the predecessor of the first entry is no gap', async () => {
    const s = store({ maxLen: 100 })
    const a = await app(s)
    const published: Promise<string>[] = []
    for (let i = 0; i < 1000; i++) published.push(a.hub.publish('s', { data: `e${i}` }))
    const ids = await Promise.all(published)
    const retained = await redis.admin.xrange(s.key('s'), '-', '+')
    // Approximate trimming keeps whole nodes: more than maxLen, never everything.
    expect(retained.length).toBeGreaterThanOrEqual(100)
    expect(retained.length).toBeLessThan(1000)
    const [firstId, fields] = retained[0]!
    const prev = fields[fields.indexOf('prev') + 1]!
    const index = ids.indexOf(firstId)
    expect(prev).toBe(ids[index - 1])

    // The last id this client saw was trimmed, but nothing after it was: no gap.
    const exact = await raw(a.url('s'), prev)
    await waitUntil(() => exact.messages.length === retained.length, 'the exact replay')
    expect(exact.gaps).toEqual([])
    expect(exact.messages.map((event) => event.id)).toEqual(ids.slice(index))

    // One further back, an event is missing: evicted.
    const late = await raw(a.url('s'), ids[index - 2])
    await waitUntil(() => late.messages.length === retained.length, 'the replay after the gap')
    expect(late.gaps).toEqual([{ id: before(firstId), event: 'rewind-gap', data: 'evicted' }])
  })

  it('shares one history between two app instances: publish on A, receive on B, resume on B', async () => {
    const prefix = uniquePrefix('shared')
    const a = await app(store({}, prefix))
    const b = await app(store({}, prefix))
    const start = await a.hub.publish('s', { data: 'start' })
    const onB = await raw(b.url('s'), start)
    const fromA = await publishAll(a, 's', 4, 'a')
    await waitUntil(() => onB.messages.length === 4, 'events from A on B')
    expect(onB.messages.map((event) => event.id)).toEqual(fromA)

    // A client that followed A resumes on B from the last id A sent it.
    const onA = await raw(a.url('s'), start)
    await waitUntil(() => onA.messages.length === 4, 'the replay on A')
    onA.close()
    const missed = [...(await publishAll(a, 's', 2, 'a')), ...(await publishAll(b, 's', 2, 'b'))]
    const moved = await raw(b.url('s'), onA.lastEventId)
    await waitUntil(() => moved.messages.length === 4, 'the missed events on B')
    expect(moved.messages.map((event) => event.id)).toEqual(missed)
    expect(moved.gaps).toEqual([])
    await waitUntil(() => onB.messages.length === 8, 'all events on B')
    expect(onB.messages.map((event) => event.id)).toEqual([...fromA, ...missed])
  })

  it('parses every frame it sends with a strict parser', async () => {
    const a = await app(store())
    const start = await a.hub.publish('s', { data: 'start' })
    await a.hub.publish('s', { event: 'x', data: '\r\nmixed\rbreaks\n' })
    await a.hub.publish('s', { data: '' })
    const response = await fetch(a.url('s', start), { signal: AbortSignal.timeout(500) })
    const text = await readFor(response, 300)
    const parsed: { id?: string | undefined; event?: string | undefined; data: string }[] = []
    const parser = createParser({
      onEvent: (event) => parsed.push(event),
      onError: (error) => parsed.push({ data: `ERROR ${error.message}` }),
    })
    parser.feed(text)
    expect(parsed.map((event) => [event.event, event.data])).toEqual([
      ['x', '\nmixed\nbreaks\n'],
      [undefined, ''],
    ])
  })
})

async function readFor(response: Response, ms: number): Promise<string> {
  let text = ''
  const decoder = new TextDecoder()
  const reader = response.body!.getReader()
  const stop = setTimeout(() => void reader.cancel().catch(() => {}), ms)
  try {
    for (;;) {
      const { done, value } = await reader.read()
      if (done) break
      text += decoder.decode(value, { stream: true })
    }
  } catch {
    // Cancelled or timed out: what was read so far is the answer.
  }
  clearTimeout(stop)
  return text
}

/** The id just before a `<ms>-<seq>` id. */
function before(id: string): string {
  const [ms, seq] = id.split('-').map(BigInt) as [bigint, bigint]
  return seq > 0n ? `${ms}-${seq - 1n}` : `${ms - 1n}-18446744073709551615`
}
