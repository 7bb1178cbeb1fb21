/**
 * Guarantee: past `maxConnections` or `maxSubscribersPerStream`, a client is turned away with
 * status 200, the event-stream content type, a `retry:` hint (a random delay between half and one
 * and a half times `overloadRetry`) and the end of the body, so an EventSource comes back later and
 * resumes; never with a 503 or any other status, which would make a browser give up for good.
 */
import { EventSource } from 'eventsource'
import { afterEach, describe, expect, it } from 'vitest'
import { RawHttpClient } from '../support/raw-client.js'
import { waitUntil } from '../support/wait.js'
import { ADAPTERS, type RunningApp, startApp } from './helpers/app.mjs'
import { pool, report } from './helpers/wait.js'

const OVERLOAD_RETRY = 200

/** A turned-away answer: 200, event-stream, a retry hint in range, the end of the body, no event. */
function expectTurnedAway(client: RawHttpClient): void {
  expect(client.status).toBe(200)
  expect(client.headers['content-type']).toBe('text/event-stream; charset=utf-8')
  expect(client.ended).toBe(true)
  expect(client.events).toEqual([])
  expect(client.retries).toHaveLength(1)
  expect(client.retries[0]).toBeGreaterThanOrEqual(OVERLOAD_RETRY / 2)
  expect(client.retries[0]).toBeLessThanOrEqual((OVERLOAD_RETRY * 3) / 2)
}

describe.each(ADAPTERS)('%s: connection limits', (adapter) => {
  let app: RunningApp | undefined
  const clients: RawHttpClient[] = []
  const sources: EventSource[] = []

  afterEach(async () => {
    for (const source of sources.splice(0)) source.close()
    for (const client of clients.splice(0)) client.destroy()
    await app?.close()
    app = undefined
  })

  const open = async (path = '/events'): Promise<RawHttpClient> => {
    const client = new RawHttpClient(app!.port, { path })
    clients.push(client)
    // An accepted stream sends `retry:` and an `id:` line; a refused one sends `retry:` and ends.
    await waitUntil(
      () => client.sawId || client.ended || client.closed,
      () => `an answer: ${client.describe()}`,
    )
    return client
  }

  it('answers clients past maxConnections with 200, a retry hint and the end of the body, under a burst', async () => {
    const limit = 20
    app = await startApp(adapter, { maxConnections: limit, overloadRetry: OVERLOAD_RETRY, retry: 1000 })
    const burst: RawHttpClient[] = []
    // 60 clients at once, spread over 3 streams: exactly `limit` get in.
    await pool(60, 60, async (i) => {
      const client = new RawHttpClient(app!.port, { path: `/events?stream=s${i % 3}` })
      clients.push(client)
      burst.push(client)
      await waitUntil(
        () => client.sawId || client.ended,
        () => `an answer: ${client.describe()}`,
      )
    })
    const refused = burst.filter((c) => c.ended)
    const accepted = burst.filter((c) => !c.ended)
    expect(accepted).toHaveLength(limit)
    expect(refused).toHaveLength(60 - limit)
    for (const client of refused) expectTurnedAway(client)
    for (const client of accepted) {
      expect(client.status).toBe(200)
      expect(client.retries).toEqual([1000])
    }
    const stats = app.hub.stats()
    expect(stats).toMatchObject({ connections: limit, rejected: 60 - limit })

    // Once a slot frees, a client is let in again.
    accepted[0]!.destroy()
    await waitUntil(() => app!.hub.stats().connections === limit - 1, 'a slot to free')
    const next = await open('/events?stream=s0')
    expect(next.ended).toBe(false)
    expect(app.hub.stats().connections).toBe(limit)
    report(`${adapter} limits maxConnections`, {
      burst: 60,
      limit,
      accepted: accepted.length,
      refused: refused.length,
    })
  })

  it('answers clients past maxSubscribersPerStream the same way, and lets other streams in', async () => {
    app = await startApp(adapter, { maxSubscribersPerStream: 3, overloadRetry: OVERLOAD_RETRY })
    for (let i = 0; i < 3; i++) {
      const client = await open('/events?stream=a')
      expect(client.ended).toBe(false)
    }
    const fourth = new RawHttpClient(app.port, { path: '/events?stream=a' })
    clients.push(fourth)
    await fourth.waitForEnd()
    expectTurnedAway(fourth)
    const other = await open('/events?stream=b')
    expect(other.ended).toBe(false)
    expect(app.hub.stats()).toMatchObject({ subscribers: 4, rejected: 1 })
  })

  it('makes a turned-away EventSource come back by itself and resume once there is room', async () => {
    app = await startApp(adapter, { maxConnections: 1, overloadRetry: OVERLOAD_RETRY })
    const holder = await open()
    const source = new EventSource(app.url())
    sources.push(source)
    const received: string[] = []
    let errors = 0
    source.addEventListener('message', (event) => received.push(String(event.data)))
    source.addEventListener('error', () => errors++)
    // Turned away at least twice: it keeps trying (a non-200 answer would have closed it for good).
    await waitUntil(() => errors >= 2, 'the client to be turned away twice')
    expect(source.readyState).not.toBe(EventSource.CLOSED)
    holder.destroy()
    await waitUntil(
      () => app!.hub.stats().connections === 1 && source.readyState === EventSource.OPEN,
      'the client to get in',
    )
    app.publish('s', { data: 'welcome' })
    await waitUntil(() => received.length === 1, 'the event')
    expect(received).toEqual(['welcome'])
    expect(app.hub.stats().rejected).toBeGreaterThanOrEqual(2)
  })
})
