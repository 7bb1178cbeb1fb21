/**
 * `cors()` in front of the stream. A reconnecting browser sends `Last-Event-ID`, which is not a
 * CORS-safelisted header, so a cross-origin EventSource needs it allowed by the preflight.
 */
import cors from 'cors'
import express from 'express'
import request from 'supertest'
import { describe, expect, it } from 'vitest'
import { listenForTest } from '../../../test/support/listen.js'
import { openStream } from '../../../test/support/raw-client.js'
import { useEvents } from './helpers/events.js'

const ORIGIN = 'https://app.example'

function appWith(options: cors.CorsOptions) {
  const events = useEvents()
  const app = express()
  app.use(cors(options))
  app.use(events)
  app.get('/events', events.handler('news'))
  return { app, events }
}

function preflight(app: express.Express) {
  return request(app)
    .options('/events')
    .set('origin', ORIGIN)
    .set('access-control-request-method', 'GET')
    .set('access-control-request-headers', 'last-event-id')
}

function allowedHeaders(res: request.Response): string[] {
  return String(res.headers['access-control-allow-headers'] ?? '')
    .split(',')
    .map((name) => name.trim().toLowerCase())
}

describe('behind cors()', () => {
  it('the preflight of a reconnecting EventSource allows Last-Event-ID, with credentials', async () => {
    const { app } = appWith({ origin: ORIGIN, credentials: true })
    const res = await preflight(app)
    expect(res.status).toBe(204)
    expect(res.headers['access-control-allow-origin']).toBe(ORIGIN)
    expect(res.headers['access-control-allow-credentials']).toBe('true')
    // With no `allowedHeaders`, cors reflects the headers the browser asks for.
    expect(allowedHeaders(res)).toContain('last-event-id')
  })

  it('an explicit allowedHeaders list must name Last-Event-ID', async () => {
    const without = await preflight(appWith({ origin: ORIGIN, allowedHeaders: ['Content-Type'] }).app)
    expect(allowedHeaders(without)).not.toContain('last-event-id')
    const withIt = await preflight(
      appWith({ origin: ORIGIN, allowedHeaders: ['Content-Type', 'Last-Event-ID'] }).app,
    )
    expect(allowedHeaders(withIt)).toContain('last-event-id')
  })

  it('the stream response keeps the CORS headers set by the middleware', async () => {
    const { app, events } = appWith({ origin: ORIGIN, credentials: true })
    const { url } = await listenForTest(app)
    const stream = await openStream(`${url}/events`, { origin: ORIGIN })
    expect(stream.status).toBe(200)
    expect(stream.headers['content-type']).toBe('text/event-stream; charset=utf-8')
    expect(stream.headers['access-control-allow-origin']).toBe(ORIGIN)
    expect(stream.headers['access-control-allow-credentials']).toBe('true')
    expect(stream.headers.vary).toMatch(/\bOrigin\b/)
    const id = events.publish('news', { data: 'cross-origin' })
    expect(await stream.waitForEvents(1)).toEqual([{ id, event: undefined, data: 'cross-origin' }])
  })

  it('a resuming cross-origin request is served from its Last-Event-ID', async () => {
    const { app, events } = appWith({ origin: ORIGIN, credentials: true })
    const { url } = await listenForTest(app)
    const ids = ['a', 'b'].map((data) => events.publish('news', { data }))
    const stream = await openStream(`${url}/events`, { origin: ORIGIN, 'last-event-id': ids[0]! })
    expect(stream.headers['access-control-allow-origin']).toBe(ORIGIN)
    expect(await stream.waitForEvents(1)).toEqual([{ id: ids[1], event: undefined, data: 'b' }])
  })
})
