/** Replayed pages: encoded once for every reader, cut into writes of about 64 KiB, never stale. */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { MemoryHistory } from '../src/memory-history.js'
import { encodePage, WRITE_CHUNK_BYTES } from '../src/replay-pages.js'

function historyOf(sizes: readonly number[]): MemoryHistory {
  const history = new MemoryHistory({ maxEvents: 10_000 })
  for (const size of sizes) history.append({ event: undefined, data: 'x'.repeat(size), value: undefined })
  return history
}

describe('encodePage', () => {
  it('cuts a page into writes that hold every frame once, in order, each under 64 KiB plus one frame', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 30_000 }), { minLength: 1, maxLength: 40 }), (sizes) => {
        const history = historyOf(sizes)
        const events = history.read(`${history.epoch}-0`, sizes.length).events
        const chunks = encodePage(events)
        const written = Buffer.concat(chunks.map((chunk) => chunk.all))
        expect(written.equals(Buffer.concat(events.map((event) => event.frame)))).toBe(true)
        let first = 0
        for (const chunk of chunks) {
          expect(chunk.last - chunk.count + 1).toBe(first)
          const before = chunk.all.length - events[chunk.last]!.frame.length
          expect(before).toBeLessThan(WRITE_CHUNK_BYTES)
          first = chunk.last + 1
        }
        expect(first).toBe(events.length)
      }),
      { numRuns: 50 },
    )
  })

  it('combines small frames into writes of at least 64 KiB, all but the last', () => {
    // One write per frame would also stay under the upper bound above: pin the lower one too.
    const history = historyOf(Array.from({ length: 300 }, () => 500))
    const events = history.read(`${history.epoch}-0`, 300).events
    const chunks = encodePage(events)
    expect(WRITE_CHUNK_BYTES).toBe(64 * 1024)
    expect(chunks.length).toBe(Math.ceil(events.reduce((n, e) => n + e.frame.length, 0) / WRITE_CHUNK_BYTES))
    for (const chunk of chunks.slice(0, -1))
      expect(chunk.all.length).toBeGreaterThanOrEqual(WRITE_CHUNK_BYTES)
    expect(chunks.at(-1)!.last).toBe(events.length - 1)
  })

  it('ends a write as soon as it reaches exactly 64 KiB', () => {
    // A frame is `id: <epoch>-<seq>\ndata: <data>\n\n`: the epoch has 8 characters, so 23 bytes
    // around the data of events 1 to 9.
    const history = historyOf([1000, WRITE_CHUNK_BYTES - 2 * 23 - 1000, 10])
    const events = history.read(`${history.epoch}-0`, 3).events
    expect(events[0]!.frame.length + events[1]!.frame.length).toBe(WRITE_CHUNK_BYTES)
    expect(encodePage(events).map((chunk) => chunk.count)).toEqual([2, 1])
  })

  it('writes a frame that fills a write on its own as it is, without copying it', () => {
    const history = historyOf([WRITE_CHUNK_BYTES, 10, WRITE_CHUNK_BYTES])
    const events = history.read(`${history.epoch}-0`, 3).events
    const chunks = encodePage(events)
    expect(chunks.map((chunk) => chunk.count)).toEqual([1, 2])
    expect(chunks[0]!.all).toBe(events[0]!.frame)
  })

  it('encodes a page once for every reader, and frames each write as an HTTP/1.1 chunk once', () => {
    const history = historyOf(Array.from({ length: 300 }, () => 500))
    const from = `${history.epoch}-10`
    const first = history.read(from, 256)
    const second = history.read(from, 256)
    expect(second.events).toBe(first.events)
    const chunks = encodePage(first.events)
    expect(encodePage(second.events)).toBe(chunks)
    expect(chunks[0]!.framed).toBe(chunks[0]!.framed)
    expect(chunks[0]!.framed.toString('latin1')).toMatch(/^[0-9a-f]+\r\n/)
  })

  it('hands out a fresh page once the history changes, so no reader gets a stale one', () => {
    const history = historyOf([10, 10, 10])
    const from = `${history.epoch}-1`
    const before = history.read(from, 256)
    expect(before.done).toBe(true)
    history.append({ event: undefined, data: 'new', value: 'new' })
    const after = history.read(from, 256)
    expect(after.events).not.toBe(before.events)
    expect(after.events.map((event) => event.data)).toEqual(['x'.repeat(10), 'x'.repeat(10), 'new'])
  })
})
