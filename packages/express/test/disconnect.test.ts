/** Clients leaving and application code failing mid-stream: nothing stays behind, nobody else notices. */
import { request as httpRequest } from 'node:http'
import express from 'express'
import { describe, expect, it } from 'vitest'
import { listenForTest } from '../../../test/support/listen.js'
import { openStream } from '../../../test/support/raw-client.js'
import { waitUntil } from '../../../test/support/wait.js'
import type { Subscription } from '../src/index.js'
import { connect } from './helpers/event-source.js'
import { mountStreams, recordUnhandled, useEvents, useEventsApp } from './helpers/events.js'

describe('client disconnect', () => {
  it('cleans up every connection, subscriber and stream once the clients close', async () => {
    const disconnects: unknown[] = []
    const { events, app } = useEventsApp({ onDisconnect: (info) => disconnects.push(info) })
    mountStreams(app, events, 10)
    const { url } = await listenForTest(app)

    const clients = [connect(`${url}/news`), connect(`${url}/news`), connect(`${url}/rooms/a`)]
    const raw = [await openStream(`${url}/rooms/b`), await openStream(`${url}/ticks`)]
    for (const client of clients) await client.opened()
    expect(events.hub.stats()).toMatchObject({ connections: 5, subscribers: 4, streams: 3 })
    events.publish('news', { data: 'hello' })
    await clients[0]!.take(1)

    for (const client of clients) client.close()
    for (const stream of raw) stream.close()
    await waitUntil(
      () => {
        const { connections, subscribers, streams, queuedBytes } = events.hub.stats()
        return connections === 0 && subscribers === 0 && streams === 0 && queuedBytes === 0
      },
      () => `the hub to be empty: ${JSON.stringify(events.hub.stats())}`,
    )
    expect(disconnects).toHaveLength(5)
    expect(disconnects.every((info) => (info as { reason: string }).reason === 'client')).toBe(true)
  })
})

describe('the subscription returned by res.sse', () => {
  it('close() ends the stream from the server side, and done resolves with the reason', async () => {
    const events = useEvents()
    const app = express()
    let subscription: Subscription | undefined
    app.use(events)
    app.get('/once', (_req, res) => {
      subscription = res.sse('news')
    })
    const { url } = await listenForTest(app)
    const stream = await openStream(`${url}/once`)
    const id = events.publish('news', { data: 'just this' })
    await stream.waitForEvents(1)
    expect(subscription).toMatchObject({ stream: 'news', closed: false })
    subscription!.close()
    expect(await subscription!.done).toBe('end')
    await stream.waitForEnd()
    expect(stream.events).toEqual([{ id, event: undefined, data: 'just this' }])
    expect(events.hub.stats().connections).toBe(0)
  })
})

describe('a client that leaves before the stream starts', () => {
  it('leaves nothing behind when res.sse runs after the client has gone', async () => {
    const events = useEvents()
    const app = express()
    let arrived = false
    let closed = false
    let served = false
    let release!: () => void
    const gate = new Promise<void>((resolve) => {
      release = resolve
    })
    app.use(events)
    app.get(
      '/events',
      async (_req, res, next) => {
        arrived = true
        res.on('close', () => {
          closed = true
        })
        // Slow auth, a database lookup: the client gives up meanwhile.
        await gate
        next()
        served = true
      },
      events.handler('news'),
    )
    const { url } = await listenForTest(app)
    const client = httpRequest(`${url}/events`, { agent: false })
    client.on('error', () => {})
    client.end()
    await waitUntil(() => arrived, 'the request to reach the app')
    client.destroy()
    await waitUntil(() => closed, 'the server to see the client leave')
    release()
    await waitUntil(() => served, 'res.sse to have run')
    await waitUntil(
      () => events.hub.stats().connections === 0,
      () => `no connection left: ${JSON.stringify(events.hub.stats())}`,
      1000,
    )
  })
})

describe('an error after the stream started', () => {
  const unhandled = recordUnhandled()

  it('a filter that throws closes its stream, reaches onError once, and leaves other clients alone', async () => {
    const reported: { error: unknown; info: unknown }[] = []
    const disconnects: unknown[] = []
    const events = useEvents({
      onError: (error, info) => reported.push({ error, info }),
      onDisconnect: (info) => disconnects.push(info),
    })
    const app = express()
    app.use(events)
    app.get(
      '/picky',
      events.handler('news', {
        filter: (event) => {
          if (event.data === 'boom') throw new Error('filter failed')
          return true
        },
      }),
    )
    app.get('/all', events.handler('news'))
    const { url } = await listenForTest(app)
    // A raw reader does not reconnect, so the end of its stream is observable (an EventSource would
    // come back and meet the same failing filter on replay).
    const picky = await openStream(`${url}/picky`)
    const bystander = connect(`${url}/all`)
    await bystander.opened()

    events.publish('news', { data: 'ok 1' })
    await picky.waitForEvents(1)
    events.publish('news', { data: 'boom' })
    events.publish('news', { data: 'ok 2' })
    await picky.waitForEnd()
    await bystander.take(3)
    events.publish('news', { data: 'ok 3' })
    await bystander.take(4)

    expect(picky.events.map((event) => event.data)).toEqual(['ok 1'])
    expect(bystander.events.map((event) => event.data)).toEqual(['ok 1', 'boom', 'ok 2', 'ok 3'])
    expect(reported).toHaveLength(1)
    expect((reported[0]!.error as Error).message).toBe('filter failed')
    expect(reported[0]!.info).toEqual({ stream: 'news' })
    expect(disconnects).toEqual([{ stream: 'news', reason: 'error' }])
    expect(events.hub.stats()).toMatchObject({ errors: 1, subscribers: 1 })
    expect(bystander.errors).toBe(0)
    expect(unhandled).toEqual([])
  })
})
