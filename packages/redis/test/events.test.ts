/**
 * Stream entries as events: every field read into its place, the frame encoded once, the value
 * deserialized lazily and once, and the cache that shares event objects between history reads and
 * the live tail without ever serving stale bytes or growing past its bounds.
 */
import { RewindError } from '@rewind/core'
import { describe, expect, it } from 'vitest'
import { EventCache, RedisEvent } from '../src/events.js'
import type { RawEntry } from '../src/scripts.js'

/** A cache whose deserializer counts its calls, and the errors it reports. */
function cacheOf(deserialize: (data: string) => unknown = JSON.parse) {
  const reported: unknown[] = []
  const calls: string[] = []
  const cache = new EventCache({
    deserialize: (data) => {
      calls.push(data)
      return deserialize(data)
    },
    report: (error) => reported.push(error),
  })
  return { cache, reported, calls }
}

/** An entry as the append script writes it. */
function entry(id: string, { prev = '0-0', event = '', string = '0', data = '{}' } = {}): RawEntry {
  return [id, ['prev', prev, 'event', event, 'string', string, 'data', data]]
}

const frameOf = (event: RedisEvent): string => event.frame.toString('utf8')

describe('RedisEvent from an entry', () => {
  it('reads every field into its place', () => {
    const { cache } = cacheOf()
    const event = cache.event('k', entry('5-3', { prev: '5-2', event: 'tick', string: '1', data: 'hi' }))
    expect(event).toBeInstanceOf(RedisEvent)
    expect(event.id).toBe('5-3')
    expect(event.prev).toBe('5-2')
    expect(event.event).toBe('tick')
    expect(event.isString).toBe(true)
    expect(event.data).toBe('hi')
    expect(event.value).toBe('hi')
    expect(event.major).toBe(5)
    expect(event.minor).toBe(3)
    expect(frameOf(event)).toBe('id: 5-3\nevent: tick\ndata: hi\n\n')
  })

  it('reads fields in any order, and ignores unknown ones and a dangling name', () => {
    const { cache } = cacheOf()
    const event = cache.event('k', [
      '7-0',
      ['data', '[1]', 'other', 'x', 'string', '0', 'prev', '6-9', 'event', 'e', 'event'],
    ])
    expect(event.prev).toBe('6-9')
    expect(event.event).toBe('e')
    expect(event.isString).toBe(false)
    expect(event.data).toBe('[1]')
    expect(event.value).toEqual([1])
  })

  it('gives the defaults for an entry without fields (written by something else)', () => {
    const { cache } = cacheOf()
    const event = cache.event('k', ['1-1', []])
    expect(event.prev).toBe('')
    expect(event.event).toBeUndefined()
    expect(event.isString).toBe(false)
    expect(event.data).toBe('')
    expect(frameOf(event)).toBe('id: 1-1\ndata:\n\n')
  })

  it('reads an empty event type as the default message, and only "1" as a string', () => {
    const { cache } = cacheOf()
    const plain = cache.event('k', entry('1-1', { event: '', string: 'true', data: '2' }))
    expect(plain.event).toBeUndefined()
    expect(plain.isString).toBe(false)
    expect(plain.value).toBe(2)
    expect(frameOf(plain)).toBe('id: 1-1\ndata: 2\n\n')
  })

  it('deserializes a non-string value on first access only', () => {
    const { cache, calls } = cacheOf()
    const event = cache.event('k', entry('1-1', { data: '{"a":1}' }))
    expect(calls).toEqual([])
    const value = event.value
    expect(value).toEqual({ a: 1 })
    expect(event.value).toBe(value)
    expect(calls).toEqual(['{"a":1}'])
  })

  it('never deserializes a string value', () => {
    const { cache, calls } = cacheOf()
    expect(cache.event('k', entry('1-1', { string: '1', data: '{"a":1}' })).value).toBe('{"a":1}')
    expect(calls).toEqual([])
  })

  it('remembers a deserialized undefined, and does not run the deserializer again', () => {
    const { cache, calls } = cacheOf(() => undefined)
    const event = cache.event('k', entry('1-1', { data: 'x' }))
    expect(event.value).toBeUndefined()
    expect(event.value).toBeUndefined()
    expect(calls).toEqual(['x'])
  })

  it('gives the raw data of an entry that does not deserialize, and reports where it is', () => {
    const { cache, reported } = cacheOf()
    const event = cache.event('rewind:{news}', entry('12-4', { data: 'not json' }))
    expect(event.value).toBe('not json')
    expect(reported).toHaveLength(1)
    const error = reported[0] as RewindError
    expect(error).toBeInstanceOf(RewindError)
    expect(error.code).toBe('ERR_SERIALIZE')
    expect(error.message).toContain('entry 12-4 in Redis key "rewind:{news}"')
  })

  it('orders an id with the 2^64 - 1 sequence after every other of its millisecond', () => {
    const { cache } = cacheOf()
    const event = cache.event('k', entry('9-18446744073709551615'))
    expect(event.major).toBe(9)
    expect(event.minor).toBe(Number.POSITIVE_INFINITY)
  })
})

describe('EventCache', () => {
  it('gives the same object for the same entry of the same key', () => {
    const { cache } = cacheOf()
    const first = cache.event('k', entry('1-1'))
    expect(cache.event('k', entry('1-1')) === first).toBe(true)
    expect(cache.event('other', entry('1-1')) === first).toBe(false)
  })

  it('never serves an event whose content changed under the same id', () => {
    const { cache } = cacheOf()
    const base = { prev: '0-0', event: 'e', string: '0', data: '1' }
    const first = cache.event('k', entry('1-1', base))
    for (const change of [{ data: '2' }, { event: 'f' }, { string: '1' }, { prev: '0-1' }]) {
      const changed = cache.event('k', entry('1-1', { ...base, ...change }))
      expect(changed === first, JSON.stringify(change)).toBe(false)
      // The new content replaced the old one in the cache.
      expect(cache.event('k', entry('1-1', { ...base, ...change })) === changed).toBe(true)
      expect(cache.event('k', entry('1-1', base)) === changed).toBe(false)
    }
  })

  it('an event type that is absent and one that is empty are the same content', () => {
    const { cache } = cacheOf()
    const first = cache.event('k', ['1-1', ['prev', '0-0', 'string', '0', 'data', '1']])
    expect(cache.event('k', entry('1-1', { data: '1' })) === first).toBe(true)
  })

  it('keeps at most 4096 events, evicting the least recently used', () => {
    const { cache } = cacheOf()
    const first = cache.event('k', entry('0-1'))
    const second = cache.event('k', entry('0-2'))
    for (let i = 3; i <= 4096; i++) cache.event('k', entry(`0-${i}`))
    // Full: both still there; touching the first makes the second the oldest.
    expect(cache.event('k', entry('0-1')) === first).toBe(true)
    cache.event('k', entry('0-4097'))
    expect(cache.event('k', entry('0-1')) === first).toBe(true)
    expect(cache.event('k', entry('0-2')) === second).toBe(false)
  })

  it('keeps at most 8 MiB of frames, evicting the oldest', () => {
    const { cache } = cacheOf()
    const big = 'x'.repeat(3 * 1024 * 1024)
    const a = cache.event('k', entry('1-1', { string: '1', data: big }))
    const b = cache.event('k', entry('1-2', { string: '1', data: big }))
    // Two of them fit; a third evicts the oldest only.
    const c = cache.event('k', entry('1-3', { string: '1', data: big }))
    expect(cache.event('k', entry('1-3', { string: '1', data: big })) === c).toBe(true)
    expect(cache.event('k', entry('1-2', { string: '1', data: big })) === b).toBe(true)
    expect(cache.event('k', entry('1-1', { string: '1', data: big })) === a).toBe(false)
  })

  it('counts the bytes of a replaced event out, so its replacement does not evict others', () => {
    const { cache } = cacheOf()
    const big = 'x'.repeat(3 * 1024 * 1024)
    const a = cache.event('k', entry('1-1', { string: '1', data: big }))
    // Replaced in place three times: 3 MiB held each time, not 3, 6, 9 and 12.
    for (const data of ['y', 'z', 'w']) cache.event('k', entry('1-2', { string: '1', data: big + data }))
    expect(cache.event('k', entry('1-1', { string: '1', data: big })) === a).toBe(true)
  })

  it('does not cache an event larger than its whole budget, nor evict others for it', () => {
    const { cache } = cacheOf()
    const small = cache.event('k', entry('1-1'))
    const huge = 'x'.repeat(8 * 1024 * 1024)
    const first = cache.event('k', entry('1-2', { string: '1', data: huge }))
    expect(first.data === huge).toBe(true)
    expect(cache.event('k', entry('1-2', { string: '1', data: huge })) === first).toBe(false)
    expect(cache.event('k', entry('1-1')) === small).toBe(true)
  })

  it('caches an event whose frame is exactly its whole budget', () => {
    const { cache } = cacheOf()
    // 'id: 1-2\ndata: ' is 14 bytes and the frame ends with two newlines.
    const data = 'x'.repeat(8 * 1024 * 1024 - 16)
    const event = cache.event('k', entry('1-2', { string: '1', data }))
    expect(event.frame.length).toBe(8 * 1024 * 1024)
    expect(cache.event('k', entry('1-2', { string: '1', data })) === event).toBe(true)
  })

  it('forgets everything on clear, bytes included', () => {
    const { cache } = cacheOf()
    const big = 'x'.repeat(5 * 1024 * 1024)
    const a = cache.event('k', entry('1-1', { string: '1', data: big }))
    cache.clear()
    const again = cache.event('k', entry('1-1', { string: '1', data: big }))
    expect(again === a).toBe(false)
    // Were the old 5 MiB still counted, this 2 MiB one would evict the 5 MiB one just cached.
    const two = 'y'.repeat(2 * 1024 * 1024)
    const b = cache.event('k', entry('1-2', { string: '1', data: two }))
    expect(cache.event('k', entry('1-1', { string: '1', data: big })) === again).toBe(true)
    expect(cache.event('k', entry('1-2', { string: '1', data: two })) === b).toBe(true)
  })
})
