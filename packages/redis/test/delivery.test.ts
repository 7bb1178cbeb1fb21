/**
 * Handing the entries a live tail read to the hub: in order when they follow the last one
 * delivered, and never across a hole. Entries that do not follow reset the stream's subscribers
 * (who resume from history) and tell the application why.
 */
import { RewindError } from '@rewind/core'
import { describe, expect, it } from 'vitest'
import { type Cursor, deliverEntries, type EntrySink } from '../src/delivery.js'
import { EventCache, type RedisEvent } from '../src/events.js'
import type { RawEntry } from '../src/scripts.js'

/** A sink that records what it is handed; `fail` makes `deliver` and `reset` throw. */
function recordingSink(fail?: Error) {
  const delivered: [string, string[]][] = []
  const resets: string[] = []
  const reported: unknown[] = []
  const cache = new EventCache({ deserialize: JSON.parse, report: (error) => reported.push(error) })
  const sink: EntrySink = {
    toEvent: (key, entry) => cache.event(key, entry),
    deliver: (stream, events: readonly RedisEvent[]) => {
      if (fail) throw fail
      delivered.push([stream, events.map((event) => event.id)])
    },
    reset: (stream) => {
      if (fail) throw fail
      resets.push(stream)
    },
    report: (error) => reported.push(error),
  }
  return { sink, delivered, resets, reported }
}

const cursorAt = (lastId: string): Cursor => ({ stream: 'news', key: 'p:{news}', lastId })

/** An entry recording `prev` as its predecessor (`''`: none, as something else wrote it). */
const entry = (id: string, prev: string): RawEntry => [
  id,
  prev === '' ? ['data', '1'] : ['prev', prev, 'data', '1'],
]

describe('deliverEntries', () => {
  it('delivers entries that follow the cursor, in order, and moves the cursor to the last', () => {
    const { sink, delivered, resets, reported } = recordingSink()
    const cursor = cursorAt('5-0')
    deliverEntries(sink, cursor, [entry('5-1', '5-0'), entry('6-0', '5-1')])
    expect(delivered).toEqual([['news', ['5-1', '6-0']]])
    expect(cursor.lastId).toBe('6-0')
    deliverEntries(sink, cursor, [entry('7-0', '6-0')])
    expect(delivered).toEqual([
      ['news', ['5-1', '6-0']],
      ['news', ['7-0']],
    ])
    expect(cursor.lastId).toBe('7-0')
    expect(resets).toEqual([])
    expect(reported).toEqual([])
  })

  it('does nothing with no entries', () => {
    const { sink, delivered, resets, reported } = recordingSink()
    const cursor = cursorAt('5-0')
    deliverEntries(sink, cursor, [])
    expect(cursor.lastId).toBe('5-0')
    expect([delivered, resets, reported]).toEqual([[], [], []])
  })

  it('trusts an entry without a recorded predecessor', () => {
    const { sink, delivered, resets } = recordingSink()
    const cursor = cursorAt('5-0')
    deliverEntries(sink, cursor, [entry('9-0', '')])
    expect(delivered).toEqual([['news', ['9-0']]])
    expect(resets).toEqual([])
    expect(cursor.lastId).toBe('9-0')
  })

  it('resets instead of delivering entries after a trimmed hole, and reports it', () => {
    const { sink, delivered, resets, reported } = recordingSink()
    const cursor = cursorAt('5-0')
    deliverEntries(sink, cursor, [entry('8-0', '7-0'), entry('9-0', '8-0')])
    expect(delivered).toEqual([])
    expect(resets).toEqual(['news'])
    // The cursor moves on all the same: the subscribers resume from history, not the tail.
    expect(cursor.lastId).toBe('9-0')
    expect(reported).toHaveLength(1)
    const error = reported[0] as RewindError
    expect(error).toBeInstanceOf(RewindError)
    expect(error.code).toBe('ERR_HISTORY_LOST')
    expect(error.message).toBe(
      'the live tail of stream "news" missed the entries between 5-0 and 8-0: Redis had trimmed them (past maxLen) before the tail read them, so subscribers following the stream live did not get them',
    )
    // The next entries, which follow, are delivered again.
    deliverEntries(sink, cursor, [entry('10-0', '9-0')])
    expect(delivered).toEqual([['news', ['10-0']]])
  })

  it('says the stream started over when its first entry follows none', () => {
    const { sink, delivered, resets, reported } = recordingSink()
    const cursor = cursorAt('5-0')
    deliverEntries(sink, cursor, [entry('1-0', '0-0')])
    expect(delivered).toEqual([])
    expect(resets).toEqual(['news'])
    expect(cursor.lastId).toBe('1-0')
    const error = reported[0] as RewindError
    expect(error.code).toBe('ERR_HISTORY_LOST')
    expect(error.message).toBe(
      'stream "news" started over in Redis (its entry 1-0 follows none, while the live tail had read up to 5-0): if Redis lost entries after 5-0, for example in a restart without persistence, subscribers following the stream live did not get them',
    )
  })

  it('delivers the first entry of a stream watched before it existed', () => {
    const { sink, delivered, resets } = recordingSink()
    const cursor = cursorAt('0-0')
    deliverEntries(sink, cursor, [entry('1-0', '0-0')])
    expect(delivered).toEqual([['news', ['1-0']]])
    expect(resets).toEqual([])
  })

  it('reports what delivering throws, and still moves the cursor', () => {
    const failure = new Error('the hub broke')
    const { sink, reported } = recordingSink(failure)
    const cursor = cursorAt('5-0')
    deliverEntries(sink, cursor, [entry('6-0', '5-0')])
    expect(reported).toEqual([failure])
    expect(cursor.lastId).toBe('6-0')
  })

  it('reports what resetting throws, after the hole itself', () => {
    const failure = new Error('the hub broke')
    const { sink, reported } = recordingSink(failure)
    const cursor = cursorAt('5-0')
    deliverEntries(sink, cursor, [entry('8-0', '7-0')])
    expect(reported).toHaveLength(2)
    expect((reported[0] as RewindError).code).toBe('ERR_HISTORY_LOST')
    expect(reported[1]).toBe(failure)
    expect(cursor.lastId).toBe('8-0')
  })
})
