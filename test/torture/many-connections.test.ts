/**
 * Guarantee: thousands of idle subscribers are cheap and stay served: one shared heartbeat timer
 * reaches every one of them (an idle stream hears something at least every two periods), a publish
 * reaches all of them, and each costs the server a few KiB.
 *
 * The server runs in a child process (RSS from /proc); the clients are raw sockets in this process.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { RawHttpClient } from '../support/raw-client.js'
import { waitUntil } from '../support/wait.js'
import { ADAPTERS } from './helpers/app.mjs'
import { type ServerProcess, startServerProcess } from './helpers/child.js'
import { openLightStreams } from './helpers/streams.js'
import { KiB, report, waitForValue } from './helpers/wait.js'

const CONNECTIONS = 4000
const HEARTBEAT_MS = 500

describe.each(ADAPTERS)('%s: many connections', (adapter) => {
  let server: ServerProcess
  const clients: RawHttpClient[] = []

  beforeAll(async () => {
    server = await startServerProcess(adapter, {
      hub: { heartbeatInterval: HEARTBEAT_MS },
      // Raised through `ulimit -n` only if this machine's soft limit is lower.
      files: CONNECTIONS + 1000,
    })
  })

  afterAll(() => {
    for (const client of clients) client.destroy()
    server?.kill()
  })

  it(`keeps ${CONNECTIONS} idle subscribers alive with heartbeats and reaches all of them with a publish`, async () => {
    // Warm up the code paths (and the history) so the baseline holds them.
    await server.call('publish', { count: 10, size: 100 })
    const warm = new RawHttpClient(server.port, { light: true })
    await waitUntil(() => warm.bodyBytes > 0, 'a warm-up stream')
    warm.destroy()
    await waitForValue(
      () => server.stats(),
      (s) => s.hub.connections === 0 && s.connections === 0,
      'warm-up released',
    )
    const before = await server.gc()
    const baselineRss = server.rss()

    const opening = performance.now()
    await openLightStreams(server.port, CONNECTIONS, clients)
    const openMs = performance.now() - opening
    expect(clients.filter((c) => c.status !== 200 || c.closed)).toHaveLength(0)
    const stats = await waitForValue(
      () => server.stats(),
      (s) => s.hub.subscribers === CONNECTIONS,
      `${CONNECTIONS} subscribers`,
      30_000,
    )
    expect(stats.connections).toBe(CONNECTIONS)

    const memory = await server.gc()
    const rss = server.rss()
    const perConnection = (rss - baselineRss) / CONNECTIONS
    const livePerConnection =
      (memory.heapUsed + memory.external - before.heapUsed - before.external) / CONNECTIONS

    // Heartbeats: every idle stream hears one within two periods (plus slack for a busy machine).
    const counts = clients.map((c) => c.comments.length)
    const waiting = performance.now()
    await waitUntil(
      () => clients.every((c, i) => c.comments.length > counts[i]!),
      () =>
        `a heartbeat on every stream; ${clients.filter((c, i) => c.comments.length <= counts[i]!).length} still silent`,
      2 * HEARTBEAT_MS + 4000,
    )
    const heartbeatMs = performance.now() - waiting

    // A publish reaches every one of them.
    const published = performance.now()
    await server.call('publish', { count: 1, size: 16 })
    await waitUntil(
      () => clients.every((c) => c.dataLines >= 1),
      () => `the event on every stream; ${clients.filter((c) => c.dataLines < 1).length} without it`,
      10_000,
    )
    const fanOutMs = performance.now() - published
    expect(clients.every((c) => c.dataLines === 1 && !c.closed)).toBe(true)

    report(`${adapter} many-connections`, {
      connections: CONNECTIONS,
      openSeconds: openMs / 1000,
      rssBaselineMiB: baselineRss / KiB / KiB,
      rssPerConnectionKiB: perConnection / KiB,
      livePerConnectionKiB: livePerConnection / KiB,
      heartbeatAllWithinMs: heartbeatMs,
      publishToAllMs: fanOutMs,
    })
    // Generous bounds: what matters is that it is a few KiB, not a buffer per client.
    expect(perConnection).toBeLessThan(64 * KiB)

    for (const client of clients) client.destroy()
    await waitForValue(
      () => server.stats(),
      (s) => s.hub.connections === 0 && s.connections === 0,
      'every connection released',
      30_000,
    )
  }, 120_000)
})
