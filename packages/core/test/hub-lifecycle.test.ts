/**
 * The hub over its life: the store it made (closed with it) or was given (left open, and possibly
 * without the optional hooks), what its stats count while connections come and go, the heartbeat
 * that runs while any connection is open, an iterable stream's head, and a shutdown that waits for
 * clients still reading before it cuts anyone off.
 */
import { describe, expect, it, vi } from 'vitest'
import { listen } from '../../../test/support/listen.js'
import { RawHttpClient } from '../../../test/support/raw-client.js'
import type { StreamItem } from '../src/iterable.js'
import { createMemoryStore, MemoryStore } from '../src/memory-store.js'
import type { SyncHistoryStore } from '../src/store.js'
import { closesAfterEach, serveHub } from './helpers/http.js'
import { cleanUpAfterEach, events, hub, sink } from './helpers/hubs.js'
import { flushTurn } from './helpers/memory-sink.js'

cleanUpAfterEach()
const { cleanups, hubFor, started } = closesAfterEach()

/** An iterable that yields nothing until `release()`, then `first`, and ends. */
function heldIterable() {
  let release!: () => void
  const gate = new Promise<void>((resolve) => {
    release = resolve
  })
  async function* held(): AsyncGenerator<StreamItem> {
    await gate
    yield 'first'
  }
  cleanups.push(() => release())
  return { iterable: held(), release }
}

describe('the store', () => {
  it('is closed with the hub when the hub made it: its responses are forgotten', async () => {
    const close = vi.spyOn(MemoryStore.prototype, 'close')
    const h = hub()
    const { id, done } = await h.responses.start(async function* () {
      yield 'only'
    })
    expect(await done).toBe('done')
    expect(await h.responses.status(id)).toBe('done')
    await h.close()
    expect(close).toHaveBeenCalledTimes(1)
    expect(await h.responses.status(id)).toBeUndefined()
  })

  it('is left open when it was given, for the next hub to take over', async () => {
    const store = createMemoryStore()
    const close = vi.spyOn(store, 'close')
    const first = hub({ store })
    const id = first.publish('s', { data: 'kept' })
    await first.close()
    expect(close).not.toHaveBeenCalled()
    const next = hub({ store })
    const s = sink()
    next.subscribe('s', s, { lastEventId: null })
    expect(events(s).map((e) => [e.id, e.data])).toEqual([[id, 'kept']])
  })

  it('may be a bare synchronous store, without attach, detach, watch or close', async () => {
    const inner = createMemoryStore()
    const bare: SyncHistoryStore = {
      synchronous: true,
      append: (stream, event) => inner.append(stream, event),
      read: (stream, after, limit) => inner.read(stream, after, limit),
    }
    const h = hub({ store: bare })
    const s = sink()
    h.subscribe('s', s)
    const id = h.publish('s', { data: 'x' })
    await flushTurn()
    expect(events(s).map((e) => e.id)).toEqual([id])
    await expect(h.close()).resolves.toBeUndefined()
    expect(s.ended).toBe(true)
  })
})

describe('stats', () => {
  it('counts an iterable stream as a connection, not as a subscriber', () => {
    const h = hub()
    h.streamIterable(sink(), heldIterable().iterable)
    expect(h.stats()).toMatchObject({ connections: 1, subscribers: 0 })
    h.subscribe('s', sink())
    expect(h.stats()).toMatchObject({ connections: 2, subscribers: 1 })
  })

  it('counts as slow-closed only the clients cut off for a full queue', async () => {
    const h = hub()
    const left = sink()
    const byClient = h.subscribe('s', left)
    const byApp = h.subscribe('s', sink())
    const byIterable = h.streamIterable(sink(), heldIterable().iterable)
    left.disconnect()
    byApp.close()
    byIterable.close()
    expect([await byClient.done, await byApp.done, await byIterable.done]).toEqual(['client', 'end', 'end'])
    await h.close()
    expect(h.stats()).toMatchObject({ connections: 0, slowClosed: 0 })
  })

  it("keeps a running response's stream followed until its producer ends", async () => {
    const h = hub()
    let finish!: () => void
    const finished = new Promise<void>((resolve) => {
      finish = resolve
    })
    async function* producer() {
      yield 'one'
      await finished
    }
    const { done } = await h.responses.start(producer())
    expect(h.stats().streams).toBe(1)
    finish()
    expect(await done).toBe('done')
    expect(h.stats().streams).toBe(0)
  })
})

describe('the heartbeat', () => {
  it('keeps beating for the connections left when one of two leaves, and stops with the last', () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] })
    const h = hub({ heartbeatInterval: 1000 })
    const stays = sink()
    const leaves = sink()
    h.subscribe('s', stays)
    h.subscribe('s', leaves)
    leaves.disconnect()
    const before = stays.parse().comments.length
    vi.advanceTimersByTime(3000)
    expect(stays.parse().comments.length).toBeGreaterThan(before)
    stays.disconnect()
    expect(vi.getTimerCount()).toBe(0)
  })
})

describe('an iterable stream', () => {
  it('sends its head and retry hint at once, before its first item', async () => {
    const h = hubFor({ retry: 1500 })
    const { iterable, release } = heldIterable()
    const server = await started(listen((req, res) => h.serve(req, res, iterable)))
    const client = new RawHttpClient(server.port)
    cleanups.push(() => client.destroy())
    await client.until(() => client.retries.length > 0, 2000)
    expect(client.status).toBe(200)
    expect(client.retries).toEqual([1500])
    expect(client.events).toEqual([])
    release()
    await client.waitForEnd()
    expect(client.messages()).toEqual(['first'])
  })
})

describe('close', () => {
  it('does not destroy a stream that finished within closeGrace', async () => {
    const h = hub({ closeGrace: 10_000 })
    const s = sink()
    h.subscribe('s', s)
    await h.close()
    expect(s.ended).toBe(true)
    expect(s.destroyed).toBe(false)
  })

  it('lets a client that reads slowly get the rest of its stream, its retry hint and a clean end', async () => {
    const h = hubFor({ closeGrace: 10_000, maxQueueBytes: 256 * 1024 * 1024 })
    const server = await started(serveHub(h, 's'))
    const client = new RawHttpClient(server.port)
    cleanups.push(() => client.destroy())
    await client.until(() => client.retries.length > 0)
    client.socket.pause()
    const data = 'x'.repeat(60_000)
    let published = 0
    // Enough that a megabyte waits in the server's own buffer, past what the kernel holds.
    while (h.stats().queuedBytes < 1024 * 1024 && published < 500) {
      h.publish('s', { data })
      published++
      await flushTurn()
    }
    expect(h.stats().queuedBytes).toBeGreaterThan(0)
    const closing = h.close({ retry: 5000 })
    await new Promise((resolve) => setTimeout(resolve, 50))
    client.socket.resume()
    await closing
    await client.waitForEnd()
    expect(client.ended).toBe(true)
    expect(client.events).toHaveLength(published)
    expect(client.retries).toHaveLength(2)
    expect(client.retries[1]).toBeGreaterThanOrEqual(2500)
    expect(client.retries[1]).toBeLessThanOrEqual(7500)
  })
})
