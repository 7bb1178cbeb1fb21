/** Catch-up from history over real sockets: what a client that does not read costs during replay. */
import { afterEach, describe, expect, it } from 'vitest'
import type { Listening } from '../../../test/support/listen.js'
import { RawHttpClient } from '../../../test/support/raw-client.js'
import { waitUntil } from '../../../test/support/wait.js'
import { createHub, HUB_DEFAULTS, type Hub } from '../src/index.js'
import { serveHub } from './helpers/http.js'

const cleanups: (() => unknown)[] = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

/** Replayed frames are written in chunks of about this size (see `WRITE_CHUNK_BYTES`). */
const CHUNK_BYTES = 64 * 1024

describe('replay to a client that does not read', () => {
  it('queues at most maxQueueBytes plus one chunk, however many small events history holds', async () => {
    const events = 100_000
    const hub = createHub({
      heartbeatInterval: 0,
      retry: null,
      history: { maxEvents: events },
    }) as Hub<string>
    cleanups.push(() => hub.close())
    // Frames of about 120 bytes: a page of 256 is under one chunk, so no write inside a page fills it.
    const data = 'x'.repeat(100)
    const first = hub.publish('room', { data })
    for (let i = 1; i < events; i++) hub.publish('room', { data })
    const server: Listening = await serveHub(hub, 'room')
    cleanups.push(() => server.close())

    // Resume from the oldest event: about 11.5 MiB, in pages under one chunk.
    const client = new RawHttpClient(server.port, { path: '/', headers: [`last-event-id: ${first}`] })
    cleanups.push(() => client.destroy())
    client.socket.pause()
    await waitUntil(() => hub.stats().subscribers === 1, 'hub.stats().subscribers === 1', 5000)
    // Let replay run as far as it goes while the kernel's buffers fill and nothing drains them.
    let peak = 0
    let still = 0
    let last = -1
    for (let i = 0; i < 200 && still < 10; i++) {
      await new Promise((resolve) => setTimeout(resolve, 10))
      const queued = hub.stats().queuedBytes
      peak = Math.max(peak, queued)
      still = queued === last ? still + 1 : 0
      last = queued
    }
    console.log(`queued for a client that does not read: ${(peak / 2 ** 20).toFixed(2)} MiB`)
    expect(peak).toBeLessThanOrEqual(HUB_DEFAULTS.maxQueueBytes + CHUNK_BYTES)
    // It is paused, not cut: history holds the rest until it reads.
    expect(hub.stats().slowClosed).toBe(0)
    expect(hub.stats().subscribers).toBe(1)

    // Once it reads, it gets every event exactly once, in order.
    client.socket.resume()
    await client.until(() => client.events.length === events - 1, 20_000)
    const seqs = client.events.map((event) => Number((event.id ?? '').split('-')[1]))
    expect(seqs[0]).toBe(2)
    expect(seqs.every((seq, i) => seq === i + 2)).toBe(true)
  })
})
