/**
 * Rewind live demo on Hono (`@rewind/fetch`): events flow from a background ticker as soon as the page
 * opens; cut the connection or force a gap, and watch the page resume with nothing missed. The same
 * file runs on Node (through `@hono/node-server`), Bun and Deno:
 *
 *   pnpm --filter hono-live start        # Node; then open http://127.0.0.1:3000/
 *   pnpm --filter hono-live start:bun    # Bun.serve
 *   pnpm --filter hono-live start:deno   # Deno.serve
 *
 * The HTTP contract is the other live demos' (see ../express-live/index.js for curl lines):
 * `GET /events`, `POST /events {"event"?, "data"}` → 201 `{"id"}`, `GET /` the page, `POST /responses`,
 * `GET`/`DELETE /responses/:id`, `POST /drop?client=`, `POST /gap?client=`, `GET`/`POST /ticker`.
 *
 * Environment: PORT (3000), HOST (127.0.0.1), HISTORY (events kept for resuming clients, 100),
 * TICKER (`off` starts with the ticker paused), RESPONSE_LEASE (ms; the library's default).
 */
import { fileURLToPath } from 'node:url'
import { RewindError, sse } from '@rewind/fetch'
import { Hono } from 'hono'
import { CLIENT_BUNDLE_PATH } from '../shared/assets.js'
import { readClientId } from '../shared/clients.js'
import { MAX_BODY_BYTES, PUBLISH_ERROR_STATUS } from '../shared/publish.js'
import * as routes from '../shared/routes.js'
import { readSettings, stopOnSignals } from '../shared/run.js'
import { createTicker } from '../shared/ticker.js'

/** @import { Answer, DemoOptions } from '../shared/routes.js' */

const ASSETS = routes.readDemoAssets('Hono', import.meta.resolve('@rewind/client/browser'))

/**
 * Sends a shared route's answer. Its statuses all carry a body, which Hono's type wants said.
 *
 * @param {import('hono').Context} c
 * @param {Answer} answer
 */
const send = (c, { status, body }) => c.json(body, /** @type {200} */ (status))

/**
 * Builds the demo app. `events` is its Rewind (close it to end the streams), `ticker` its background
 * ticker (it stops by itself once `events` is closed). It keeps its history in memory: no `store`.
 *
 * @param {Omit<DemoOptions<never, { lease?: number }>, 'store'>} [options] see there
 */
export function createApp(options) {
  const { history, retry, ticker, responses } = routes.demoOptions(options)
  const events = sse({ history: { maxEvents: history }, retry, responses })
  const drops = createBodyDrops()
  /** @param {{ event?: string, data: unknown }} input */
  const publish = (input) => events.publish(routes.DEMO_STREAM, input)
  const ticks = createTicker(publish, { running: ticker })
  const page = ASSETS.page.replaceAll('{{history}}', String(history))
  const app = new Hono()

  app.get('/', (c) => c.html(page))
  app.get(CLIENT_BUNDLE_PATH, (c) => c.body(ASSETS.clientBundle, 200, { 'content-type': 'text/javascript' }))

  app.get('/events', async (c) => {
    const response = await events.serve(c.req.raw, routes.DEMO_STREAM)
    return drops.track(readClientId(c.req.query('client')), response)
  })

  app.post('/events', async (c) => {
    const json = await readJson(c.req.raw)
    if (json === TOO_LARGE) return c.json({ error: `the body is larger than ${MAX_BODY_BYTES} bytes` }, 413)
    return send(c, await routes.publishEvent(publish, json))
  })

  app.post('/responses', async (c) => {
    const json = await readJson(c.req.raw)
    if (json === TOO_LARGE) return c.json({ error: `the body is larger than ${MAX_BODY_BYTES} bytes` }, 413)
    return send(c, await routes.startAnswer(events.responses, json))
  })

  app.get('/responses/:id', (c) => events.serve(c.req.raw, { response: c.req.param('id') }))

  app.delete('/responses/:id', async (c) =>
    send(c, await routes.cancelAnswer(events.responses, c.req.param('id'))),
  )

  app.post('/drop', (c) => send(c, routes.dropClient(drops, c.req.query('client'))))

  app.post('/gap', async (c) =>
    send(c, await routes.gapClient({ drops, history, publish }, c.req.query('client'))),
  )

  app.get('/ticker', (c) => c.json(ticks.state()))

  app.post('/ticker', async (c) => {
    const json = await readJson(c.req.raw)
    if (json === TOO_LARGE) return c.json({ error: `the body is larger than ${MAX_BODY_BYTES} bytes` }, 413)
    return send(c, routes.setTicker(ticks, json))
  })

  app.notFound((c) => c.json({ error: `no route for ${c.req.method} ${c.req.path}` }, 404))

  app.onError((error, c) => {
    if (error instanceof RewindError) {
      const status = PUBLISH_ERROR_STATUS[error.code]
      if (status !== undefined) return c.json({ error: error.message }, /** @type {400} */ (status))
    }
    console.error(error)
    return c.json({ error: 'internal error' }, 500)
  })

  return { app, events, ticker: ticks }
}

/** What `readJson` returns for a body past `MAX_BODY_BYTES`. */
const TOO_LARGE = Symbol('too large')
/**
 * How much of an oversized body is read (and dropped) before the 413: a client still sending when
 * its answer comes would see the connection close instead of the answer.
 */
const DRAIN_BYTES = 8 * MAX_BODY_BYTES

/**
 * The JSON body of a request with a JSON content type: `undefined` for any other (or an empty) body,
 * `null` (refused as not an object) when it does not parse, {@link TOO_LARGE} past `MAX_BODY_BYTES`.
 *
 * @param {Request} request
 * @returns {Promise<unknown>}
 */
async function readJson(request) {
  if (!(request.headers.get('content-type') ?? '').startsWith('application/json')) return undefined
  if (request.body === null) return undefined
  /** @type {Uint8Array[]} */
  const chunks = []
  let size = 0
  const reader = request.body.getReader()
  for (;;) {
    const { done, value } = await reader.read()
    if (done) break
    size += value.length
    if (size <= MAX_BODY_BYTES) chunks.push(value)
    else if (size > DRAIN_BYTES) {
      await reader.cancel()
      break
    }
  }
  if (size > MAX_BODY_BYTES) return TOO_LARGE
  const text = await new Blob(chunks).text()
  if (text === '') return undefined
  try {
    return JSON.parse(text)
  } catch {
    return null
  }
}

/**
 * The "drop connection" control for Fetch responses: a page's streams, by client id, each behind a
 * stream the control can error, which makes the runtime drop the connection as a network failure
 * would (the client then resumes with `Last-Event-ID`).
 */
function createBodyDrops() {
  /** @type {Map<string, Set<TransformStreamDefaultController<Uint8Array>>>} */
  const byClient = new Map()
  return {
    /**
     * @param {string | undefined} client
     * @param {Response} response
     * @returns {Response}
     */
    track(client, response) {
      if (client === undefined || response.body === null) return response
      /** @type {TransformStreamDefaultController<Uint8Array> | undefined} */
      let assigned
      const cut = new TransformStream({
        start(c) {
          assigned = c
        },
      })
      // start() runs in the constructor.
      const controller = /** @type {TransformStreamDefaultController<Uint8Array>} */ (assigned)
      let open = byClient.get(client)
      if (open === undefined) {
        open = new Set()
        byClient.set(client, open)
      }
      const mine = open
      mine.add(controller)
      void response.body
        .pipeTo(cut.writable)
        .catch(() => {})
        .finally(() => {
          mine.delete(controller)
          if (mine.size === 0 && byClient.get(client) === mine) byClient.delete(client)
        })
      return new Response(cut.readable, response)
    },
    /** @param {string} client */
    drop(client) {
      const open = byClient.get(client)
      if (open === undefined) return 0
      const count = open.size
      for (const controller of open) controller.error(new Error('dropped by POST /drop'))
      byClient.delete(client)
      return count
    },
  }
}

/**
 * Serves `app` on the runtime this file runs in; resolves with the address and a function that stops
 * accepting connections.
 *
 * @param {Hono} app
 * @param {{ port: number, host: string }} where
 * @returns {Promise<{ url: string, close(): Promise<void> }>}
 */
async function serveApp(app, { port, host }) {
  const runtime = /** @type {{ Bun?: any, Deno?: any }} */ (globalThis)
  const urlOf = (/** @type {number} */ actual) =>
    `http://${host.includes(':') ? `[${host}]` : host}:${actual}/`
  if (runtime.Bun !== undefined) {
    const server = runtime.Bun.serve({ port, hostname: host, fetch: app.fetch })
    return { url: urlOf(server.port), close: () => server.stop() }
  }
  if (runtime.Deno !== undefined) {
    /** @type {(port: number) => void} */
    let listening = () => {}
    const ready = new Promise((resolve) => (listening = resolve))
    const server = runtime.Deno.serve(
      {
        port,
        hostname: host,
        onListen: (/** @type {{ port: number }} */ { port: actual }) => listening(actual),
      },
      app.fetch,
    )
    return { url: urlOf(/** @type {number} */ (await ready)), close: () => server.shutdown() }
  }
  const { serve } = await import('@hono/node-server')
  /** @type {(port: number) => void} */
  let listening = () => {}
  const ready = new Promise((resolve) => (listening = resolve))
  const server = /** @type {import('node:http').Server} */ (
    serve({ fetch: app.fetch, port, hostname: host }, (info) => listening(info.port))
  )
  return {
    url: urlOf(/** @type {number} */ (await ready)),
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve())
        // Keep-alive sockets that carried ordinary requests would otherwise hold the server open.
        server.closeIdleConnections()
      }),
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { port, host, history, ticker, responses } = readSettings({ port: 3000 })
  const demo = createApp({ history, ticker, responses })
  const server = await serveApp(demo.app, { port, host })
  console.log(`Rewind live demo (Hono) at ${server.url}`)
  // Clients are told to come back in about a second, with their Last-Event-ID.
  stopOnSignals(async () => {
    demo.ticker.stop()
    await demo.events.close({ retry: 1000 })
    await server.close()
  })
}
