/**
 * Guarantee: a client that stops reading costs the server at most `maxQueueBytes` (1 MiB by
 * default) of queued bytes: past it, it is disconnected (`stats().slowClosed`) and resumes from
 * history later. Meanwhile the other clients get every event, promptly.
 *
 * The server runs in a child process, so its resident memory (from /proc) is its own. Tens of MiB
 * are published while a raw socket that subscribed never reads (`socket.pause()`).
 */

import { HUB_DEFAULTS } from '@rewind/core'
import { EventSource } from 'eventsource'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { RawHttpClient, type RawOptions } from '../support/raw-client.js'
import { sleep, waitUntil } from '../support/wait.js'
import { ADAPTERS, type RunningApp, startApp } from './helpers/app.mjs'
import { type ServerProcess, startServerProcess } from './helpers/child.js'
import { KiB, MiB, mib, percentile, report, waitForValue } from './helpers/wait.js'

const EVENT_BYTES = 16 * KiB
/** 32 MiB per run: 2048 events of 16 KiB. */
const TOTAL_EVENTS = 2048
/** 8 events every 8 ms: about 16 MiB/s, which a reading client keeps up with easily. */
const PER_TICK = 8
const TICK_MS = 8
const HISTORY_EVENTS = 1000
/** 16 MiB of 1 KiB events: more than the operating system's socket buffers take at once. */
const BURST_EVENTS = 16 * 1024

interface PaceResult {
  first: string
  last: string
  published: number
  maxQueuedBytes: number
  maxLiveBytes: number
  maxRssAfterGc: number
  elapsedMs: number
}

/**
 * One publishing run, measured: after `setup`, publishes TOTAL_EVENTS with the live memory sampled
 * (after a full collection) every 250 ms, and reads the peak RSS (VmHWM, garbage included) of the run.
 */
async function measure(server: ServerProcess, setup: () => Promise<void>) {
  const memory = await server.gc()
  const liveBaseline = memory.heapUsed + memory.external
  const rssBaseline = server.rss()
  server.resetPeak()
  await setup()
  const pace = await server.call<PaceResult>('pace', {
    total: TOTAL_EVENTS,
    perTick: PER_TICK,
    tickMs: TICK_MS,
    size: EVENT_BYTES,
    gcEveryMs: 250,
  })
  const peakRss = server.peakRss()
  await server.gc()
  return { pace, liveBaseline, rssBaseline, peakRss, rssAfterGc: server.rss() }
}

/**
 * Opens a client of `server` that never reads (the kernel's socket buffers fill, then the server's
 * queue for it), pushed to `clients`; resolves once it is the server's second subscriber.
 */
async function openStalled(
  server: ServerProcess,
  clients: RawHttpClient[],
  options?: RawOptions,
): Promise<RawHttpClient> {
  const stalled = new RawHttpClient(server.port, options)
  clients.push(stalled)
  stalled.socket.pause()
  await waitForValue(
    () => server.stats(),
    (s) => s.hub.subscribers === 2,
    'the stalled client to subscribe',
  )
  return stalled
}

describe.each(ADAPTERS)('%s: stalled client', (adapter) => {
  let server: ServerProcess
  const clients: RawHttpClient[] = []

  beforeAll(async () => {
    server = await startServerProcess(adapter, {
      // Default maxQueueBytes (1 MiB) and maxEventBytes; history bounded by count.
      hub: { heartbeatInterval: 1000, history: { maxEvents: HISTORY_EVENTS } },
    })
  })

  afterAll(() => {
    for (const client of clients) client.destroy()
    server?.kill()
  })

  it('cuts a client that never reads at the queue limit, keeps memory bounded and serves a reading client without loss', async () => {
    // Fill the history first, so the baseline already holds what history will hold.
    await server.call('publish', { count: HISTORY_EVENTS + 100, size: EVENT_BYTES })

    const latencies: number[] = []
    const received: number[] = []
    const normal = new RawHttpClient(server.port, {
      onEvent: (event, at) => {
        const [n, stamp] = event.data.split(' ', 2)
        received.push(Number(n))
        latencies.push(at - Number(stamp))
      },
    })
    clients.push(normal)
    await normal.waitForHead()
    expect(normal.status).toBe(200)
    await waitForValue(
      () => server.stats(),
      (s) => s.hub.subscribers === 1,
      'the reading client',
    )

    // Control: the same publishing with only the reading client.
    const control = await measure(server, () => Promise.resolve())
    await waitUntil(
      () => received.length >= TOTAL_EVENTS,
      'the reading client to get the control run',
      30_000,
    )
    received.length = 0
    latencies.length = 0

    let stalled: RawHttpClient | undefined
    const run = await measure(server, async () => {
      stalled = await openStalled(server, clients)
    })
    const publishedBytes = TOTAL_EVENTS * EVENT_BYTES

    // The reading client gets every event, in order.
    await waitUntil(
      () => received.length >= TOTAL_EVENTS,
      () => `the reading client to get ${TOTAL_EVENTS} events, has ${received.length}`,
      30_000,
    )
    expect(received).toEqual(Array.from({ length: TOTAL_EVENTS }, (_, i) => i))
    expect(normal.closed).toBe(false)

    // The stalled client was cut, and only it.
    const after = await waitForValue(
      () => server.stats(),
      (s) => s.hub.subscribers === 1 && s.connections === 1,
      'the stalled client to be disconnected',
    )
    expect(after.hub.slowClosed).toBe(1)
    // Bytes waiting for clients never passed the limit plus one write (a tick's batch) per client.
    expect(run.pace.maxQueuedBytes).toBeLessThanOrEqual(
      2 * (HUB_DEFAULTS.maxQueueBytes + PER_TICK * (EVENT_BYTES + 64)),
    )

    // The stalled client, once it reads again, finds its stream cut and can resume from history:
    // its position is long evicted, which it is told in-band (status 200, then `rewind-gap`).
    stalled!.socket.resume()
    await stalled!.waitForEnd()
    const lastSeen = stalled!.events.at(-1)?.id
    expect(lastSeen).toBeDefined()
    const resumed = new RawHttpClient(server.port, { headers: [`Last-Event-ID: ${lastSeen}`] })
    clients.push(resumed)
    await resumed.waitForEvents(2)
    expect(resumed.status).toBe(200)
    expect(resumed.events[0]).toMatchObject({ event: 'rewind-gap', data: 'evicted' })
    resumed.destroy()

    const p50 = percentile(latencies, 50)
    const p99 = percentile(latencies, 99)
    report(`${adapter} stalled-client`, {
      published: mib(publishedBytes),
      publishSeconds: run.pace.elapsedMs / 1000,
      stalledReceivedBeforeCut: mib(stalled!.bodyBytes),
      slowClosed: after.hub.slowClosed,
      maxQueuedBytes: mib(run.pace.maxQueuedBytes),
      controlMaxQueuedBytes: mib(control.pace.maxQueuedBytes),
      liveBaseline: mib(run.liveBaseline),
      liveMaxDelta: mib(run.pace.maxLiveBytes - run.liveBaseline),
      controlLiveMaxDelta: mib(control.pace.maxLiveBytes - control.liveBaseline),
      rssBaseline: mib(run.rssBaseline),
      rssPeakDelta: mib(run.peakRss - run.rssBaseline),
      controlRssPeakDelta: mib(control.peakRss - control.rssBaseline),
      rssAfterGcDelta: mib(run.rssAfterGc - run.rssBaseline),
      latencyP50Ms: p50,
      latencyP99Ms: p99,
      latencyMaxMs: Math.max(...latencies),
    })
    // Live memory (what survives a collection) grows by the queue limit at most, plus batches in
    // flight, over the same run without the stalled client; an unbounded queue would hold nearly
    // everything published (tens of MiB).
    expect(run.pace.maxLiveBytes - run.liveBaseline).toBeLessThan(
      control.pace.maxLiveBytes - control.liveBaseline + HUB_DEFAULTS.maxQueueBytes + 3 * MiB,
    )
    expect(run.pace.maxLiveBytes - run.liveBaseline).toBeLessThan(publishedBytes / 4)
    // Resident memory, garbage included, is no worse than without the stalled client, give or take
    // the collector's timing.
    expect(run.peakRss - run.rssBaseline).toBeLessThan(
      control.peakRss - control.rssBaseline + publishedBytes / 4,
    )
    expect(run.rssAfterGc - run.rssBaseline).toBeLessThan(16 * MiB)
    // Generous: the machine is shared. A stalled client must not hold the others back.
    expect(p99).toBeLessThan(1000)
  }, 90_000)

  it('bounds a client that stops reading in the middle of its replay, and resumes it exactly once it reads again', async () => {
    const head = await server.call<{ last: string }>('publish', { count: 1, size: EVENT_BYTES })
    const [epoch, newest] = head.last.split('-') as [string, string]
    // 600 events to replay (~9.6 MiB): more than the kernel's socket buffers take.
    const from = Number(newest) - 600
    const before = await server.stats()
    const collected: string[] = []
    const replaying = new RawHttpClient(server.port, {
      headers: [`Last-Event-ID: ${epoch}-${from}`],
      onEvent: (event) => collected.push(event.id ?? ''),
    })
    clients.push(replaying)
    replaying.socket.pause()
    await waitForValue(
      () => server.stats(),
      (s) => s.hub.subscribers === before.hub.subscribers + 1,
      'the replaying client to subscribe',
    )
    // ~4.7 MiB more while it does not read; its position stays in history (1000 events).
    const pace = await server.call<PaceResult>('pace', {
      total: 300,
      perTick: PER_TICK,
      tickMs: TICK_MS,
      size: EVENT_BYTES,
    })
    const during = await server.stats()
    // Nothing is queued for it beyond the replay buffer (256 KiB and one 64 KiB chunk): history holds the rest.
    expect(pace.maxQueuedBytes).toBeLessThanOrEqual(HUB_DEFAULTS.maxQueueBytes)
    expect(during.hub.slowClosed).toBe(before.hub.slowClosed)
    expect(during.hub.subscribers).toBe(before.hub.subscribers + 1)

    replaying.socket.resume()
    await waitUntil(
      () => collected.at(-1) === pace.last,
      () =>
        `the replaying client to catch up to ${pace.last}, at ${collected.at(-1)} after ${collected.length}`,
      30_000,
    )
    // Exactly the events after its position, in order, then the live ones: ids are <epoch>-<seq>.
    expect(collected.every((id) => id.startsWith(`${epoch}-`))).toBe(true)
    const seqs = collected.map((id) => Number(id.split('-')[1]))
    expect(seqs).toEqual(Array.from({ length: seqs.length }, (_, i) => from + 1 + i))
    expect(seqs.length).toBe(600 + pace.published)
    report(`${adapter} stalled-in-replay`, {
      replayedAndLiveEvents: collected.length,
      maxQueuedBytesWhileStalled: mib(pace.maxQueuedBytes),
      cutWhileStalled: during.hub.slowClosed !== before.hub.slowClosed,
    })
    replaying.destroy()
  }, 60_000)
})

describe('the memory measurement itself', () => {
  let server: ServerProcess | undefined
  const clients: RawHttpClient[] = []

  afterAll(() => {
    for (const client of clients) client.destroy()
    server?.kill()
  })

  it('sees the growth when the queue limit is lifted (maxQueueBytes 1 GiB): the bound above is what keeps memory flat', async () => {
    server = await startServerProcess('express', {
      hub: { heartbeatInterval: 1000, history: { maxEvents: HISTORY_EVENTS }, maxQueueBytes: 1024 * MiB },
    })
    const running = server
    await running.call('publish', { count: HISTORY_EVENTS + 100, size: EVENT_BYTES })
    const normal = new RawHttpClient(running.port, { light: true })
    clients.push(normal)
    await waitUntil(() => normal.sawId, 'the reading client')
    const run = await measure(running, async () => {
      await openStalled(running, clients, { light: true })
    })
    const growth = run.pace.maxLiveBytes - run.liveBaseline
    const stats = await running.stats()
    report('unbounded-queue control', {
      published: mib(TOTAL_EVENTS * EVENT_BYTES),
      liveMaxDelta: mib(growth),
      rssPeakDelta: mib(run.peakRss - run.rssBaseline),
      maxQueuedBytes: mib(run.pace.maxQueuedBytes),
      slowClosed: stats.hub.slowClosed,
    })
    // The stalled client is never cut, and what it has not read piles up in the server.
    expect(stats.hub.slowClosed).toBe(0)
    expect(growth).toBeGreaterThan((TOTAL_EVENTS * EVENT_BYTES) / 2)
  }, 60_000)
})

/**
 * Bursts published in one turn of the event loop (a loop of `publish` calls) to clients that read
 * as fast as they can. The reader shares this process's event loop, so it reads nothing until the
 * turn ends (as a remote client whose link cannot take megabytes at once).
 */
describe.each(ADAPTERS)('%s: bursts and fast clients', (adapter) => {
  let app: RunningApp | undefined
  let reader: RawHttpClient | undefined
  let source: EventSource | undefined

  afterEach(async () => {
    source?.close()
    reader?.destroy()
    await app?.close()
  })

  /** Publishes `count` events of `size` bytes in one synchronous loop, to one raw reading client. */
  async function burst(
    count: number,
    size: number,
    extras: { wrapWrite?: boolean } = {},
  ): Promise<{ received: number; slowClosed: number; closed: boolean }> {
    app = await startApp(adapter, { heartbeatInterval: 0, history: { maxEvents: 20_000 } }, {}, extras)
    const running = app
    const client = new RawHttpClient(running.port)
    reader = client
    await waitUntil(() => client.sawId, 'the reader to open')
    for (let i = 0; i < count; i++) running.publish('s', { data: `${i} `.padEnd(size, 'x') })
    await waitUntil(
      () => client.events.length >= count || client.closed,
      () => `the burst to arrive or the reader to be cut: ${client.describe()}`,
    )
    return {
      received: client.events.length,
      slowClosed: running.hub.stats().slowClosed,
      closed: client.closed,
    }
  }

  /** Starts the app with `hubOptions` (and `options`) and an EventSource on it; resolves once it is open. */
  async function openEventSource(
    hubOptions: Parameters<typeof startApp>[1],
    options?: Parameters<typeof startApp>[3],
  ) {
    app = await startApp(adapter, hubOptions, {}, options)
    const running = app
    const client = new EventSource(running.url())
    source = client
    const ids: string[] = []
    client.addEventListener('message', (event) => ids.push(event.lastEventId))
    await waitUntil(() => client.readyState === EventSource.OPEN, 'the client to open')
    return { running, client, ids }
  }

  it('delivers a burst of up to maxQueueBytes published in one turn to a reading client', async () => {
    expect(await burst(4, 256 * KiB)).toEqual({ received: 4, slowClosed: 0, closed: false })
  })

  it('resumes a client cut by a burst far past the queue limit from history, with every event exactly once', async () => {
    const { running, ids } = await openEventSource({
      heartbeatInterval: 0,
      retry: 50,
      history: { maxEvents: 20_000 },
    })
    running.publish('s', { data: 'first' })
    await waitUntil(() => ids.length === 1, 'the first event')
    const published = [ids[0]!]
    // 16 MiB in one turn: more than the socket buffers take at once plus the queue limit.
    for (let i = 0; i < BURST_EVENTS; i++)
      published.push(running.publish('s', { data: `${i} `.padEnd(KiB, 'x') }))
    await waitUntil(
      () => ids.length >= published.length,
      () => `${published.length} events, has ${ids.length}`,
      30_000,
    )
    expect(ids).toEqual(published)
    report(`${adapter} burst-16MiB-resume`, {
      events: published.length,
      cutAsSlow: running.hub.stats().slowClosed,
      replayed: running.hub.stats().replayed,
    })
  }, 60_000)

  it('delivers a 1.25 MiB burst to a reading client when the app wraps res.write (compression)', async () => {
    const result = await burst(5, 256 * KiB, { wrapWrite: true })
    report(`${adapter} burst-wrapped-write`, result)
    expect(result).toEqual({ received: 5, slowClosed: 0, closed: false })
  })

  it('gives a connected EventSource every event of that burst when the app wraps res.write', async () => {
    const { running, ids } = await openEventSource({ heartbeatInterval: 0, retry: 50 }, { wrapWrite: true })
    const published: string[] = []
    for (let i = 0; i < 5; i++) published.push(running.publish('s', { data: `${i} `.padEnd(256 * KiB, 'x') }))
    await sleep(500)
    published.push(running.publish('s', { data: 'after the burst' }))
    await waitUntil(() => ids.at(-1) === published.at(-1), 'the event after the burst')
    report(`${adapter} burst-wrapped-write-eventsource`, {
      published: published.length,
      received: ids.length,
      slowClosed: running.hub.stats().slowClosed,
    })
    expect(ids).toEqual(published)
  })
})
