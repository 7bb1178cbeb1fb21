/**
 * Hono's `streamSSE` on Node (`@hono/node-server`): one stream per client in a Set, each event
 * written to every stream. It keeps no history (no replay); keep-alive pings are off (it has none).
 * `writeSSE` returns a promise per client that a broadcast does not await, as a fan-out must not
 * wait for its slowest client. Events carry no `id:`: `writeSSE` writes it after the data, and the
 * load client counts a frame by the `}` that ends its data line right before the blank line.
 */
import { serve } from '@hono/node-server'
import { Hono } from 'hono'
import { streamSSE } from 'hono/streaming'
import { announce, control, port } from './shared.js'

const clients = new Set()
let seq = 0

function publish(data) {
  const message = { data: JSON.stringify(data) }
  for (const stream of clients) void stream.writeSSE(message)
  return String(++seq)
}

const app = new Hono()
app.get('/events', (c) =>
  streamSSE(c, async (stream) => {
    clients.add(stream)
    await new Promise((resolve) =>
      stream.onAbort(() => {
        clients.delete(stream)
        resolve()
      }),
    )
  }),
)
app.all('*', async (c) => {
  const url = new URL(c.req.url)
  const body = await control(c.req.method, url.pathname, url.searchParams, publish)
  return body === undefined ? c.notFound() : c.json(body)
})

serve({ fetch: app.fetch, port, hostname: '127.0.0.1' }, () => announce())
