/**
 * What every connection shares, whatever it follows: how it ends (once, with the first reason),
 * what it leaves on the sink afterwards (no listeners, no bytes), a response the application ended
 * itself, and waiting for a slow client to drain.
 */
import { PassThrough, Writable } from 'node:stream'
import { text } from 'node:stream/consumers'
import { describe, expect, it } from 'vitest'
import { waitUntil, within } from '../../../test/support/wait.js'
import type { CloseReason, HubOptions } from '../src/index.js'
import { cleanUpAfterEach, events, hub, publishAll, sink } from './helpers/hubs.js'
import { flushTurn, parseStream } from './helpers/memory-sink.js'

cleanUpAfterEach()

/** A hub without a retry hint, whose disconnections are recorded with their reasons. */
function recording(options: HubOptions = {}) {
  const disconnects: CloseReason[] = []
  const h = hub({ retry: null, onDisconnect: ({ reason }) => disconnects.push(reason), ...options })
  return { h, disconnects }
}

/** The data of the events in a body. */
function dataOf(body: string): string[] {
  return parseStream(body).events.map((event) => event.data)
}

/**
 * A Node stream as a plain sink, with the errors it emits. Nothing reads it until the test does,
 * once it has ended: a PassThrough read to its end closes, which the hub would take for the client
 * leaving.
 */
function passThrough() {
  const out = new PassThrough()
  const errors: unknown[] = []
  out.on('error', (error) => errors.push(error))
  return { out, errors, sink: out }
}

/**
 * A client that reads only when the test says so: every write waits for `release()`. With a large
 * `highWaterMark`, writes keep returning true while the bytes pile up (a big socket buffer).
 */
function slowClient(highWaterMark: number) {
  const held: (() => void)[] = []
  const out = new Writable({
    highWaterMark,
    write(_chunk, _encoding, callback) {
      held.push(() => callback())
    },
  })
  return {
    out,
    held,
    sink: out,
    /** Lets the oldest write through, as a client reading it. */
    release: () => held.shift()?.(),
  }
}

describe('done', () => {
  it('resolves every promise read from it before the end with the reason', async () => {
    const h = hub()
    const s = sink()
    const sub = h.subscribe('s', s)
    const first = sub.done
    const second = sub.done
    s.disconnect()
    expect(await within(first, 'the first promise of done', 1000)).toBe('client')
    expect(await within(second, 'the second promise of done', 1000)).toBe('client')
  })

  it('keeps the first reason: closing after the client left changes nothing', async () => {
    const { h, disconnects } = recording()
    const { out, sink: s } = passThrough()
    const sub = h.subscribe('s', s)
    out.destroy()
    await waitUntil(() => disconnects.length > 0, 'the client to be seen leaving')
    sub.close()
    expect(await sub.done).toBe('client')
    expect(disconnects).toEqual(['client'])
  })
})

describe('after the end', () => {
  it("removes the listeners it put on the sink's 'close' and 'error'", async () => {
    const h = hub()
    const { out, sink: s } = passThrough()
    const before = { close: out.listenerCount('close'), error: out.listenerCount('error') }
    const sub = h.subscribe('s', s)
    expect(out.listenerCount('close')).toBe(before.close + 1)
    expect(out.listenerCount('error')).toBe(before.error + 1)
    sub.close()
    expect(await sub.done).toBe('end')
    expect({ close: out.listenerCount('close'), error: out.listenerCount('error') }).toEqual(before)
  })

  it('writes nothing more once a filter closed the subscription during a delivery', async () => {
    const h = hub()
    // This sink does not say it was ended (no `writableEnded`): only the connection's state stops the write.
    const s = sink()
    const sub = h.subscribe('s', s, {
      filter: (event) => {
        if (event.data === 'b') sub.close()
        return true
      },
    })
    publishAll(h, 's', ['a', 'b', 'c'])
    await flushTurn()
    expect(await sub.done).toBe('end')
    expect(s.writesAfterEnd).toBe(0)
    expect(events(s)).toEqual([])
  })
})

describe('a response the application ended itself', () => {
  it('ends the subscription with reason end at the next publish, writing nothing more', async () => {
    const { h, disconnects } = recording()
    const { out, errors, sink: s } = passThrough()
    const sub = h.subscribe('s', s)
    h.publish('s', { data: 'before' })
    await flushTurn()
    out.end()
    h.publish('s', { data: 'after' })
    await flushTurn()
    expect(await within(sub.done, 'the subscription to end', 1000)).toBe('end')
    expect(disconnects).toEqual(['end'])
    expect(dataOf(await text(out))).toEqual(['before'])
    expect(errors).toEqual([])
  })

  it('ends a silent subscription with reason end at the next heartbeat, writing no comment', async () => {
    const { h, disconnects } = recording({ heartbeatInterval: 20 })
    const { out, errors, sink: s } = passThrough()
    const sub = h.subscribe('s', s)
    out.end()
    expect(await within(sub.done, 'a heartbeat to end the subscription', 2000)).toBe('end')
    expect(disconnects).toEqual(['end'])
    // Only the position a fresh client is sent on opening: no heartbeat comment after the end.
    expect(await text(out)).toMatch(/^id:[^\n]*\n\n$/)
    expect(errors).toEqual([])
  })

  it("ends an iterable stream with reason end, and neither writes nor waits for a 'drain' afterwards", async () => {
    const { h, disconnects } = recording()
    const { out, errors, sink: s } = passThrough()
    let next: (() => void) | undefined
    let finished = false
    async function* items() {
      try {
        yield 'one'
        await new Promise<void>((resolve) => {
          next = resolve
        })
        yield 'two'
        yield 'three'
      } finally {
        finished = true
      }
    }
    const sub = h.streamIterable(s, items())
    await waitUntil(() => next !== undefined, 'the first item to be written')
    out.end()
    next!()
    expect(await within(sub.done, 'the stream to end', 1000)).toBe('end')
    expect(disconnects).toEqual(['end'])
    await waitUntil(() => finished, "the generator's finally block")
    await flushTurn()
    // The write that found the response ended must not leave a waiter on a 'drain' that never comes.
    expect(out.listenerCount('drain')).toBe(0)
    expect(dataOf(await text(out))).toEqual(['one'])
    expect(errors).toEqual([])
  })
})

describe('replay into a response the application ended', () => {
  // 200 events of 3 KiB: one page, about 600 KiB, in writes of 64 KiB. A wrapper of the sink's
  // write (a body limit, say) ends the response once 300 KiB have gone out. The client has read none
  // of them, so the next write, refused because the response ended, finds the replay buffer full:
  // the page stops there instead of running through its remaining events.
  const EVENTS = 200
  const ENOUGH = 300 * 1024

  /** A slow client with room for everything, whose application ends the response after `ENOUGH` bytes. */
  function endedAfterEnough() {
    const client = slowClient(16 * 1024 * 1024)
    let sent = 0
    const write = client.out.write.bind(client.out) as (chunk: Uint8Array) => boolean
    client.out.write = ((chunk: Uint8Array) => {
      const ok = write(chunk)
      sent += chunk.length
      if (sent >= ENOUGH) client.out.end()
      return ok
    }) as typeof client.out.write
    return client
  }

  for (const filtered of [false, true]) {
    it(`stops at the first write after the end${filtered ? ', with a filter' : ''}`, async () => {
      const h = hub({ retry: null, history: { maxEvents: 1000, maxBytes: 64 * 1024 * 1024 } })
      const ids = publishAll(
        h,
        's',
        Array.from({ length: EVENTS + 1 }, (_, i) => `${i}`.padEnd(3 * 1024, '.')),
      )
      const client = endedAfterEnough()
      const asked: string[] = []
      const sub = h.subscribe('s', client.sink, {
        lastEventId: ids[0]!,
        filter: filtered
          ? (event) => {
              asked.push(event.id)
              return true
            }
          : undefined,
      })
      expect(await within(sub.done, 'the subscription to end', 1000)).toBe('end')
      // It went on neither counting the page's remaining events as replayed nor asking the filter about them.
      expect(h.stats().replayed).toBeLessThan(EVENTS)
      if (filtered) expect(asked.length).toBeLessThan(EVENTS)
    })
  }
})

describe('a slow client', () => {
  it("waits for each 'drain' with one listener, removed once it came", async () => {
    const h = hub({ retry: null })
    const client = slowClient(1)
    async function* items() {
      for (let i = 0; i < 5; i++) yield `item ${i}`
    }
    const sub = h.streamIterable(client.sink, items())
    const counts: number[] = []
    for (let i = 0; i < 5; i++) {
      await waitUntil(() => client.held.length > 0, `write ${i}`)
      await flushTurn()
      counts.push(client.out.listenerCount('drain'))
      client.release()
    }
    expect(await within(sub.done, 'the stream to end', 1000)).toBe('end')
    expect(counts).toEqual([1, 1, 1, 1, 1])
    expect(client.out.listenerCount('drain')).toBe(0)
  })
})
