/**
 * The app every worker runs: Rewind on Express with its history in Redis. Nothing in it knows about
 * the other workers: the shared store is what makes them one service. An event published on any
 * worker is appended to Redis, and every worker's live tail reads it back and sends it to its own
 * clients; a client that reconnects to another worker resumes from the same history.
 */
import { RewindError, sse } from '@rewind/express'
import express from 'express'
import { MAX_BODY_BYTES, PUBLISH_ERROR_STATUS, readPublishBody } from '../shared/publish.js'

/** The stream the example serves. */
export const STREAM = 'demo'

/**
 * Builds a worker's app. Its Rewind middleware is `app.locals.events` (close it to end the streams).
 *
 * @param {{ store: NonNullable<import('@rewind/express').SseOptions['store']>, worker: string, heartbeatInterval?: number }} options the shared history
 *   store (one per process: it holds that process's Redis connections), the name this worker gives
 *   itself in the `X-Worker` header and in publish answers, and the heartbeat period in ms (15000)
 */
export function createApp({ store, worker, heartbeatInterval = 15_000 }) {
  const events = sse({ store, heartbeatInterval, retry: 1000 })
  const app = express()
  app.disable('x-powered-by')
  app.locals.events = events
  app.use(events)

  // Which worker answered, so that a reconnection landing elsewhere can be seen (curl -i).
  app.use((req, res, next) => {
    res.setHeader('X-Worker', worker)
    next()
  })

  app.get('/events', (req, res) => {
    res.sse(STREAM)
  })

  app.post('/events', express.json({ limit: MAX_BODY_BYTES }), async (req, res, next) => {
    const body = readPublishBody(req.body)
    if ('error' in body) return res.status(400).json({ error: body.error })
    try {
      // With a shared store, publish resolves once Redis has the event (and its id).
      res.status(201).json({ id: await events.publish(STREAM, body.input), worker })
    } catch (error) {
      next(error)
    }
  })

  app.use((req, res) => {
    res.status(404).json({ error: `no route for ${req.method} ${req.path}` })
  })

  /** @type {import('express').ErrorRequestHandler} */
  const answerError = (error, req, res, next) => {
    if (res.headersSent) return next(error)
    if (error instanceof RewindError) {
      const status = PUBLISH_ERROR_STATUS[error.code]
      if (status !== undefined) return res.status(status).json({ error: error.message })
    }
    if (error?.type === 'entity.parse.failed')
      return res.status(400).json({ error: 'the body is not valid JSON' })
    const status = error?.status ?? error?.statusCode
    if (Number.isInteger(status) && status >= 400 && status < 500 && error.expose) {
      return res.status(status).json({ error: error.message })
    }
    console.error(error)
    res.status(500).json({ error: 'internal error' })
  }
  app.use(answerError)

  return app
}
