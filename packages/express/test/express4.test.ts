/** Express 4 (installed as `express4`): the same middleware, the same flow. */
import { createRequire } from 'node:module'
import type { ErrorRequestHandler } from 'express'
import express4 from 'express4'
import request from 'supertest'
import { describe, expect, it } from 'vitest'
import { listenForTest } from '../../../test/support/listen.js'
import { openStream } from '../../../test/support/raw-client.js'
import { waitUntil } from '../../../test/support/wait.js'
import { RewindError } from '../src/index.js'
import { connect } from './helpers/event-source.js'
import { useEvents } from './helpers/events.js'

describe('Express 4', () => {
  it('is the Express 4 package', () => {
    const { version } = createRequire(import.meta.url)('express4/package.json') as { version: string }
    expect(version).toMatch(/^4\./)
  })

  it('receives, drops, and resumes with exactly the missed events', async () => {
    const events = useEvents({ retry: 50 })
    const app = express4()
    const resumedFrom: (string | undefined)[] = []
    app.use(events)
    app.get(
      '/rooms/:room',
      (req, _res, next) => {
        resumedFrom.push(req.get('last-event-id'))
        next()
      },
      events.handler(({ params: { room } }) => `room:${room}`),
    )
    const { url, sockets } = await listenForTest(app)
    const client = connect(`${url}/rooms/lobby`)
    await client.opened()

    const ids = ['a', 'b'].map((data) => events.publish('room:lobby', { data }))
    await client.take(2)
    // Drop the one connection from the server side, as a proxy timeout or a network change would.
    expect(sockets).toHaveLength(1)
    sockets[0]!.destroy()
    await waitUntil(() => events.hub.stats().subscribers === 0, 'the server to see the drop')
    ids.push(...['c', 'd'].map((data) => events.publish('room:lobby', { data })))
    await client.take(4)
    await client.waitForOpens(2)
    ids.push(events.publish('room:lobby', { data: 'e' }))
    await client.take(5)

    expect(client.events.map((event) => [event.data, event.lastEventId])).toEqual(
      ['a', 'b', 'c', 'd', 'e'].map((data, index) => [data, ids[index]]),
    )
    expect(resumedFrom).toEqual([undefined, ids[1]])
  })

  it('sends the event-stream headers and keeps headers set before res.sse', async () => {
    const events = useEvents()
    const app = express4()
    app.use(events)
    app.get('/events', (_req, res) => {
      res.set('x-request-id', 'abc')
      res.sse('news')
    })
    const { url } = await listenForTest(app)
    const stream = await openStream(`${url}/events`)
    expect(stream.status).toBe(200)
    expect(stream.headers['content-type']).toBe('text/event-stream; charset=utf-8')
    expect(stream.headers['cache-control']).toMatch(/\bno-transform\b/)
    expect(stream.headers['x-accel-buffering']).toBe('no')
    expect(stream.headers['x-request-id']).toBe('abc')
  })

  it('errors before the stream go to next(err) and the error handler', async () => {
    const seen: unknown[] = []
    const events = useEvents()
    const app = express4()
    app.use(events)
    app.get(
      '/bad-name',
      events.handler(() => ''),
    )
    app.get(
      '/throws',
      events.handler(() => {
        throw new Error('resolver failed')
      }),
    )
    app.get('/late', (_req, res) => {
      res.write('started')
      res.sse('news')
    })
    const handler: ErrorRequestHandler = (error: unknown, _req, res, _next) => {
      seen.push(error)
      if (res.headersSent) {
        res.end()
        return
      }
      res.status(error instanceof RewindError ? 400 : 500).json({
        code: error instanceof RewindError ? error.code : (error as Error).message,
      })
    }
    app.use(handler)
    const badName = await request(app).get('/bad-name')
    expect([badName.status, badName.body]).toEqual([400, { code: 'ERR_INVALID_STREAM' }])
    const throws = await request(app).get('/throws')
    expect([throws.status, throws.body]).toEqual([500, { code: 'resolver failed' }])
    await request(app).get('/late')
    expect((seen[2] as RewindError).code).toBe('ERR_INVALID_ARGUMENT')
    expect(events.hub.stats()).toMatchObject({ connections: 0, subscribers: 0, streams: 0 })
  })

  it('close({ server }) ends the streams and closes an Express 4 server', async () => {
    const events = useEvents({ retry: 50 })
    const app = express4()
    app.use(events)
    app.get('/events', events.handler('news'))
    const { server, url } = await listenForTest(app)
    const client = connect(`${url}/events`)
    await client.opened()
    await events.close({ server })
    expect(server.listening).toBe(false)
    await client.waitForErrors(1)
  })
})
