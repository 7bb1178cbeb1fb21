/** One publish, many clients: every client gets every event it should, and only those. */
import express, { type Request } from 'express'
import { describe, expect, it } from 'vitest'
import { listenForTest } from '../../../test/support/listen.js'
import { waitUntil } from '../../../test/support/wait.js'
import { type Client, connect } from './helpers/event-source.js'
import { useEventsApp } from './helpers/events.js'

const CLIENTS = 200
/** Bound for waits that involve every one of the clients on a shared two-core machine. */
const MANY_MS = 30_000

describe('fan-out', () => {
  it(`${CLIENTS} concurrent EventSources all receive every event, in order`, async () => {
    const { events, app } = useEventsApp()
    app.get('/events', events.handler('news'))
    const { url } = await listenForTest(app)

    const clients: Client[] = Array.from({ length: CLIENTS }, () => connect(`${url}/events`))
    await waitUntil(
      () => clients.every((client) => client.opens > 0),
      () => `every client to open: ${clients.filter((client) => client.opens > 0).length} of ${CLIENTS}`,
      MANY_MS,
    )
    expect(events.hub.stats().subscribers).toBe(CLIENTS)
    const ids = ['one', 'two', 'three'].map((data) => events.publish('news', { data }))
    await waitUntil(
      () => clients.every((client) => client.events.length >= 3),
      () => `every client to get 3 events: ${clients.filter((c) => c.events.length >= 3).length} did`,
      MANY_MS,
    )
    for (const client of clients) {
      expect(client.events).toEqual([
        { type: 'message', data: 'one', lastEventId: ids[0] },
        { type: 'message', data: 'two', lastEventId: ids[1] },
        { type: 'message', data: 'three', lastEventId: ids[2] },
      ])
    }
    expect(events.hub.stats().delivered).toBe(3 * CLIENTS)
  })
})

describe('per-request filter', () => {
  interface Order {
    user: string
    item: string
  }

  it('a filter built from the request (a header set by auth) sends each user only their events', async () => {
    const { events, app } = useEventsApp({ retry: 50 })
    app.get(
      '/orders',
      events.handler('orders', (req: Request) => {
        const user = req.get('x-user')
        return { filter: (event) => (event.value as Order).user === user }
      }),
    )
    const { server, url } = await listenForTest(app)
    const alice = connect(`${url}/orders`, { headers: { 'x-user': 'alice' } })
    const bob = connect(`${url}/orders`, { headers: { 'x-user': 'bob' } })
    await alice.opened()
    await bob.opened()

    const publish = (order: Order) => events.publish('orders', { data: order })
    publish({ user: 'alice', item: 'tea' })
    publish({ user: 'bob', item: 'coffee' })
    publish({ user: 'alice', item: 'cake' })
    expect((await alice.take(2)).map((event) => JSON.parse(event.data))).toEqual([
      { user: 'alice', item: 'tea' },
      { user: 'alice', item: 'cake' },
    ])
    expect((await bob.take(1)).map((event) => JSON.parse(event.data))).toEqual([
      { user: 'bob', item: 'coffee' },
    ])

    // The filter also applies to what a reconnecting client is replayed.
    server.closeAllConnections()
    await waitUntil(() => events.hub.stats().subscribers === 0, 'the server to see the drop')
    publish({ user: 'bob', item: 'scone' })
    publish({ user: 'alice', item: 'jam' })
    await alice.take(3)
    await bob.take(2)
    expect(alice.events.map((event) => JSON.parse(event.data).item)).toEqual(['tea', 'cake', 'jam'])
    expect(bob.events.map((event) => JSON.parse(event.data).item)).toEqual(['coffee', 'scone'])
  })
})

describe('per-request stream choice', () => {
  it('/rooms/:room follows the stream of its room only', async () => {
    const { events, app } = useEventsApp()
    app.get(
      '/rooms/:room',
      events.handler(({ params: { room } }) => `room:${room}`),
    )
    app.post('/rooms/:room/messages', express.text(), (req, res) => {
      const { room } = req.params
      res.status(201).json({ id: events.publish(`room:${room}`, { data: req.body }) })
    })
    const { url } = await listenForTest(app)
    const kitchen = connect(`${url}/rooms/kitchen`)
    const garden = connect(`${url}/rooms/garden`)
    await kitchen.opened()
    await garden.opened()
    expect(events.hub.stats().streams).toBe(2)

    const post = async (room: string, text: string): Promise<string> => {
      const res = await fetch(`${url}/rooms/${room}/messages`, {
        method: 'POST',
        headers: { 'content-type': 'text/plain' },
        body: text,
      })
      expect(res.status).toBe(201)
      return ((await res.json()) as { id: string }).id
    }
    const kettle = await post('kitchen', 'kettle on')
    const roses = await post('garden', 'roses out')
    const toast = await post('kitchen', 'toast up')
    expect(await kitchen.take(2)).toEqual([
      { type: 'message', data: 'kettle on', lastEventId: kettle },
      { type: 'message', data: 'toast up', lastEventId: toast },
    ])
    expect(await garden.take(1)).toEqual([{ type: 'message', data: 'roses out', lastEventId: roses }])
    expect(garden.events).toHaveLength(1)
  })
})
