/**
 * Recipe: sending to one client (docs/recipes.md). Each page makes up an id once
 * (`crypto.randomUUID()`) and follows `/events?client=<id>`; the server serves it the stream
 * `client:<id>`, so `sendTo(id, ...)` reaches that page only. The URL keeps the id across the
 * browser's reconnections, so a page that drops gets what was sent to it meanwhile. The id is a
 * secret of that page, not an identity: for a signed-in user, use private-streams.js.
 *
 *   curl -N 'http://127.0.0.1:3000/events?client=3b241101-e2bb-4255-8caf-4136c566a962'
 */
import { sse } from '@rewind/express'
import express from 'express'

// Random UUIDs: long enough that one page cannot guess another's.
const CLIENT = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/

/**
 * An Express app whose Rewind middleware is `app.locals.events`.
 * @typedef {import('express').Express & { locals: { events: import('@rewind/express').SseMiddleware } }} RecipeApp
 */

/** @returns {RecipeApp} */
export function createApp() {
  // One stream per page: a short history each; the store keeps at most 10000 (maxStreams).
  const events = sse({ history: { maxEvents: 50 } })
  const app = express()
  app.locals.events = events
  app.use(events)

  app.get('/events', (req, res) => {
    const client = req.query.client
    if (typeof client !== 'string' || !CLIENT.test(client)) {
      return res.status(400).json({ error: 'expected ?client=<a random UUID the page made>' })
    }
    res.sse(`client:${client}`)
  })

  // app.locals.events is set above; Express's own type cannot know it.
  return /** @type {RecipeApp} */ (app)
}

/**
 * Sends an event to one page.
 * @param {RecipeApp} app
 * @param {string} client the id the page connected with
 * @param {{ event?: string, data: unknown }} input
 */
export function sendTo(app, client, input) {
  return app.locals.events.publish(`client:${client}`, input)
}
