/**
 * `compression()` in front of the stream: it would hold small events in its gzip buffer, but the
 * stream's `Cache-Control: no-transform` makes it step aside for event streams only.
 */
import compression from 'compression'
import express from 'express'
import request from 'supertest'
import { describe, expect, it } from 'vitest'
import { listenForTest } from '../../../test/support/listen.js'
import { openStream } from '../../../test/support/raw-client.js'
import { connect } from './helpers/event-source.js'
import { useEvents } from './helpers/events.js'

async function startApp() {
  const events = useEvents()
  const app = express()
  app.use(compression())
  app.use(events)
  app.get('/data', (_req, res) => {
    res.json({ items: Array.from({ length: 500 }, (_, n) => `item ${n}`) })
  })
  app.get('/events', events.handler('news'))
  return { app, events, ...(await listenForTest(app)) }
}

describe('behind compression()', () => {
  it('an ordinary JSON route is compressed', async () => {
    const { app } = await startApp()
    const res = await request(app).get('/data').set('accept-encoding', 'gzip')
    expect(res.status).toBe(200)
    expect(res.headers['content-encoding']).toBe('gzip')
  })

  it('the event stream is not: each event arrives at once, as plain text', async () => {
    const { events, url } = await startApp()
    const stream = await openStream(`${url}/events`, { 'accept-encoding': 'gzip, deflate, br' })
    expect(stream.status).toBe(200)
    expect(stream.headers['content-encoding']).toBeUndefined()
    expect(stream.headers['cache-control']).toMatch(/\bno-transform\b/)
    // Gzip would keep this lone small event in its buffer: it arriving at all shows it was not compressed.
    const first = events.publish('news', { data: 'first' })
    expect(await stream.waitForEvents(1)).toEqual([{ id: first, event: undefined, data: 'first' }])
    const second = events.publish('news', { data: 'second' })
    expect((await stream.waitForEvents(2))[1]).toEqual({ id: second, event: undefined, data: 'second' })
    expect(stream.text).toContain(`id: ${second}\ndata: second\n\n`)
  })

  it('an EventSource (which asks for gzip) gets every event as it is published', async () => {
    const { events, url } = await startApp()
    const client = connect(`${url}/events`)
    await client.opened()
    for (const data of ['a', 'b', 'c']) {
      const id = events.publish('news', { data })
      const received = await client.take(client.events.length + 1)
      expect(received.at(-1)).toEqual({ type: 'message', data, lastEventId: id })
    }
  })
})
