/**
 * The metrics example under real traffic: `eventsource` clients follow a stream, events are
 * published over HTTP, a client resumes from an evicted id (a gap), one is turned away by the
 * connection limit; then /metrics is scraped over HTTP and every number is checked.
 */
import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { HubStats } from '@rewind/core'
import { EventSource } from 'eventsource'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { HUB_METRICS } from '../hub-metrics.js'
import { createApp } from '../index.js'

const WAIT = { timeout: 15_000, interval: 20 }

interface Scrape {
  values: Map<string, number>
  types: Map<string, string>
}

async function scrape(base: string): Promise<Scrape> {
  const response = await fetch(`${base}/metrics`)
  expect(response.status).toBe(200)
  expect(response.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/)
  const values = new Map<string, number>()
  const types = new Map<string, string>()
  for (const line of (await response.text()).split('\n')) {
    const type = /^# TYPE (\S+) (\S+)$/.exec(line)
    if (type !== null) types.set(type[1]!, type[2]!)
    else if (line !== '' && !line.startsWith('#')) {
      const [name, value] = line.split(' ')
      values.set(name!, Number(value))
    }
  }
  return { values, types }
}

/** The scrape's hub metrics, by HubStats field. */
function byStat({ values }: Scrape): Record<keyof HubStats, number | undefined> {
  return Object.fromEntries(
    HUB_METRICS.map(({ stat, name }) => [stat, values.get(`rewind_${name}`)]),
  ) as Record<keyof HubStats, number | undefined>
}

function follow(url: string) {
  const received: { event: string; id: string; data: string }[] = []
  const source = new EventSource(url)
  for (const name of ['message', 'rewind-gap']) {
    source.addEventListener(name, (event) =>
      received.push({ event: event.type, id: event.lastEventId, data: event.data }),
    )
  }
  const opened = new Promise((resolve) => source.addEventListener('open', resolve, { once: true }))
  return { source, received, opened }
}

describe('examples/metrics: hub stats on /metrics', () => {
  let server: Server
  let base: string
  const app = createApp({ history: { maxEvents: 5 }, maxConnections: 3 })
  const sources: EventSource[] = []

  beforeAll(async () => {
    server = app.listen(0, '127.0.0.1')
    await new Promise((resolve) => server.once('listening', resolve))
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  })

  afterAll(async () => {
    for (const source of sources) source.close()
    const { events } = app.locals
    await events.close({ server })
  })

  async function publish(data: string): Promise<string> {
    const response = await fetch(`${base}/events`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ data }),
    })
    expect(response.status).toBe(201)
    return ((await response.json()) as { id: string }).id
  }

  function hubStats(): object {
    const { events } = app.locals
    return events.hub.stats()
  }

  it('exposes every HubStats field, counters as counters and gauges as gauges', async () => {
    expect(HUB_METRICS.map(({ stat }) => stat).sort()).toEqual(Object.keys(hubStats()).sort())
    const first = await scrape(base)
    for (const { name, type } of HUB_METRICS) {
      expect(first.types.get(`rewind_${name}`), name).toBe(type)
      expect(name.endsWith('_total'), name).toBe(type === 'counter')
    }
    expect(Object.values(byStat(first))).toEqual(HUB_METRICS.map(() => 0))
  })

  it('counts real traffic: deliveries, a replay after a gap, a rejected client, a departure', async () => {
    const a = follow(`${base}/events`)
    const b = follow(`${base}/events`)
    sources.push(a.source, b.source)
    await Promise.all([a.opened, b.opened])

    const ids: string[] = []
    for (let n = 1; n <= 8; n++) ids.push(await publish(`event ${n}`))
    await vi.waitFor(() => expect([a.received.length, b.received.length]).toEqual([8, 8]), WAIT)

    // History keeps 5: resuming after event 1 skips events 2 and 3, then replays 4 to 8.
    const c = follow(`${base}/events?lastEventId=${encodeURIComponent(ids[0]!)}`)
    sources.push(c.source)
    await vi.waitFor(() => expect(c.received).toHaveLength(6), WAIT)
    expect(c.received[0]).toMatchObject({ event: 'rewind-gap', data: 'evicted', id: ids[2] })
    expect(c.received.slice(1).map((event) => event.id)).toEqual(ids.slice(3))

    // A fourth connection passes maxConnections: 200, a retry hint, and the body ends.
    const turnedAway = await fetch(`${base}/events`)
    expect(turnedAway.status).toBe(200)
    expect(await turnedAway.text()).toMatch(/^retry: \d+/)

    expect(byStat(await scrape(base))).toEqual({
      connections: 3,
      subscribers: 3,
      streams: 1,
      queuedBytes: 0,
      published: 8,
      delivered: 16,
      replayed: 5,
      gaps: 1,
      slowClosed: 0,
      rejected: 1,
      errors: 0,
    })

    // B leaves; the next event reaches A and C only.
    b.source.close()
    await vi.waitFor(async () => expect(byStat(await scrape(base)).subscribers).toBe(2), WAIT)
    await publish('event 9')
    await vi.waitFor(() => expect([a.received.length, c.received.length]).toEqual([9, 7]), WAIT)
    expect(byStat(await scrape(base))).toMatchObject({
      connections: 2,
      subscribers: 2,
      published: 9,
      delivered: 18,
      replayed: 5,
      gaps: 1,
      rejected: 1,
    })
  })
})
