/**
 * `EventPreparer`: what `publish` makes of its input before anything is stored. The refusals' codes,
 * fields and messages are part of the contract: they tell the caller how to fix the call.
 */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { thrownAs } from '../../../test/support/throws.js'
import { RewindError } from '../src/errors.js'
import { EventPreparer } from '../src/event-preparer.js'

function preparer(maxEventBytes = 1024): EventPreparer {
  return new EventPreparer(JSON.stringify, maxEventBytes)
}

function refusal(call: () => unknown): RewindError {
  return thrownAs(call, RewindError)
}

describe('EventPreparer.prepare', () => {
  it('refuses an input that is not an event object, saying what it got and how to wrap it', () => {
    const wrap = 'wrap the value: publish(stream, { data: value })'
    for (const [input, got] of [
      [null, 'null'],
      [undefined, 'undefined'],
      [42, 'number'],
      ['text', 'string'],
      [true, 'boolean'],
    ] as const) {
      const error = refusal(() => preparer().prepare('s', input as never))
      expect(error.code).toBe('ERR_INVALID_ARGUMENT')
      expect(error.field).toBe('data')
      expect(error.message).toBe(`publish takes an event object { data, event? }, got ${got}; ${wrap}`)
    }
  })

  it('takes an empty event name as no name (a `message` event), so none is stored', () => {
    expect(preparer().prepare('s', { data: 'x', event: '' })).toStrictEqual({
      event: undefined,
      data: 'x',
      value: 'x',
    })
    expect(preparer().prepare('s', { data: 'x' })).toStrictEqual({ event: undefined, data: 'x', value: 'x' })
    expect(preparer().prepare('s', { data: { n: 1 }, event: 'tick' })).toStrictEqual({
      event: 'tick',
      data: '{"n":1}',
      value: { n: 1 },
    })
  })
})

describe('EventPreparer.serialize', () => {
  it('refuses data over maxEventBytes in UTF-8 bytes, naming the size, the limit and what to do', () => {
    const error = refusal(() => preparer(10).serialize('é'.repeat(6)))
    expect(error.code).toBe('ERR_EVENT_TOO_LARGE')
    expect(error.field).toBe('data')
    expect(error.message).toBe(
      'event data is 12 bytes, more than maxEventBytes (10); send a reference to the data, or raise maxEventBytes (and maxQueueBytes)',
    )
  })

  it('accepts exactly the data of at most maxEventBytes UTF-8 bytes, whatever its characters', () => {
    fc.assert(
      fc.property(
        fc.string({ unit: 'grapheme', maxLength: 12 }),
        fc.integer({ min: 1, max: 40 }),
        (data, max) => {
          const bytes = Buffer.byteLength(data)
          if (bytes <= max) expect(preparer(max).serialize(data)).toBe(data)
          else expect(refusal(() => preparer(max).serialize(data)).code).toBe('ERR_EVENT_TOO_LARGE')
        },
      ),
    )
  })
})
