/**
 * Guarantee: a client that is cut off reconnects with its Last-Event-ID and gets exactly what it
 * missed, then the live events: no gap, no duplicate, whatever the moment of the cut. When history
 * no longer holds its position, it is told so in-band (`rewind-gap`) and nothing else is lost.
 *
 * ~30 `eventsource` clients (the npm package, which reconnects by itself with `Last-Event-ID`) follow
 * a stream through a TCP proxy that cuts every connection at a random moment 100-600 ms after it
 * opened (a FIN or an RST, mid-head, mid-frame or mid-replay), while the server publishes a few
 * hundred events per second in bursts of random size. Half of the clients wait up to a second
 * before each reconnection, so they resume into longer replays that live publishes interleave with.
 */
import { EventSource, type FetchLike } from 'eventsource'
import { afterEach, describe, expect, it } from 'vitest'
import { sleep, waitUntil } from '../support/wait.js'
import { ADAPTERS } from './helpers/app.mjs'
import { type ServerProcess, startServerProcess } from './helpers/child.js'
import { type ChaosProxy, startChaosProxy } from './helpers/proxy.js'
import { report } from './helpers/wait.js'

const CLIENTS = 30
/** Reconnection delay the hub sends (`retry:`): short, so reconnections are many and quick. */
const RETRY_MS = 30

interface Received {
  type: 'message' | 'rewind-gap'
  id: string
  data: string
}

interface Follower {
  source: EventSource
  log: Received[]
  opens: number
}

interface ChaosRun {
  followers: Follower[]
  published: string[]
  cuts: number
  reconnectsDuringChaos: number
  server: ServerProcess
}

/** The sequence number of an in-memory id (`<epoch>-<seq>`). */
const seq = (id: string) => Number(id.slice(id.lastIndexOf('-') + 1))

describe.each(ADAPTERS)('%s: chaos resume', (adapter) => {
  let server: ServerProcess | undefined
  let proxy: ChaosProxy | undefined
  let followers: Follower[] = []

  afterEach(async () => {
    for (const follower of followers) follower.source.close()
    followers = []
    await proxy?.close()
    server?.kill()
  })

  /** Starts a server and the proxy, runs the clients through `publishMs` of chaos, and lets them converge. */
  async function chaos(maxEvents: number, publishMs: number): Promise<ChaosRun> {
    server = await startServerProcess(adapter, {
      hub: { retry: RETRY_MS, heartbeatInterval: 1000, history: { maxEvents } },
    })
    proxy = await startChaosProxy(server.port, { minMs: 100, maxMs: 600 })
    const url = `http://127.0.0.1:${proxy.port}/events`
    for (let i = 0; i < CLIENTS; i++) {
      const slow: FetchLike = async (input, init) => {
        await sleep(Math.random() * 1000)
        return fetch(input, init)
      }
      const source = new EventSource(url, i % 2 === 1 ? { fetch: slow } : {})
      const follower: Follower = { source, log: [], opens: 0 }
      source.addEventListener('open', () => follower.opens++)
      for (const type of ['message', 'rewind-gap'] as const) {
        source.addEventListener(type, (event) =>
          follower.log.push({ type, id: event.lastEventId, data: String(event.data) }),
        )
      }
      followers.push(follower)
    }
    await waitUntil(() => followers.every((f) => f.opens > 0), 'every client to open once', 15_000)

    await server.call('startPublisher', { tickMs: 10, minBurst: 1, maxBurst: 9 })
    await sleep(publishMs)
    const { ids: published } = await server.call<{ ids: string[] }>('stopPublisher')
    const reconnectsDuringChaos = followers.reduce((sum, f) => sum + f.opens - 1, 0)
    const cuts = proxy.cuts
    // No more cuts: every client must now converge on the last event.
    proxy.calm()
    const last = published.at(-1)
    await waitUntil(
      () => followers.every((f) => f.log.at(-1)?.id === last),
      () =>
        `every client to reach the last event ${last}; behind: ${followers
          .filter((f) => f.log.at(-1)?.id !== last)
          .map((f) => `${f.log.at(-1)?.id} (${f.log.length} events, state ${f.source.readyState})`)
          .join(', ')}`,
      30_000,
    )
    for (const [n, follower] of followers.entries()) {
      expect(follower.source.readyState, `client ${n} gave up`).not.toBe(EventSource.CLOSED)
    }
    // The chaos must have been real for the checks to mean anything.
    expect(reconnectsDuringChaos).toBeGreaterThanOrEqual(CLIENTS * 3)
    return { followers, published, cuts, reconnectsDuringChaos, server }
  }

  it('gives every client every event from its first one on, exactly once and in order, across random cuts', async () => {
    // History larger than what is published: every resume position is retained, so the only
    // correct outcome is the exact sequence, and no gap signal at all.
    const run = await chaos(20_000, 6000)
    const { published } = run
    const position = new Map(published.map((id, index) => [id, index]))
    let checked = 0
    for (const [n, follower] of run.followers.entries()) {
      expect(
        follower.log.filter((r) => r.type === 'rewind-gap'),
        `client ${n} was told of a gap`,
      ).toEqual([])
      const start = position.get(follower.log[0]!.id)
      expect(start, `client ${n}: first id ${follower.log[0]!.id} was never published`).toBeDefined()
      // The first received id onwards must be exactly the published sequence; data is the index.
      let mismatch: string | undefined
      for (let k = 0; k < follower.log.length && mismatch === undefined; k++) {
        const expected = published[start! + k]
        const got = follower.log[k]!
        if (got.id !== expected) {
          const around = follower.log
            .slice(Math.max(0, k - 2), k + 3)
            .map((r) => r.id)
            .join(' ')
          mismatch = `client ${n}, event #${k}: got ${got.id}, expected ${expected} (around: ${around})`
        } else if (got.data !== String(start! + k)) {
          mismatch = `client ${n}, event #${k} (${expected}): data ${got.data}, expected ${start! + k}`
        }
      }
      expect(mismatch).toBeUndefined()
      expect(start! + follower.log.length).toBe(published.length)
      checked += follower.log.length
    }
    const stats = await run.server.stats()
    expect(stats.hub.gaps).toBe(0)
    expect(stats.hub.replayed).toBeGreaterThan(0)
    report(`${adapter} chaos-resume`, {
      clients: CLIENTS,
      published: published.length,
      publishRatePerS: published.length / 6,
      proxyCuts: run.cuts,
      reconnects: run.followers.reduce((sum, f) => sum + f.opens - 1, 0),
      eventsChecked: checked,
      replayedFromHistory: stats.hub.replayed,
      liveDeliveries: stats.hub.delivered,
      gaps: stats.hub.gaps,
    })
  }, 90_000)

  it('loses events only past history, and always says so: every jump is announced by a rewind-gap with the exact position', async () => {
    // 100 events of history at a few hundred per second: clients that stay away ~a second fall out of it.
    const run = await chaos(100, 4000)
    let checked = 0
    let signalled = 0
    let lost = 0
    for (const [n, follower] of run.followers.entries()) {
      const first = follower.log[0]!
      expect(first.type, `client ${n} starts with an event`).toBe('message')
      let position = seq(first.id)
      for (const [k, got] of follower.log.slice(1).entries()) {
        const where = `client ${n}, entry #${k + 1} (${got.type} ${got.id}) after position ${position}`
        if (got.type === 'rewind-gap') {
          // Only an evicted position, always ahead of where the client was, never the same twice.
          expect(got.data, where).toBe('evicted')
          expect(seq(got.id), where).toBeGreaterThan(position)
          lost += seq(got.id) - position
          signalled++
        } else {
          // No duplicate, no silent jump: the next event after the position (or the gap id).
          expect(seq(got.id), where).toBe(position + 1)
          expect(got.data, where).toBe(String(seq(got.id) - 1))
        }
        position = seq(got.id)
      }
      expect(position).toBe(seq(run.published.at(-1)!))
      checked += follower.log.length
    }
    const stats = await run.server.stats()
    expect(stats.hub.gaps).toBe(signalled)
    report(`${adapter} chaos-evicting`, {
      clients: CLIENTS,
      history: 100,
      published: run.published.length,
      proxyCuts: run.cuts,
      reconnects: run.followers.reduce((sum, f) => sum + f.opens - 1, 0),
      entriesChecked: checked,
      gapSignals: signalled,
      eventsLostWithSignal: lost,
      eventsLostSilently: 0,
    })
  }, 90_000)
})
