/**
 * MemoryHistory's id grammar and its page cache (the ring, bounds and gaps are in memory-store.test.ts).
 */
import { describe, expect, it } from 'vitest'
import { MemoryHistory } from '../src/memory-history.js'

function historyWith(count: number): MemoryHistory {
  const history = new MemoryHistory({ maxEvents: 1000 })
  for (let i = 0; i < count; i++) history.append({ event: undefined, data: `${i}`, value: i })
  return history
}

describe('MemoryHistory ids', () => {
  it('resumes only from ids it issued, written exactly as it wrote them', () => {
    const history = historyWith(10)
    const { epoch } = history
    expect(history.read(`${epoch}-3`, 100).events.map((e) => e.data)).toEqual([
      '3',
      '4',
      '5',
      '6',
      '7',
      '8',
      '9',
    ])
    // `e-007` names e-7 but was never issued: read as seq 0 it would replay the whole history.
    for (const foreign of [
      `${epoch}-007`,
      `${epoch}-03`,
      `${epoch}-3x`,
      `${epoch}-3 `,
      `${epoch}-3-4`,
      `x-${epoch}-3`,
      ` ${epoch}-3`,
      `${epoch}-+3`,
      `${epoch}--3`,
    ]) {
      const result = history.read(foreign, 100)
      expect(result.gap, foreign).toBe('unknown')
      expect(result.events, foreign).toEqual([])
    }
  })

  it('accepts the sequence 0 of an empty history, and the position before its first event', () => {
    const history = new MemoryHistory()
    expect(history.read(`${history.epoch}-0`, 10)).toMatchObject({ events: [], done: true })
    expect(history.read(`${history.epoch}-0`, 10).gap).toBeUndefined()
  })
})

describe('MemoryHistory page cache', () => {
  it('hands the same page to readers of several positions while the history does not change', () => {
    const history = historyWith(40)
    const positions = Array.from({ length: 16 }, (_, i) => `${history.epoch}-${i}`)
    const first = positions.map((after) => history.read(after, 256).events)
    positions.forEach((after, i) => {
      expect(history.read(after, 256).events).toBe(first[i])
    })
  })

  it('keeps at most 16 pages, so made-up positions cannot grow it without bound', () => {
    const history = historyWith(40)
    const positions = Array.from({ length: 17 }, (_, i) => `${history.epoch}-${i}`)
    const first = positions.map((after) => history.read(after, 256).events)
    // The 17th page cleared the cache: the first position is read afresh (same events, new page).
    const again = history.read(positions[0]!, 256).events
    expect(again).not.toBe(first[0])
    expect(again).toEqual(first[0])
  })
})
