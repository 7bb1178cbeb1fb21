/**
 * Streaming and resuming through a real listener and a real client: `eventsource` reconnects by
 * itself and sends `Last-Event-ID`; `http.get` with eventsource-parser covers the query parameter.
 */
import express from 'express'
import { describe, expect, it } from 'vitest'
import { listenForTest } from '../../../test/support/listen.js'
import { openStream } from '../../../test/support/raw-client.js'
import { waitUntil } from '../../../test/support/wait.js'
import { connect } from './helpers/event-source.js'
import { useEvents, useEventsApp } from './helpers/events.js'

function dataOf(events: readonly { data: string }[]): string[] {
  return events.map((event) => event.data)
}

describe('a live stream', () => {
  it('opens before the first event, then receives what is published', async () => {
    const { events, app } = useEventsApp()
    app.get('/events', events.handler('news'))
    const { url } = await listenForTest(app)

    const client = connect(`${url}/events`)
    // Nothing has been published: `open` can only fire because the headers were flushed at once.
    await client.opened()
    expect(events.hub.stats().subscribers).toBe(1)
    const first = events.publish('news', { data: 'first' })
    const second = events.publish('news', { event: 'update', data: { n: 2 } })
    await client.take(1)
    expect(client.events).toEqual([{ type: 'message', data: 'first', lastEventId: first }])
    expect(client.log).toEqual(['open', 'message'])
    expect(second).not.toBe(first)
  })

  it('delivers named events to their listeners, with JSON data', async () => {
    const { events, app } = useEventsApp()
    app.get('/events', (_req, res) => {
      res.sse('orders')
    })
    const { url } = await listenForTest(app)
    const client = connect(`${url}/events`, { types: ['created', 'message'] })
    await client.opened()
    const id = events.publish('orders', { event: 'created', data: { orderId: 42 } })
    expect(await client.take(1)).toEqual([{ type: 'created', data: '{"orderId":42}', lastEventId: id }])
  })
})

describe('resume after a dropped connection', () => {
  it('reconnects by itself and gets exactly the missed events, in order', async () => {
    const events = useEvents({ retry: 50 })
    const app = express()
    const resumedFrom: (string | undefined)[] = []
    const publishedBefore: number[] = []
    app.use(events)
    app.get(
      '/events',
      (req, _res, next) => {
        resumedFrom.push(req.get('last-event-id'))
        publishedBefore.push(events.hub.stats().published)
        next()
      },
      events.handler('news'),
    )
    const { server, url } = await listenForTest(app)
    const client = connect(`${url}/events`)
    await client.opened()

    const ids = ['a', 'b'].map((data) => events.publish('news', { data }))
    await client.take(2)
    server.closeAllConnections()
    await waitUntil(() => events.hub.stats().subscribers === 0, 'the server to see the drop')
    ids.push(...['c', 'd', 'e'].map((data) => events.publish('news', { data })))
    await client.take(5)
    await client.waitForOpens(2)
    ids.push(events.publish('news', { data: 'f' }))
    await client.take(6)

    expect(dataOf(client.events)).toEqual(['a', 'b', 'c', 'd', 'e', 'f'])
    expect(client.events.map((event) => event.lastEventId)).toEqual(ids)
    expect(resumedFrom).toEqual([undefined, ids[1]])
    // The missed events were all published before the client came back: they came from history.
    expect(publishedBefore).toEqual([0, 5])
    expect(events.hub.stats()).toMatchObject({ replayed: 3, gaps: 0 })
    expect(client.opens).toBe(2)
  })

  it('resumes from the lastEventId query parameter when there is no header', async () => {
    const { events, app } = useEventsApp()
    app.get('/events', events.handler('news'))
    const { url } = await listenForTest(app)
    const ids = ['a', 'b', 'c'].map((data) => events.publish('news', { data }))

    const stream = await openStream(`${url}/events?lastEventId=${encodeURIComponent(ids[0]!)}`)
    expect(stream.status).toBe(200)
    expect(await stream.waitForEvents(2)).toEqual([
      { id: ids[1], event: undefined, data: 'b' },
      { id: ids[2], event: undefined, data: 'c' },
    ])
    const live = events.publish('news', { data: 'd' })
    await stream.waitForEvents(3)
    expect(stream.events[2]).toEqual({ id: live, event: undefined, data: 'd' })
  })

  it('prefers the Last-Event-ID header to the query parameter', async () => {
    const { events, app } = useEventsApp()
    app.get('/events', events.handler('news'))
    const { url } = await listenForTest(app)
    const ids = ['a', 'b', 'c'].map((data) => events.publish('news', { data }))
    // A reconnecting EventSource keeps its first URL but sends the newer position in the header.
    const stream = await openStream(`${url}/events?lastEventId=${encodeURIComponent(ids[0]!)}`, {
      'last-event-id': ids[1]!,
    })
    expect(dataOf(await stream.waitForEvents(1))).toEqual(['c'])
    events.publish('news', { data: 'd' })
    expect(dataOf(await stream.waitForEvents(2))).toEqual(['c', 'd'])
  })

  it('a fresh client is told the current position first, so it never replays the past', async () => {
    const { events, app } = useEventsApp()
    app.get('/events', events.handler('news'))
    const { url } = await listenForTest(app)
    const old = events.publish('news', { data: 'old' })
    const stream = await openStream(`${url}/events`)
    const live = events.publish('news', { data: 'live' })
    expect(await stream.waitForEvents(1)).toEqual([{ id: live, event: undefined, data: 'live' }])
    expect(stream.text).toContain(`id: ${old}\n\n`)
  })
})

describe('gaps', () => {
  it('an evicted position gets the gap signal, then every retained event, and resumes without a second gap', async () => {
    const { events, app } = useEventsApp({ retry: 50, history: { maxEvents: 3 } })
    app.get('/events', events.handler('news'))
    const { server, url } = await listenForTest(app)
    const ids = ['1', '2', '3', '4', '5', '6'].map((data) => events.publish('news', { data }))

    // The query parameter sets the first position; reconnections then send the header.
    const client = connect(`${url}/events?lastEventId=${encodeURIComponent(ids[0]!)}`)
    expect(await client.take(4)).toEqual([
      // The signal's id is the position just before the oldest retained event.
      { type: 'rewind-gap', data: 'evicted', lastEventId: ids[2] },
      { type: 'message', data: '4', lastEventId: ids[3] },
      { type: 'message', data: '5', lastEventId: ids[4] },
      { type: 'message', data: '6', lastEventId: ids[5] },
    ])

    server.closeAllConnections()
    await waitUntil(() => events.hub.stats().subscribers === 0, 'the server to see the drop')
    const seventh = events.publish('news', { data: '7' })
    await client.take(5)
    expect(client.events[4]).toEqual({ type: 'message', data: '7', lastEventId: seventh })
    await client.waitForOpens(2)
    expect(events.hub.stats().gaps).toBe(1)
  })

  it('a client dropped right after the signal resumes from its id, losing nothing and without a second gap', async () => {
    const { events, app } = useEventsApp({ history: { maxEvents: 2 } })
    app.get('/events', events.handler('news'))
    const { url } = await listenForTest(app)
    const ids = ['1', '2', '3', '4'].map((data) => events.publish('news', { data }))

    const first = await openStream(`${url}/events`, { 'last-event-id': ids[0]! })
    const [signal] = await first.waitForEvents(1)
    expect(signal).toEqual({ id: ids[1], event: 'rewind-gap', data: 'evicted' })
    first.close()

    const again = await openStream(`${url}/events`, { 'last-event-id': signal!.id! })
    expect(await again.waitForEvents(2)).toEqual([
      { id: ids[2], event: undefined, data: '3' },
      { id: ids[3], event: undefined, data: '4' },
    ])
    expect(events.hub.stats().gaps).toBe(1)
  })

  it('the reset policy chosen per request sends the signal at the newest event and no replay', async () => {
    const { events, app } = useEventsApp({ history: { maxEvents: 2 } })
    app.get('/events', events.handler('news', { gapPolicy: 'reset' }))
    const { url } = await listenForTest(app)
    const ids = ['1', '2', '3', '4'].map((data) => events.publish('news', { data }))
    const stream = await openStream(`${url}/events`, { 'last-event-id': ids[0]! })
    expect(await stream.waitForEvents(1)).toEqual([{ id: ids[3], event: 'rewind-gap', data: 'evicted' }])
    const live = events.publish('news', { data: '5' })
    expect((await stream.waitForEvents(2))[1]).toEqual({ id: live, event: undefined, data: '5' })
  })
})
