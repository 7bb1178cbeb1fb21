/**
 * The framing round trip through the real client: what `publish` takes is what `MessageEvent.data`
 * gives back, after the one change the spec makes (CRLF and lone CR become LF).
 * @see https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation
 */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { AWKWARD_DATA, asReceived } from '../../../test/support/awkward-data.js'
import { listenForTest } from '../../../test/support/listen.js'
import { openStream } from '../../../test/support/raw-client.js'
import { RewindError } from '../src/index.js'
import { connect } from './helpers/event-source.js'
import { useEventsApp } from './helpers/events.js'

async function startApp() {
  const { events, app } = useEventsApp()
  app.get('/events', events.handler('news'))
  return { events, ...(await listenForTest(app)) }
}

describe('data round trip through eventsource', () => {
  it('every awkward payload arrives as published, with CR and CRLF read as LF', async () => {
    const { events, url } = await startApp()
    const client = connect(`${url}/events`)
    await client.opened()
    const ids = AWKWARD_DATA.map(([, data]) => events.publish('news', { data }))
    const received = await client.take(AWKWARD_DATA.length)
    for (const [index, [name, data]] of AWKWARD_DATA.entries()) {
      expect(received[index], name).toEqual({
        type: 'message',
        data: asReceived(data),
        lastEventId: ids[index],
      })
    }
  })

  it('arbitrary strings with line breaks, spaces and colons arrive as published (property)', async () => {
    const { events, url } = await startApp()
    const client = connect(`${url}/events`)
    await client.opened()
    const piece = fc.oneof(
      fc.string({ unit: 'binary', maxLength: 12 }),
      fc.constantFrom('\r', '\n', '\r\n', ' ', ':', 'data: ', 'id: ', 'event: ', '\r\r\n\n'),
    )
    const payload = fc.array(piece, { maxLength: 8 }).map((pieces) => pieces.join(''))
    let sent = 0
    await fc.assert(
      fc.asyncProperty(fc.array(payload, { minLength: 1, maxLength: 10 }), async (batch) => {
        for (const data of batch) events.publish('news', { data })
        const received = (await client.take(sent + batch.length)).slice(sent)
        sent += batch.length
        expect(received.map((event) => event.data)).toEqual(batch.map(asReceived))
      }),
      { numRuns: 25 },
    )
  })

  it('unusual but valid event names reach listeners of that name', async () => {
    const { events, url } = await startApp()
    const names = ['price update', 'ünïcödé', '事件', 'with:colon', ' leading-space']
    const client = connect(`${url}/events`, { types: names })
    await client.opened()
    for (const name of names) events.publish('news', { event: name, data: name })
    const received = await client.take(names.length)
    // The client strips the one space after the colon only, so a leading space in a name survives.
    expect(received.map((event) => [event.type, event.data])).toEqual(names.map((name) => [name, name]))
  })
})

describe('event names that would break the framing', () => {
  it.each([
    ['LF', 'a\nb'],
    ['CR', 'a\rb'],
    ['CRLF that tries to inject a field', 'ping\r\nevent: admin'],
    ['an injected id', 'x\nid: 999'],
    ['NUL', 'a\0b'],
  ])('%s: publish throws ERR_INVALID_FIELD and nothing is sent', async (_name, event) => {
    const { events, url } = await startApp()
    const stream = await openStream(`${url}/events`)
    const client = connect(`${url}/events`, { types: ['message', 'admin', 'a', 'ping', 'x'] })
    await client.opened()

    let thrown: unknown
    try {
      events.publish('news', { event, data: 'payload' })
    } catch (error) {
      thrown = error
    }
    expect(thrown).toBeInstanceOf(RewindError)
    expect(thrown).toMatchObject({ name: 'RewindError', code: 'ERR_INVALID_FIELD', field: 'event' })
    expect(events.hub.stats().published).toBe(0)

    const next = events.publish('news', { data: 'after' })
    expect(await client.take(1)).toEqual([{ type: 'message', data: 'after', lastEventId: next }])
    expect(await stream.waitForEvents(1)).toEqual([{ id: next, event: undefined, data: 'after' }])
    expect(stream.text).not.toContain('payload')
  })
})
