/**
 * Rewind's counters and gauges on /metrics, for Prometheus: an Express app whose hub is read by
 * prom-client at each scrape (hub-metrics.js). The app itself is the smallest one that moves the
 * numbers: follow a stream, publish to it.
 *
 *   pnpm --filter metrics start             # then:
 *   curl -N http://127.0.0.1:3002/events &  # a subscriber
 *   curl -X POST http://127.0.0.1:3002/events -H 'content-type: application/json' -d '{"data":"hi"}'
 *   curl http://127.0.0.1:3002/metrics      # rewind_subscribers 1, rewind_events_published_total 1, ...
 *
 * Environment: PORT (3002), HOST (127.0.0.1).
 */
import { fileURLToPath } from 'node:url'
import { sse } from '@rewind/express'
import express from 'express'
import client from 'prom-client'
import { registerHubMetrics } from './hub-metrics.js'

/**
 * @param {import('@rewind/express').SseOptions} [options] the Rewind middleware's options
 * @returns {import('express').Express} the app; its middleware is `app.locals.events`
 */
export function createApp(options = {}) {
  const events = sse(options)
  // A registry of this app's own, so that two apps in one process (tests) do not share metrics.
  const registry = new client.Registry()
  registerHubMetrics(events.hub, { registry })

  const app = express()
  app.disable('x-powered-by')
  app.locals.events = events
  app.use(events)
  app.get('/events', (req, res) => res.sse('news'))
  app.post('/events', express.json(), (req, res) => {
    res.status(201).json({ id: events.publish('news', { data: req.body?.data ?? null }) })
  })
  app.get('/metrics', async (req, res) => {
    res.type(registry.contentType).send(await registry.metrics())
  })
  return app
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const app = createApp()
  const server = app.listen(Number(process.env.PORT ?? 3002), process.env.HOST ?? '127.0.0.1', () => {
    // Listening on a host and port (not a pipe), so the address is an AddressInfo.
    const { address, port } = /** @type {import('node:net').AddressInfo} */ (server.address())
    console.log(`Rewind metrics example at http://${address}:${port}/metrics`)
  })
  process.once('SIGTERM', () => app.locals.events.close({ server }))
}
