/**
 * The two live demos as one cluster: an Express process and a Fastify process started with the same
 * REDIS_URL and REDIS_PREFIX share one history. Publish on either, follow and resume on either.
 */
import { EventSource } from 'eventsource'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { publishData, startExample } from '../../examples/shared/test/smoke.js'
import { redisForTests, uniquePrefix } from '../../packages/redis/test/helpers/redis-server.js'
import { waitUntil } from '../support/wait.js'

const redis = await redisForTests('live demos as a cluster')

type Example = Awaited<ReturnType<typeof startExample>>
interface Received {
  id: string
  data: string
}

/** The EventSources of the tests, closed after them. */
const clients: EventSource[] = []

/** An EventSource on `url` that records the messages it receives; closed after the tests. */
function follow(url: string) {
  const received: Received[] = []
  const source = new EventSource(url)
  source.onmessage = (event) => received.push({ id: event.lastEventId, data: event.data })
  const opened = new Promise<void>((resolve) => {
    source.onopen = () => resolve()
  })
  return { source, received, opened }
}

async function publish(example: Example, data: string): Promise<string> {
  return (await publishData(example.url, data)).id
}

/** Orders Redis stream ids (`<ms>-<seq>`). */
const byStreamId = (a: string, b: string) => {
  const [am, as] = a.split('-').map(BigInt) as [bigint, bigint]
  const [bm, bs] = b.split('-').map(BigInt) as [bigint, bigint]
  return am === bm ? Number(as - bs) : Number(am - bm)
}

describe.skipIf(redis === undefined)('live demos sharing Redis', () => {
  let express: Example
  let fastify: Example

  beforeAll(async () => {
    const env = { REDIS_URL: redis!.url, REDIS_PREFIX: uniquePrefix('cluster') }
    ;[express, fastify] = await Promise.all([
      startExample(new URL('../../examples/express-live/index.js', import.meta.url), env),
      startExample(new URL('../../examples/fastify-live/index.js', import.meta.url), env),
    ])
  })

  afterAll(async () => {
    for (const client of clients) client.close()
    for (const example of [express, fastify]) example?.child.kill('SIGKILL')
    await redis?.close()
  })

  /** A subscriber on each instance, once both are connected. */
  async function followBoth() {
    const onFastify = follow(`${fastify.url}/events`)
    const onExpress = follow(`${express.url}/events`)
    await Promise.all([onFastify.opened, onExpress.opened])
    return { onFastify, onExpress }
  }

  it('delivers events published on either instance to subscribers of the other', async () => {
    const { onFastify, onExpress } = await followBoth()
    const ids: string[] = []
    for (let i = 0; i < 3; i++) {
      ids.push(await publish(express, `express ${i}`))
      ids.push(await publish(fastify, `fastify ${i}`))
    }
    await waitUntil(
      () => onFastify.received.length === 6 && onExpress.received.length === 6,
      'six events on both',
    )
    for (const client of [onFastify, onExpress]) {
      expect(client.received.map((event) => event.id)).toEqual(ids)
      expect(client.received.map((event) => event.data)).toEqual([
        'express 0',
        'fastify 0',
        'express 1',
        'fastify 1',
        'express 2',
        'fastify 2',
      ])
    }
    onFastify.source.close()
    onExpress.source.close()
  })

  it('resumes on one instance a client that dropped from the other, with exactly what it missed', async () => {
    const first = follow(`${express.url}/events`)
    await first.opened
    await publish(fastify, 'seen')
    await waitUntil(() => first.received.length === 1, 'the first event')
    const lastSeen = first.received[0]!.id
    first.source.close()
    const missed = [
      await publish(express, 'missed 1'),
      await publish(fastify, 'missed 2'),
      await publish(express, 'missed 3'),
    ]
    const resumed = follow(`${fastify.url}/events?lastEventId=${encodeURIComponent(lastSeen)}`)
    await waitUntil(() => resumed.received.length === 3, 'the missed events')
    await publish(express, 'live again')
    await waitUntil(() => resumed.received.length === 4, 'the next live event')
    expect(resumed.received.map((event) => event.id).slice(0, 3)).toEqual(missed)
    expect(resumed.received.map((event) => event.data)).toEqual([
      'missed 1',
      'missed 2',
      'missed 3',
      'live again',
    ])
    resumed.source.close()
  })

  it('shows every subscriber one global order while both instances publish at once', async () => {
    const { onFastify, onExpress } = await followBoth()
    const published: string[] = []
    for (let round = 0; round < 20; round++) {
      const pair = await Promise.all([publish(express, `e${round}`), publish(fastify, `f${round}`)])
      published.push(...pair)
    }
    published.sort(byStreamId)
    await waitUntil(
      () => onFastify.received.length === 40 && onExpress.received.length === 40,
      'forty events on both',
    )
    expect(onFastify.received.map((event) => event.id)).toEqual(published)
    expect(onExpress.received.map((event) => event.id)).toEqual(published)
    onFastify.source.close()
    onExpress.source.close()
  })

  it('keeps the contract with Redis: bad input is a 400 JSON error on both', async () => {
    for (const example of [express, fastify]) {
      const res = await fetch(`${example.url}/events`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ event: 'bad\nname', data: 1 }),
      })
      expect(res.status).toBe(400)
      expect(await res.json()).toEqual({ error: expect.any(String) })
    }
  })

  it('stops both processes promptly on SIGTERM', async () => {
    const open = follow(`${express.url}/events`)
    await open.opened
    const t0 = Date.now()
    for (const example of [express, fastify]) example.child.kill('SIGTERM')
    express.exited.then(() => console.log('express exited', Date.now() - t0, express.output()))
    fastify.exited.then(() => console.log('fastify exited', Date.now() - t0, fastify.output()))
    const outcomes = await Promise.all(
      [express, fastify].map((example) =>
        Promise.race([example.exited, new Promise((resolve) => setTimeout(() => resolve('timeout'), 8000))]),
      ),
    )
    expect(outcomes).toEqual([
      { code: 0, signal: null },
      { code: 0, signal: null },
    ])
  })
})
