/**
 * Recipe: behind nginx, Cloudflare or a load balancer (docs/recipes.md). Proxies cut a response on
 * which nothing has passed for a while (nginx `proxy_read_timeout` 60 s, AWS ALB idle timeout 60 s,
 * Cloudflare 100 s): heartbeats (an SSE comment, no id) keep a quiet stream above that. They buffer
 * responses unless told not to: Rewind sends `X-Accel-Buffering: no` and
 * `Cache-Control: no-cache, no-transform` on every stream. And they reuse idle keep-alive
 * connections to the app: Node must keep them open longer than the proxy does, or the proxy sends a
 * request on a connection Node is closing (a 502). The nginx side is nginx-sse.conf, next to this.
 */
import { createServer } from 'node:http'
import { sse } from '@rewind/express'
import express from 'express'

/**
 * An Express app whose Rewind middleware is `app.locals.events`.
 * @typedef {import('express').Express & { locals: { events: import('@rewind/express').SseMiddleware } }} RecipeApp
 */

/**
 * @param {{ heartbeatInterval?: number }} [options] milliseconds between heartbeats on a quiet stream
 *   (15000: under every common proxy idle timeout; the default of the library too)
 * @returns {RecipeApp}
 */
export function createApp({ heartbeatInterval = 15_000 } = {}) {
  const events = sse({ heartbeatInterval })
  const app = express()
  // Behind a proxy, req.ip and req.protocol come from X-Forwarded-* (trust only your proxy's hop).
  app.set('trust proxy', 'loopback')
  app.locals.events = events
  app.use(events)
  app.get('/events', (req, res) => res.sse('news'))
  app.post('/news', express.json(), (req, res) => {
    res.status(201).json({ id: events.publish('news', { data: req.body }) })
  })
  // app.locals.events is set above; Express's own type cannot know it.
  return /** @type {RecipeApp} */ (app)
}

/**
 * An HTTP server for `app` with keep-alive timeouts above a proxy's.
 * @param {import('express').Express} app
 * @param {{ proxyIdleTimeout?: number }} [options] how long the proxy keeps an idle upstream
 *   connection, in milliseconds (60000: nginx's `keepalive_timeout` and the ALB's idle timeout)
 */
export function createProxiedServer(app, { proxyIdleTimeout = 60_000 } = {}) {
  const server = createServer(app)
  server.keepAliveTimeout = proxyIdleTimeout + 5_000
  // Must exceed keepAliveTimeout, or Node cuts a reused connection that is still sending headers.
  server.headersTimeout = proxyIdleTimeout + 6_000
  return server
}
