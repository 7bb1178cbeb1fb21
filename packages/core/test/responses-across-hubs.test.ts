/**
 * Responses on one asynchronous store shared by two hubs, as two instances share Redis: the stream
 * of a response produced on one hub stays watched there while its producer runs, though no client
 * follows it, so that a cancel made through the other hub reaches the producer by the store's
 * delivery and stops it (the Redis suite shows the same over a real server).
 */
import { describe, expect, it } from 'vitest'
import { within } from '../../../test/support/wait.js'
import { cleanUpAfterEach, hub } from './helpers/hubs.js'
import { SharedMemory } from './helpers/shared-memory-store.js'

cleanUpAfterEach()

/** A producer that sends one item, then waits until it is aborted, and records that it was. */
function waitsForAbort() {
  const record = { aborted: false }
  async function* producer(signal: AbortSignal) {
    yield 'one'
    await new Promise((resolve) => signal.addEventListener('abort', resolve))
    record.aborted = signal.aborted
  }
  return { producer, record }
}

describe('a response produced on one hub of a shared store', () => {
  it('is stopped by a cancel made through the other hub, delivered by the store', async () => {
    const shared = new SharedMemory()
    const producing = shared.view()
    const a = hub({ store: producing })
    const b = hub({ store: shared.view() })
    const { producer, record } = waitsForAbort()
    const { id, done } = await a.responses.start(producer)
    expect(producing.watched.has(`rewind:response:${id}`)).toBe(true)
    expect(await b.responses.cancel(id)).toBe('cancelled')
    expect(await within(done, 'the producer on the first hub to stop', 2000)).toBe('cancelled')
    expect(record.aborted).toBe(true)
    // Stopped, it no longer keeps the stream watched.
    expect(producing.watched.size).toBe(0)
    expect(a.stats().streams).toBe(0)
    expect(await a.responses.status(id)).toBe('cancelled')
  })
})
