/**
 * The registry of responses on one instance (`Responses`), driven directly over records the test
 * sets: how it plans a request, cancels and reads a response produced elsewhere, hears a remote end
 * of a producer running here, tells its clients an end the store does not hold, and leaves the lease
 * of a producer running here alone.
 */
import { afterEach, describe, expect, it, vi } from 'vitest'
import { within } from '../../../test/support/wait.js'
import { RewindError } from '../src/errors.js'
import type { StoredEvent } from '../src/store.js'
import {
  ended,
  follower,
  LEASE,
  oneWaitingClient,
  recordsWith,
  responsesOver,
  settle,
  verifyNow,
} from './helpers/response-doubles.js'

afterEach(() => {
  vi.useRealTimers()
})

const STREAM = 'rewind:response:r'

/** A stored event of the response's stream, as a store's tail delivers it. */
function stored(event: string | undefined, data: string, major = 1): StoredEvent {
  return {
    id: `${major}`,
    major,
    minor: 0,
    event,
    data,
    value: data,
    frame: Buffer.from(`data: ${data}\n\n`),
  }
}

/** A producer that yields `items`, then waits until its signal aborts. */
function heldAfter(...items: string[]) {
  return async function* (signal: AbortSignal) {
    yield* items
    await new Promise((resolve) => signal.addEventListener('abort', resolve))
  }
}

/** Every `end`/`endIfLapsed` call of `store` that only ends a lapsed lease. */
const lapsedEnds = (store: ReturnType<typeof recordsWith>) => store.calls.end.filter((c) => c.onlyIfLapsed)

describe('plan: how a request for a response is answered', () => {
  it('knows no id that could not name a response, without asking the store', async () => {
    const store = recordsWith(false)
    const { responses } = responsesOver(store.records)
    for (const id of [42, 'a b', '', 'x'.repeat(129)]) {
      expect(await responses.plan(id as string, undefined), String(id)).toEqual({ kind: 'unknown' })
    }
    expect(store.calls.get).toBe(0)
  })

  it('knows no response on a store that keeps none, nor one the store does not have', async () => {
    expect(await responsesOver(undefined).responses.plan('r', undefined)).toEqual({ kind: 'unknown' })
    const store = recordsWith(false)
    store.set(undefined)
    expect(await responsesOver(store.records).responses.plan('r', undefined)).toEqual({ kind: 'unknown' })
  })

  it('gives a client without a position the answer from its origin, and one with a position what follows it', async () => {
    const store = recordsWith(false)
    const { responses } = responsesOver(store.records)
    expect(await responses.plan('r', undefined)).toMatchObject({ kind: 'stream', stream: STREAM, after: 'o' })
    expect(await responses.plan('r', '5-0')).toMatchObject({ kind: 'stream', after: '5-0' })
    expect(await responses.plan('r', null), 'a malformed position is for the stream to judge').toMatchObject({
      kind: 'stream',
      after: null,
    })
  })

  it('answers `ended` only to a client whose position is the terminal event', async () => {
    const store = recordsWith(false)
    const { responses } = responsesOver(store.records)
    expect(await responses.plan('r', undefined), 'active, no end yet').toMatchObject({ kind: 'stream' })
    store.set(ended('done'))
    expect(await responses.plan('r', 'e')).toEqual({ kind: 'ended' })
    expect(await responses.plan('r', 'd')).toMatchObject({ kind: 'stream', after: 'd' })
    expect(await responses.plan('r', undefined)).toMatchObject({ kind: 'stream', after: 'o' })
  })
})

describe('status and cancel of a response produced elsewhere', () => {
  it('know no id that could not name a response, without asking the store', async () => {
    const store = recordsWith(true)
    const { responses } = responsesOver(store.records)
    expect(await responses.status('a b')).toBeUndefined()
    expect(await responses.cancel('a b')).toBeUndefined()
    expect(store.calls.get).toBe(0)
    expect(store.calls.end).toEqual([])
  })

  it('know no response on a store that keeps none', async () => {
    const { responses } = responsesOver(undefined)
    expect(await responses.status('r')).toBeUndefined()
    expect(await responses.cancel('r')).toBeUndefined()
  })

  it('cancel appends `cancelled` through the store, whose tail delivers it, and answers the status', async () => {
    const store = recordsWith(true)
    const { responses, fannedOut } = responsesOver(store.records)
    store.answerEnd({ state: ended('cancelled') })
    expect(await responses.cancel('r')).toBe('cancelled')
    expect(store.calls.end).toEqual([
      {
        id: 'r',
        onlyIfLapsed: false,
        stream: STREAM,
        event: { event: 'rewind-end', data: 'cancelled', value: 'cancelled' },
        reason: 'cancelled',
        limits: expect.objectContaining({ lease: LEASE }),
      },
    ])
    expect(fannedOut).toEqual([])
  })

  it('cancel on a synchronous store fans the terminal event out; not when the response had ended already', async () => {
    const store = recordsWith(false)
    const { responses, fannedOut } = responsesOver(store.records)
    const end = stored('rewind-end', 'cancelled', 7)
    store.answerEnd({ state: ended('cancelled'), event: end })
    expect(await responses.cancel('r')).toBe('cancelled')
    expect(fannedOut).toEqual([{ stream: STREAM, event: end }])
    store.answerEnd({ state: ended('done') })
    expect(await responses.cancel('r')).toBe('done')
    expect(fannedOut).toHaveLength(1)
  })

  it('cancel of an id the store does not know is undefined', async () => {
    const store = recordsWith(true)
    const { responses } = responsesOver(store.records)
    store.answerEnd(undefined)
    expect(await responses.cancel('r')).toBeUndefined()
  })
})

describe('a producer running here', () => {
  it('is cancelled by its own run here, which stops it and stores the end; its handle does the same', async () => {
    const store = recordsWith(true)
    const { responses } = responsesOver(store.records)
    const handle = await responses.start(heldAfter(), { id: 'r' })
    store.answerEnd({ state: ended('cancelled') })
    expect(await handle.cancel()).toBe('cancelled')
    expect(await handle.done).toBe('cancelled')
    expect(responses.producing).toBe(0)
    expect(store.calls.end).toMatchObject([{ id: 'r', onlyIfLapsed: false, reason: 'cancelled' }])
  })

  it('is stopped by a terminal event the store delivers (a cancel or a lapsed lease elsewhere), by no other event', async () => {
    const store = recordsWith(true)
    const { responses } = responsesOver(store.records, 'fin')
    const handle = await responses.start(heldAfter('t0'), { id: 'r' })
    responses.observe('rewind:response:other', [stored('fin', 'cancelled')])
    responses.observe(STREAM, [stored(undefined, 't0'), stored('rewind-end', 'done', 2)])
    await settle()
    expect(responses.producing, 'only its own end event stops it').toBe(1)
    store.set(ended('cancelled'))
    responses.observe(STREAM, [stored(undefined, 't1', 3), stored('fin', 'cancelled', 4)])
    expect(await within(handle.done, 'the producer to stop', 2000)).toBe('cancelled')
    expect(responses.producing).toBe(0)
    expect(store.calls.end, 'the end is the one delivered: none is appended').toEqual([])
  })

  it('keeps its own lease: the checks of its clients do not end it while it runs, but do once it has stopped', async () => {
    const store = recordsWith(true)
    const { responses } = responsesOver(store.records)
    const handle = await responses.start(heldAfter('t0'), { id: 'r' })
    const a = follower(true)
    responses.follow('r', a.f, a.done)
    await verifyNow(responses)
    expect(lapsedEnds(store)).toEqual([])
    // The producer stops here, and the store, still saying active, holds no end of it.
    store.answerEnd({ state: { status: 'active', origin: 'o', endId: undefined } })
    await handle.cancel()
    await verifyNow(responses)
    expect(lapsedEnds(store)).toHaveLength(1)
    a.leave()
  })
})

describe('the clients here of a producer that stopped without a stored end', () => {
  /** `Responses` over records that cannot store an end (a synchronous store whose `end` throws). */
  function endless() {
    const store = recordsWith(false)
    store.records.end = () => {
      throw new RewindError('ERR_STORE_UNAVAILABLE', 'down')
    }
    const { responses, reported } = responsesOver(store.records, 'fin')
    return { store, responses, reported }
  }

  it('are sent the terminal event `failed` without an id; clients of other responses are not', async () => {
    const { responses, reported } = endless()
    const here = follower(true)
    const elsewhere = follower(true)
    responses.follow('r', here.f, here.done)
    responses.follow('s', elsewhere.f, elsewhere.done)
    const handle = await responses.start(heldAfter(), { id: 'r' })
    expect(await handle.cancel()).toBeUndefined()
    expect(await handle.done).toBe('failed')
    expect(here.seen.frames).toEqual(['event: fin\ndata: failed\n\n'])
    expect(elsewhere.seen.frames).toEqual([])
    expect(reported).toHaveLength(1)
  })

  it('or with no client here, the producer still settles', async () => {
    const { responses } = endless()
    const handle = await responses.start(heldAfter(), { id: 'r' })
    void handle.cancel()
    expect(await within(handle.done, 'the run to settle', 2000)).toBe('failed')
    expect(responses.producing).toBe(0)
  })

  it('are told `failed` when the store refused an item as ended but still says active', async () => {
    // A synchronous store whose append says the response has ended: the producer halts and reads
    // the record, which (a race, a store that lost it) still says active: it holds no end.
    const store = recordsWith(false)
    const { responses } = responsesOver(store.records)
    const a = follower(true)
    responses.follow('r', a.f, a.done)
    const handle = await responses.start(heldAfter('t0'), { id: 'r' })
    expect(await within(handle.done, 'the run to settle', 2000)).toBe('failed')
    expect(a.seen.frames).toEqual(['event: rewind-end\ndata: failed\n\n'])
  })

  it('are left to the stream when the end is stored: they get it from there, not from the registry', async () => {
    const store = recordsWith(false)
    const { responses, fannedOut } = responsesOver(store.records)
    const end = stored('rewind-end', 'done')
    store.answerEnd({ state: ended('done'), event: end })
    const a = follower(true)
    responses.follow('r', a.f, a.done)
    const handle = await responses.start((async function* () {})(), { id: 'r' })
    expect(await handle.done).toBe('done')
    expect(fannedOut).toEqual([{ stream: STREAM, event: end }])
    expect(a.seen.frames).toEqual([])
  })
})

describe('the checks of a response followed here', () => {
  it('do nothing on a store that keeps no responses', async () => {
    const { responses, reported } = responsesOver(undefined)
    const a = follower(true)
    responses.follow('r', a.f, a.done)
    await verifyNow(responses)
    expect(reported).toEqual([])
    expect(a.seen.ended).toEqual([])
  })

  it('report a failed read against the response stream', async () => {
    const { store, responses, reported } = oneWaitingClient(true)
    const down = new Error('down')
    store.failGets(down)
    await verifyNow(responses)
    expect(reported).toEqual([{ error: down, stream: STREAM }])
    expect(lapsedEnds(store)).toEqual([])
  })

  it('hold no timer that keeps the process alive', () => {
    const timers = () => process.getActiveResourcesInfo().filter((name) => name === 'Timeout').length
    const { responses } = responsesOver(recordsWith(true).records)
    const before = timers()
    const a = follower()
    responses.follow('r', a.f, a.done)
    expect(timers()).toBe(before)
    void responses.close()
  })

  it('stop at close(), whose clients then leave quietly, and start again for a client that follows afterwards', async () => {
    const unhandled: unknown[] = []
    const onUnhandled = (reason: unknown) => unhandled.push(reason)
    process.on('unhandledRejection', onUnhandled)
    try {
      vi.useFakeTimers()
      const store = recordsWith(true)
      const { responses } = responsesOver(store.records)
      const early = follower()
      responses.follow('r', early.f, early.done)
      await responses.close()
      early.leave()
      await vi.advanceTimersByTimeAsync(0)
      const late = follower()
      responses.follow('r', late.f, late.done)
      await vi.advanceTimersByTimeAsync(LEASE)
      expect(store.calls.get, 'the late client is checked').toBe(2)
      vi.useRealTimers()
      await settle()
      expect(unhandled).toEqual([])
    } finally {
      process.off('unhandledRejection', onUnhandled)
    }
  })
})
