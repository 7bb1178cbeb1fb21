/**
 * How `Responses` follows the clients of a response on its instance (`follow`, `verify`, the timed
 * check): driven directly, with records whose answers the test sets, so each rule is seen alone.
 */
import { afterEach, describe, expect, it, vi } from 'vitest'
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

describe('the clients of a response on this instance', () => {
  it('are checked every half lease, and no more once the last one has left', async () => {
    vi.useFakeTimers()
    const store = recordsWith(true)
    const { responses } = responsesOver(store.records)
    const a = follower()
    responses.follow('r', a.f, a.done)
    await vi.advanceTimersByTimeAsync(LEASE / 2 - 1)
    expect(store.calls.get).toBe(0)
    await vi.advanceTimersByTimeAsync(1)
    expect(store.calls.get).toBe(1)
    a.leave()
    await vi.advanceTimersByTimeAsync(LEASE * 3)
    expect(store.calls.get).toBe(1)
  })

  it('share one check for one response, which goes on while any client is left', async () => {
    vi.useFakeTimers()
    const store = recordsWith(true)
    const { responses } = responsesOver(store.records)
    const a = follower()
    const b = follower()
    responses.follow('r', a.f, a.done)
    responses.follow('r', b.f, b.done)
    a.leave()
    await vi.advanceTimersByTimeAsync(LEASE)
    expect(store.calls.get).toBe(2)
    b.leave()
    await vi.advanceTimersByTimeAsync(LEASE)
    expect(store.calls.get).toBe(2)
  })

  it('are all ended when the record is gone, so they come back to 404', async () => {
    const { store, responses, a } = oneWaitingClient(false)
    const b = follower(false)
    responses.follow('r', b.f, b.done)
    store.set(undefined)
    await verifyNow(responses)
    expect([a.seen.ended, b.seen.ended]).toEqual([['reset'], ['reset']])
  })

  it('once the response has ended: verify ends the clients that wait live at once, not the others', async () => {
    const { store, responses, a: waiting } = oneWaitingClient(false)
    const replaying = follower(false)
    responses.follow('r', replaying.f, replaying.done)
    store.set(ended('done'))
    await verifyNow(responses)
    expect(waiting.seen.ended).toEqual(['reset'])
    expect(replaying.seen.ended).toEqual([])
  })

  it('once the response has ended: the timed check ends a waiting client only at its second look', async () => {
    vi.useFakeTimers()
    const { store, a } = oneWaitingClient(false)
    store.set(ended('cancelled'))
    await vi.advanceTimersByTimeAsync(LEASE / 2)
    expect(a.seen.ended).toEqual([])
    await vi.advanceTimersByTimeAsync(LEASE / 2)
    expect(a.seen.ended).toEqual(['reset'])
  })

  it('counts the looks in a row: one that finds no client waiting starts the count again', async () => {
    vi.useFakeTimers()
    const { store, a } = oneWaitingClient(false)
    store.set(ended('done'))
    await vi.advanceTimersByTimeAsync(LEASE / 2)
    a.f.waiting = false
    await vi.advanceTimersByTimeAsync(LEASE / 2)
    a.f.waiting = true
    await vi.advanceTimersByTimeAsync(LEASE / 2)
    expect(a.seen.ended).toEqual([])
    store.set({ status: 'active', origin: 'o', endId: undefined })
    await vi.advanceTimersByTimeAsync(LEASE / 2)
    store.set(ended('done'))
    await vi.advanceTimersByTimeAsync(LEASE / 2)
    expect(a.seen.ended, 'an active record in between starts the count again').toEqual([])
    await vi.advanceTimersByTimeAsync(LEASE / 2)
    expect(a.seen.ended).toEqual(['reset'])
  })

  it('of an active response on a shared store with no producer here: it is ended failed once its lease has lapsed', async () => {
    const { store, responses, a } = oneWaitingClient(true)
    await verifyNow(responses)
    expect(store.calls.end).toEqual([
      {
        id: 'r',
        onlyIfLapsed: true,
        stream: 'rewind:response:r',
        event: { event: 'rewind-end', data: 'failed', value: 'failed' },
        reason: 'failed',
        limits: expect.objectContaining({ lease: LEASE }),
      },
    ])
    expect(a.seen.ended).toEqual([])
  })

  it('of an active response in memory (no lease): nothing is ended, nothing goes wrong', async () => {
    const { store, responses, reported, a } = oneWaitingClient(false)
    await verifyNow(responses)
    expect(store.calls.end).toEqual([])
    expect(reported).toEqual([])
    expect(a.seen.ended).toEqual([])
  })

  it('are not checked twice at once: a slow store gets one read in flight per response', async () => {
    const { store, responses, a } = oneWaitingClient(false)
    store.hold(true)
    responses.verify('r')
    await verifyNow(responses)
    expect(store.calls.get).toBe(1)
    store.set(undefined)
    store.release()
    await settle()
    expect(a.seen.ended).toEqual(['reset'])
    store.hold(false)
    await verifyNow(responses)
    expect(store.calls.get, 'checked again once the first read is over').toBe(2)
  })

  it('survive a store that fails the check: it is reported, nobody is ended, and the next check runs', async () => {
    const { store, responses, reported, a } = oneWaitingClient(false)
    store.failGets(new Error('down'))
    await verifyNow(responses)
    expect(reported).toHaveLength(1)
    expect(a.seen.ended).toEqual([])
    store.failGets(undefined)
    store.set(undefined)
    await verifyNow(responses)
    expect(a.seen.ended).toEqual(['reset'])
  })

  it('of an unknown response id are not checked, and close() stops every check', async () => {
    vi.useFakeTimers()
    const store = recordsWith(false)
    const { responses } = responsesOver(store.records)
    responses.verify('nobody')
    await vi.advanceTimersByTimeAsync(0)
    expect(store.calls.get).toBe(0)
    const a = follower()
    responses.follow('r', a.f, a.done)
    await responses.close()
    await vi.advanceTimersByTimeAsync(LEASE * 2)
    expect(store.calls.get).toBe(0)
  })
})
