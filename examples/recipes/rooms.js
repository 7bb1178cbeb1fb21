/**
 * Recipe: rooms (docs/recipes.md). A room is a stream: `GET /rooms/:room/events` follows one,
 * `POST /rooms/:room/messages` publishes to it. Room names from the URL are checked against a
 * short pattern, so a client cannot create streams with arbitrary names; the number of rooms with a
 * history is bounded by the store (`maxStreams`, 10000 by default).
 *
 *   curl -N http://127.0.0.1:3000/rooms/lobby/events
 *   curl -X POST http://127.0.0.1:3000/rooms/lobby/messages -H 'content-type: application/json' \
 *     -d '{"from":"ada","text":"hello"}'
 */
import { sse } from '@rewind/express'
import express from 'express'

const ROOM = /^[a-z0-9-]{1,32}$/

/**
 * An Express app whose Rewind middleware is `app.locals.events`.
 * @typedef {import('express').Express & { locals: { events: import('@rewind/express').SseMiddleware } }} RecipeApp
 */

/** @returns {RecipeApp} */
export function createApp() {
  const events = sse({ history: { maxEvents: 200 } })
  const app = express()
  app.locals.events = events
  app.use(events)

  app.param('room', (req, res, next, room) => {
    if (!ROOM.test(room)) return res.status(404).json({ error: 'rooms are named with a-z, 0-9 and -' })
    next()
  })

  app.get('/rooms/:room/events', (req, res) => res.sse(`room:${req.params.room}`))

  app.post('/rooms/:room/messages', express.json(), (req, res) => {
    const { from, text } = req.body ?? {}
    if (typeof from !== 'string' || typeof text !== 'string') {
      return res.status(400).json({ error: 'expected { "from": string, "text": string }' })
    }
    const id = events.publish(`room:${req.params.room}`, { event: 'message', data: { from, text } })
    res.status(201).json({ id })
  })

  // app.locals.events is set above; Express's own type cannot know it.
  return /** @type {RecipeApp} */ (app)
}
