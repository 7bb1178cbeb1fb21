/** The events a source dispatches carry what they were made with, under their own type. */
import { describe, expect, it } from 'vitest'
import { RewindClientError } from '../src/errors.js'
import { EndEvent, GapEvent, OpenEvent, SourceErrorEvent, SourceMessageEvent } from '../src/events.js'

describe('the source events', () => {
  it('are typed and carry every field they were given', () => {
    const headers = new Headers({ 'content-type': 'text/event-stream' })
    const error = new RewindClientError('ERR_STALLED', 'quiet')
    const events = [
      new OpenEvent({ status: 200, headers, url: 'http://127.0.0.1:9/s' }),
      new SourceMessageEvent('note', {
        data: { n: 1 },
        id: '7',
        lastEventId: '7',
        origin: 'http://127.0.0.1:9',
      }),
      new GapEvent({ reason: 'evicted', lastEventId: '5' }),
      new EndEvent({ reason: 'done', lastEventId: '9' }),
      new SourceErrorEvent(error, 250),
    ]
    expect(events.map((event) => ({ ...event, type: event.type }))).toMatchObject([
      { type: 'open', status: 200, headers, url: 'http://127.0.0.1:9/s' },
      { type: 'note', data: { n: 1 }, id: '7', lastEventId: '7', origin: 'http://127.0.0.1:9' },
      { type: 'gap', reason: 'evicted', lastEventId: '5' },
      { type: 'end', reason: 'done', lastEventId: '9' },
      { type: 'error', error, reconnectDelay: 250 },
    ])
    expect(events.every((event) => event instanceof Event)).toBe(true)
  })
})
