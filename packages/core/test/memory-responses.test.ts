/** The memory store's response records: their bound, their order of appends, and their ends. */
import { describe, expect, it } from 'vitest'
import { thrownBy } from '../../../test/support/throws.js'
import { RewindError } from '../src/errors.js'
import { MemoryResponses } from '../src/memory-responses.js'
import type { NewEvent, ResponseLimits } from '../src/store.js'

const limits: ResponseLimits = {
  maxEvents: 100,
  maxBytes: 1 << 20,
  maxLifetime: 60_000,
  ttl: 60_000,
  lease: 10_000,
}
const event = (data: string): NewEvent => ({ event: undefined, data, value: data })

function records(max: number): MemoryResponses {
  return new MemoryResponses(max, Date.now)
}

describe('MemoryResponses', () => {
  it('counts the responses it keeps, active or ended', () => {
    const store = records(10)
    expect(store.size).toBe(0)
    store.create('a', 'sa', limits)
    store.create('b', 'sb', limits)
    store.end('b', 'sb', event('end'), 'done', limits)
    expect(store.size).toBe(2)
    store.clear()
  })

  it('refuses a response past maxResponses while all are active, naming the limit and the fix', () => {
    const store = records(2)
    expect(store.create('a', 'sa', limits)).toBe(true)
    expect(store.create('b', 'sb', limits)).toBe(true)
    const error = thrownBy(() => store.create('c', 'sc', limits))
    expect(error).toBeInstanceOf(RewindError)
    expect(error).toMatchObject({
      code: 'ERR_RESPONSE_LIMIT',
      field: 'maxResponses',
      message:
        '2 responses are active at once, the most this store keeps (maxResponses); wait for one to end, or raise maxResponses',
    })
    expect(store.size).toBe(2)
  })

  it('makes room past maxResponses by dropping the oldest ended response only', () => {
    const store = records(3)
    for (const id of ['a', 'b', 'c']) store.create(id, `s${id}`, limits)
    store.end('b', 'sb', event('end'), 'done', limits)
    store.end('c', 'sc', event('end'), 'failed', limits)
    expect(store.create('d', 'sd', limits)).toBe(true)
    expect(store.get('a')?.status).toBe('active')
    expect(store.get('b')).toBeUndefined()
    expect(store.history('sb')).toBeUndefined()
    expect(store.get('c')?.status).toBe('failed')
    expect(store.get('d')?.status).toBe('active')
    expect(store.size).toBe(3)
    store.clear()
  })

  it('stores appends only to an active response, in order, and says which one is out of order', () => {
    const store = records(10)
    expect(store.append('nope', 's', event('x'), limits, 1)).toBeUndefined()
    store.create('a', 'sa', limits)
    const error = thrownBy(() => store.append('a', 'sa', event('x'), limits, 2))
    expect(error).toMatchObject({
      code: 'ERR_HISTORY_LOST',
      message:
        'append 2 of the response in "sa" does not follow the 0 stored; append each event once, in order',
    })
    expect(store.append('a', 'sa', event('x'), limits, 1)?.data).toBe('x')
    store.end('a', 'sa', event('end'), 'done', limits)
    expect(store.append('a', 'sa', event('late'), limits, 2)).toBeUndefined()
    expect(store.history('sa')?.size).toBe(2)
    store.clear()
  })

  it('ends a response once: a second end changes nothing and stores no event', () => {
    const store = records(10)
    store.create('a', 'sa', limits)
    const first = store.end('a', 'sa', event('end'), 'cancelled', limits)
    expect(first?.event?.data).toBe('end')
    const second = store.end('a', 'sa', event('again'), 'failed', limits)
    expect(second).toEqual({ state: first?.state })
    expect(store.get('a')?.status).toBe('cancelled')
    expect(store.history('sa')?.size).toBe(1)
    expect(store.end('nope', 's', event('end'), 'done', limits)).toBeUndefined()
    store.clear()
  })

  it('forgets every record and its stream when cleared', () => {
    const store = records(10)
    store.create('a', 'sa', limits)
    store.create('b', 'sb', limits)
    store.end('b', 'sb', event('end'), 'done', limits)
    store.clear()
    expect(store.size).toBe(0)
    expect(store.get('a')).toBeUndefined()
    expect(store.history('sb')).toBeUndefined()
    expect(store.create('a', 'sa', limits)).toBe(true)
    store.clear()
  })
})
