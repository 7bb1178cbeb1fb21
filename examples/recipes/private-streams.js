/**
 * Recipe: per-user private streams with auth (docs/recipes.md). Each user follows a stream named
 * after their id, and the id comes from the credentials, never from the URL: a client cannot ask
 * for someone else's stream. Credentials are a bearer token in the `Authorization` header (a
 * fetch-based client can set headers; the browser's EventSource cannot) or a sign-in cookie (what
 * a browser's `new EventSource(url, { withCredentials: true })` sends).
 *
 *   curl -N http://127.0.0.1:3000/me/events -H 'Authorization: Bearer <token>'
 *   curl -N http://127.0.0.1:3000/me/events -H 'Cookie: sid=<token>'
 */
import { sse } from '@rewind/express'
import express from 'express'

/**
 * The stream of one user's private events.
 * @param {string} userId
 */
export const userStream = (userId) => `user:${userId}`

/**
 * An Express app whose Rewind middleware is `app.locals.events`.
 * @typedef {import('express').Express & { locals: { events: import('@rewind/express').SseMiddleware } }} RecipeApp
 */

/**
 * @param {{ authenticate(token: string): string | undefined }} auth turns a token into a user id
 *   (your sign-in store or JWT check), or `undefined` when it is not valid
 * @returns {RecipeApp}
 */
export function createApp(auth) {
  // Each user's stream keeps its own history: keep it short, there is one per user. The store
  // keeps at most 10000 streams' histories (maxStreams), dropping those of users not connected.
  const events = sse({ history: { maxEvents: 100 } })
  const app = express()
  app.locals.events = events
  app.use(events)

  app.get('/me/events', (req, res) => {
    const userId = userFrom(req, auth)
    // A 401 makes a browser's EventSource stop for good, which is right for bad credentials: the
    // page signs in again, then opens a new stream.
    if (userId === undefined) return res.status(401).json({ error: 'sign in first' })
    res.sse(userStream(userId))
  })

  // app.locals.events is set above; Express's own type cannot know it.
  return /** @type {RecipeApp} */ (app)
}

/**
 * Sends a private event to one user, on every device they follow it from. Call it from anywhere
 * in the app (a job, a webhook, another route); the user's devices that are away get it on resume.
 *
 * @param {RecipeApp} app
 * @param {string} userId
 * @param {{ event?: string, data: unknown }} input
 */
export function notify(app, userId, input) {
  return app.locals.events.publish(userStream(userId), input)
}

/**
 * The user id the request's credentials stand for, or `undefined` without valid ones.
 * @param {import('express').Request} req
 * @param {{ authenticate(token: string): string | undefined }} auth
 */
function userFrom(req, auth) {
  const header = req.get('authorization')
  const bearer = header?.startsWith('Bearer ') ? header.slice('Bearer '.length) : undefined
  const cookie = /(?:^|;\s*)sid=([^;]+)/.exec(req.get('cookie') ?? '')?.[1]
  const token = bearer ?? (cookie === undefined ? undefined : decodeURIComponent(cookie))
  return token === undefined ? undefined : auth.authenticate(token)
}
