/**
 * Framing seen through a real EventSource: awkward data survives the round trip (line breaks come back
 * as LF, as the WHATWG parser defines), and nothing in data can inject a field.
 * @see https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation
 */
import { describe, expect, it } from 'vitest'
import { AWKWARD_DATA, asReceived } from '../../../test/support/awkward-data.js'
import { thrownBy } from '../../../test/support/throws.js'
import { RewindError } from '../src/index.js'
import { createSseApp, listen } from './helpers/app.js'
import { EventSourceClient } from './helpers/clients.js'

describe('data round trip through the eventsource client', () => {
  it('every awkward payload arrives as one message event with its own id', async () => {
    const app = await createSseApp()
    app.get('/events', (_request, reply) => reply.sse('awkward'))
    const { url } = await listen(app)
    const client = new EventSourceClient(`${url}/events`, { types: ['message', 'injected'] })
    await client.waitForOpen()

    const ids = AWKWARD_DATA.map(([, data]) => app.sse.publish('awkward', { data }))
    await client.waitForEvents(AWKWARD_DATA.length)

    expect(client.events).toEqual(
      AWKWARD_DATA.map(([, data], n) => ({ type: 'message', data: asReceived(data), lastEventId: ids[n] })),
    )
  })

  it('event names, including non-ASCII ones, reach their listeners; JSON data is serialized once', async () => {
    const app = await createSseApp()
    app.get('/events', (_request, reply) => reply.sse('typed'))
    const { url } = await listen(app)
    const client = new EventSourceClient(`${url}/events`, {
      types: ['message', 'order-created', 'événement'],
    })
    await client.waitForOpen()

    app.sse.publish('typed', { event: 'order-created', data: { id: 42, note: 'line\nbreak' } })
    app.sse.publish('typed', { event: 'événement', data: 'accent' })
    app.sse.publish('typed', { event: '', data: 'empty name means message' })
    await client.waitForEvents(3)

    expect(client.events.map(({ type, data }) => ({ type, data }))).toEqual([
      { type: 'order-created', data: '{"id":42,"note":"line\\nbreak"}' },
      { type: 'événement', data: 'accent' },
      { type: 'message', data: 'empty name means message' },
    ])
  })
})

describe('fields that cannot go on the wire', () => {
  it.each([
    ['LF', 'created\nid: 1'],
    ['CR', 'created\r'],
    ['CRLF', 'a\r\nb'],
    ['NUL', 'a\0b'],
  ])('publish refuses an event name with %s: RewindError ERR_INVALID_FIELD', async (_name, event) => {
    const app = await createSseApp()

    const caught = thrownBy(() => app.sse.publish('news', { event, data: 'x' }))

    expect(caught).toBeInstanceOf(RewindError)
    expect(caught).toMatchObject({ name: 'RewindError', code: 'ERR_INVALID_FIELD', field: 'event' })
    // Nothing was appended: the stream has no history.
    expect(app.sse.stats().published).toBe(0)
  })

  it('a route that publishes a bad event name answers through the error handler', async () => {
    const app = await createSseApp()
    app.post<{ Body: { event: string } }>('/publish', async (request) => ({
      id: app.sse.publish('news', { event: request.body.event, data: 'x' }),
    }))

    const response = await app.inject({ method: 'POST', url: '/publish', payload: { event: 'a\nb' } })

    expect(response.statusCode).toBe(500)
    expect(response.json()).toMatchObject({ code: 'ERR_INVALID_FIELD' })
  })
})
