/**
 * The checks of the fault suite, on readers written by hand: each broken promise is caught (a
 * silent hole, a duplicate, a late or missing end, `done` without every token, a 404 while the data
 * was kept, a record that disagrees), and what the design allows passes.
 */
import { describe, expect, it } from 'vitest'
import { type Expectations, type Seen, statusViolations, violations } from './helpers/invariant.js'
import type { ReaderEnd, SeenEvent } from './helpers/reader.js'

const EXPECT: Expectations = { tokens: 5, faultEnd: 1000, bound: 2000, dataMayBeLost: false }

function reader(script: string[], end: ReaderEnd | undefined, endedAt = 1500): Seen {
  const events: SeenEvent[] = script.map((item, i) => {
    const [event, data] = item.includes(':') ? (item.split(':') as [string, string]) : [undefined, item]
    return { id: String(i), event, data, at: 0 }
  })
  return {
    name: 'r',
    events,
    attempts: [],
    end,
    endedAt: end === undefined ? undefined : endedAt,
    heartbeatsSinceEvent: 0,
  }
}
const done: ReaderEnd = { kind: 'terminal', data: 'done' }
const failed: ReaderEnd = { kind: 'terminal', data: 'failed' }

describe('the invariant of a reader', () => {
  it('passes a whole answer, a told gap and an honest failure', () => {
    expect(violations(reader(['t0', 't1', 't2', 't3', 't4'], done), EXPECT)).toEqual([])
    expect(violations(reader(['t0', 't1', 'rewind-gap:unknown', 't3', 't4'], failed), EXPECT)).toEqual([])
    expect(violations(reader(['t0', 't1'], failed), EXPECT)).toEqual([])
    expect(violations(reader(['t0'], { kind: 404 }), { ...EXPECT, dataMayBeLost: true })).toEqual([])
    const evicted = reader(['rewind-gap:evicted', 't3', 't4'], done)
    expect(violations(evicted, { ...EXPECT, evictionAllowed: true })).toEqual([])
  })

  it('catches each broken promise', () => {
    expect(violations(reader(['t0', 't1', 't3', 't4'], failed), EXPECT)).toEqual([
      'r: silent hole: t1 then t3 without rewind-gap',
    ])
    expect(violations(reader(['t0', 't1', 't1', 't2'], failed), EXPECT)).toEqual(['r: duplicate t1'])
    expect(violations(reader(['t0', 't1'], undefined), EXPECT)[0]).toMatch(
      /^r: no end 2000 ms after the fault/,
    )
    expect(violations(reader(['t0'], failed, 3500), EXPECT)).toEqual([
      'r: ended 2500 ms after the fault, past the 2000 ms bound',
    ])
    expect(violations(reader(['t0', 'rewind-gap:epoch', 't3', 't4'], done), EXPECT)).toEqual([
      'r: done with 3 of 5 tokens',
    ])
    expect(violations(reader(['t0'], { kind: 404 }), EXPECT)).toEqual(['r: 404 although the data was kept'])
  })

  it('holds the record to what the readers saw', () => {
    const whole = reader(['t0', 't1', 't2', 't3', 't4'], done)
    expect(statusViolations([whole], 'done', EXPECT)).toEqual([])
    expect(statusViolations([whole], 'failed', EXPECT)).toEqual(['a reader saw done, the record says failed'])
    expect(statusViolations([whole, reader(['t0'], failed)], 'done', EXPECT)).toContain(
      'readers saw different ends: done, failed',
    )
    expect(statusViolations([reader(['t0'], failed)], 'active', EXPECT)).toContain(
      'the answer is still active after every reader stopped',
    )
    expect(statusViolations([reader(['t0', 't1'], { kind: 204 })], 'done', EXPECT)).toEqual([
      'r: 204 (you have it all) with 2 of 5 tokens of a done answer',
    ])
  })
})
