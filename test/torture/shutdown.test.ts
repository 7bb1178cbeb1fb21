/**
 * Guarantee: shutting down under load is prompt: with thousands of open streams and events being
 * published, `events.close({ server })` (Express) or `fastify.close()` (Fastify) resolves within
 * about a second (`closeGrace`, 1 s by default, bounds the wait for clients that do not read),
 * every client sees its stream end, and the process holds nothing afterwards: it exits by itself.
 * A few of the clients do not read at all: shutdown waits `closeGrace` for them, then cuts them.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { RawHttpClient } from '../support/raw-client.js'
import { sleep, waitUntil } from '../support/wait.js'
import { ADAPTERS } from './helpers/app.mjs'
import { type ServerProcess, startServerProcess } from './helpers/child.js'
import { openLightStreams } from './helpers/streams.js'
import { report, waitForValue } from './helpers/wait.js'

const STREAMS = 3000
/** Clients among them that do not read: `closeGrace` bounds how long shutdown waits for them. */
const PAUSED = 10

interface CloseResult {
  ms: number
  hubMs: number
  publisherStoppedBy: string | undefined
  hub: { connections: number; subscribers: number; streams: number; delivered: number; published: number }
  listening: boolean
  resources: Record<string, number>
}

describe.each(ADAPTERS)('%s: shutdown under load', (adapter) => {
  let server: ServerProcess
  const clients: RawHttpClient[] = []
  const paused: RawHttpClient[] = []

  beforeAll(async () => {
    server = await startServerProcess(adapter, {
      hub: { heartbeatInterval: 1000, retry: 1000 },
      files: STREAMS + 1000,
    })
  })

  afterAll(() => {
    for (const client of [...clients, ...paused]) client.destroy()
    server?.kill()
  })

  it(`closes ${STREAMS} busy streams promptly, ends every one of them and leaves no handle`, async () => {
    await openLightStreams(server.port, STREAMS, clients)
    for (let i = 0; i < PAUSED; i++) {
      const client = new RawHttpClient(server.port, { light: true, path: '/events?stream=big' })
      paused.push(client)
      await waitUntil(() => client.bodyBytes > 0, 'a paused stream to open')
      client.socket.pause()
    }
    // Fill their socket buffers and leave bytes queued in the server (under the 1 MiB limit), so
    // that their streams cannot finish: only closeGrace ends them.
    for (let i = 0; i < 200; i++) {
      await server.call('publish', { stream: 'big', count: 2, size: 32 * 1024 })
      await sleep(5)
      if ((await server.stats()).hub.queuedBytes >= PAUSED * 256 * 1024) break
    }
    const queuedForPaused = (await server.stats()).hub.queuedBytes
    expect(queuedForPaused).toBeGreaterThanOrEqual(PAUSED * 256 * 1024)
    await waitForValue(
      () => server.stats(),
      (s) => s.hub.subscribers === STREAMS + PAUSED,
      `${STREAMS + PAUSED} subscribers`,
      30_000,
    )

    // Publishing in progress: ~40 events per second to every stream, and still going when close() starts.
    await server.call('startPublisher', { tickMs: 50, minBurst: 1, maxBurst: 3, size: 64 })
    await waitUntil(
      () => clients.every((c) => c.dataLines > 0),
      'every stream to receive live events',
      15_000,
    )
    await sleep(1000)

    const closing = performance.now()
    const closed = server.call<CloseResult>('close')
    await waitUntil(
      () => clients.every((c) => c.ended || c.closed),
      () => `every stream to end; ${clients.filter((c) => !c.ended && !c.closed).length} still open`,
      15_000,
    )
    const allEndedMs = performance.now() - closing
    const result = await closed
    const cleanEnds = clients.filter((c) => c.ended).length

    expect(result.hub).toMatchObject({ connections: 0, subscribers: 0, streams: 0 })
    expect(result.listening).toBe(false)
    // The publisher kept going until the hub refused: publishing after close() throws ERR_CLOSED.
    expect(result.publisherStoppedBy).toBe('ERR_CLOSED')
    // Every client got the end of its body (the chunked terminator), not a reset.
    expect(cleanEnds).toBe(STREAMS)
    await waitUntil(() => clients.every((c) => c.closed), 'every socket to close', 10_000)

    // The clients that did not read were cut after closeGrace: once they read, they find their
    // connection closed (an EventSource reconnects, and resumes from its last id elsewhere).
    for (const client of paused) client.socket.resume()
    await waitUntil(
      () => paused.every((c) => c.closed),
      'the paused clients to see their connection close',
      10_000,
    )
    const pausedCut = paused.filter((c) => !c.ended).length

    // Nothing of the app is left: with the IPC channel gone, the process exits by itself.
    await server.call('forgetPublisher')
    server.child.disconnect()
    const code = await Promise.race([server.exited, sleep(5000).then(() => 'still running' as const)])
    expect(code, `left running with: ${JSON.stringify(result.resources)}`).toBe(0)

    report(`${adapter} shutdown`, {
      streams: STREAMS,
      pausedClients: PAUSED,
      queuedForPausedMiB: queuedForPaused / 1024 / 1024,
      pausedCutAfterGrace: pausedCut,
      closeMs: result.ms,
      hubCloseMs: result.hubMs,
      allStreamsEndedMs: allEndedMs,
      cleanEnds,
      publishedBeforeClose: result.hub.published,
      resourcesAfterClose: JSON.stringify(result.resources),
    })
    // Generous: the machine is shared; the figure is reported above. It cannot be shorter than
    // closeGrace (1 s) here, which is what clients that do not read are given.
    expect(result.ms).toBeLessThan(5000)
    expect(result.hubMs).toBeGreaterThanOrEqual(990)
  }, 120_000)
})
