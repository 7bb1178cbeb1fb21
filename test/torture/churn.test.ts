/**
 * Guarantee: clients that come and go leave nothing behind: no subscriber, stream, socket, timer or
 * listener, and no memory that grows with the number of connections served.
 *
 * Thousands of connect/disconnect cycles against a server in a child process, in six ways: a
 * stream read then closed, a request cut in the middle of its headers, a resume from an old
 * position cut (RST) in the middle of its replay, a request dropped before any answer, a client
 * half-close (FIN) after the head, a malformed resume position. Events are published throughout.
 */
import { connect } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { RawHttpClient } from '../support/raw-client.js'
import { waitUntil } from '../support/wait.js'
import { ADAPTERS } from './helpers/app.mjs'
import { type ChildStats, type ServerProcess, startServerProcess } from './helpers/child.js'
import { KiB, MiB, mib, pool, report, waitForValue } from './helpers/wait.js'

const ROUNDS = 2
const CYCLES_PER_ROUND = 1000
const CONCURRENCY = 40
const HISTORY_EVENTS = 2000
const KINDS = ['read', 'half-headers', 'mid-replay', 'drop-at-once', 'half-close', 'malformed'] as const
type Kind = (typeof KINDS)[number]

/** Multiset of active resource types, sorted, for comparison. */
const resourceCounts = (resources: string[]) =>
  Object.fromEntries(
    [...new Set(resources)].sort().map((type) => [type, resources.filter((r) => r === type).length]),
  )

async function cycle(port: number, kind: Kind, oldId: string): Promise<void> {
  if (kind === 'half-headers') {
    const socket = connect({ port, host: '127.0.0.1' })
    socket.on('error', () => {})
    await new Promise<void>((resolve) => socket.once('connect', resolve))
    socket.write('GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/ev')
    await new Promise((resolve) => setImmediate(resolve))
    socket.destroy()
    return
  }
  const client = new RawHttpClient(port, {
    light: kind === 'mid-replay',
    ...(kind === 'mid-replay' ? { headers: [`Last-Event-ID: ${oldId}`] } : {}),
    ...(kind === 'malformed' ? { path: '/events?lastEventId=%C3%A9t%C3%A9' } : {}),
  })
  try {
    if (kind === 'drop-at-once') {
      await client.connected()
      return
    }
    await waitUntil(
      () => client.bodyBytes > 0 || client.closed,
      () => `the first bytes (${kind}): ${client.describe()}`,
    )
    expect(client.status, kind).toBe(200)
    if (kind === 'mid-replay') {
      client.socket.resetAndDestroy()
      return
    }
    if (kind === 'half-close') {
      client.socket.end()
      await client.waitForEnd()
      return
    }
  } finally {
    client.destroy()
  }
}

describe.each(ADAPTERS)('%s: churn', (adapter) => {
  let server: ServerProcess

  beforeAll(async () => {
    server = await startServerProcess(adapter, {
      // A short heartbeat: its timer is created with the first connection and cleared with the last,
      // thousands of times here.
      hub: { heartbeatInterval: 100, retry: 1000, history: { maxEvents: HISTORY_EVENTS } },
    })
  })

  afterAll(() => server?.kill())

  it('leaves no subscriber, socket, timer or listener behind, and no memory that grows with the cycles', async () => {
    const warm = await server.call<{ first: string; last: string }>('publish', {
      count: HISTORY_EVENTS,
      size: KiB,
    })
    const epoch = warm.last.split('-')[0]
    // A resume position with most of the history after it (~2 MiB to replay); once publishing
    // evicts it, the same request takes the gap path, which replays everything retained.
    const oldId = `${epoch}-${Number(warm.last.split('-')[1]) - HISTORY_EVENTS + 100}`

    // One cycle of each kind first, so that lazily created things (parsers, pools) are in the baseline.
    for (const kind of KINDS) await cycle(server.port, kind, oldId)
    const idle = (s: ChildStats) =>
      s.hub.connections === 0 && s.hub.subscribers === 0 && s.hub.streams === 0 && s.connections === 0
    await waitForValue(() => server.stats(), idle, 'the warm-up cycles to be released', 15_000)
    await server.gc()
    const baseline = await server.stats()
    const baselineRss = server.rss()

    const started = performance.now()
    const rounds: { heapUsed: number; external: number; rss: number }[] = []
    let finalStats: ChildStats | undefined
    for (let round = 0; round < ROUNDS; round++) {
      await server.call('startPublisher', { tickMs: 20, minBurst: 1, maxBurst: 3, size: KiB })
      await pool(CYCLES_PER_ROUND, CONCURRENCY, (i) => cycle(server.port, KINDS[i % KINDS.length]!, oldId))
      await server.call('stopPublisher', { withIds: false })

      // Everything the cycles opened is released: core's gauges, the server's sockets.
      finalStats = await waitForValue(
        () => server.stats(),
        idle,
        `round ${round}: no connection, subscriber or stream left`,
        15_000,
      )
      const memory = await server.gc()
      rounds.push({ heapUsed: memory.heapUsed, external: memory.external, rss: server.rss() })
    }
    const elapsed = performance.now() - started

    // Handles (sockets, timers, the heartbeat interval) are back to the baseline.
    const after = await waitForValue(
      () => server.stats(),
      (s) =>
        JSON.stringify(resourceCounts(s.resources)) === JSON.stringify(resourceCounts(baseline.resources)),
      `active resources back to ${JSON.stringify(resourceCounts(baseline.resources))}`,
      10_000,
    )
    expect(after.serverListeners).toEqual(baseline.serverListeners)
    expect(finalStats!.hub.errors).toBe(0)

    const heapGrowth = rounds.at(-1)!.heapUsed - baseline.memory.heapUsed
    const perRound = rounds.at(-1)!.heapUsed - rounds[0]!.heapUsed
    report(`${adapter} churn`, {
      cycles: ROUNDS * CYCLES_PER_ROUND,
      seconds: elapsed / 1000,
      published: finalStats!.hub.published,
      replayed: finalStats!.hub.replayed,
      gaps: finalStats!.hub.gaps,
      heapBaseline: mib(baseline.memory.heapUsed),
      heapAfter: mib(rounds.at(-1)!.heapUsed),
      heapGrowth: mib(heapGrowth),
      heapGrowthLastRound: mib(perRound),
      externalGrowth: mib(rounds.at(-1)!.external - baseline.memory.external),
      rssBaseline: mib(baselineRss),
      rssAfterRound1: mib(rounds[0]!.rss),
      rssAfter: mib(rounds.at(-1)!.rss),
      resources: JSON.stringify(resourceCounts(after.resources)),
    })
    // Generous (the collector keeps some slack), yet a leak of even 1 KiB per cycle would pass 2 MiB.
    expect(heapGrowth).toBeLessThan(4 * MiB)
    expect(Math.abs(perRound)).toBeLessThan(2 * MiB)
    // Buffers (frames, replay chunks) live outside the V8 heap: none may be left either.
    expect(rounds.at(-1)!.external - baseline.memory.external).toBeLessThan(4 * MiB)
  }, 120_000)
})
