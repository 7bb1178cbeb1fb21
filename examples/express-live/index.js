/**
 * Rewind live demo on Express: events flow from a background ticker as soon as the page opens; cut
 * the connection or force a gap, and watch the page resume with nothing missed.
 *
 *   pnpm --filter express-live start        # then open http://127.0.0.1:3000/
 *   pnpm demo                               # the same from the root, after building the packages
 *
 *   # follow the stream (resume with -H 'Last-Event-ID: <an id you saw>')
 *   curl -N http://127.0.0.1:3000/events
 *   # publish: string data is sent as is (newlines allowed), anything else as JSON
 *   curl -X POST http://127.0.0.1:3000/events -H 'content-type: application/json' -d '{"data":"hello"}'
 *   curl -X POST http://127.0.0.1:3000/events -H 'content-type: application/json' \
 *     -d '{"event":"price","data":{"sku":"A-17","eur":12.5}}'   # the page shows it with /?listen=price
 *   # cut the connections of a page (its client id is shown on the page)
 *   curl -X POST 'http://127.0.0.1:3000/drop?client=<id>'
 *   # cut them and publish more events than the history keeps while it is away: it resumes with a gap
 *   curl -X POST 'http://127.0.0.1:3000/gap?client=<id>'
 *   # pause or resume the background ticker (three `tick` events a second)
 *   curl -X POST http://127.0.0.1:3000/ticker -H 'content-type: application/json' -d '{"running":false}'
 *   # a streamed answer that survives drops, reloads and instances (see ../shared/answers.js)
 *   curl -X POST http://127.0.0.1:3000/responses -H 'content-type: application/json' -d '{"tokens":200}'
 *   curl -N http://127.0.0.1:3000/responses/<id>
 *
 * Environment: PORT (3000), HOST (127.0.0.1), HISTORY (events kept for resuming clients, 100),
 * TICKER (`off` starts with the ticker paused), RESPONSE_LEASE (ms a streamed answer's producer holds its
 * lease; the library's default),
 * REDIS_URL (keep the history in Redis: every demo process, Express or Fastify, started with the same
 * REDIS_URL and REDIS_PREFIX (default "rewind-demo:") shares it, so a client resumes on any of them),
 * or DATABASE_URL (keep it in Postgres instead, shared the same way by every demo process started with
 * the same DATABASE_URL and DATABASE_SCHEMA, default "rewind_demo").
 *
 *   REDIS_URL=redis://127.0.0.1:6379 PORT=3000 pnpm --filter express-live start
 *   REDIS_URL=redis://127.0.0.1:6379 PORT=3001 pnpm --filter fastify-live start
 *   DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres PORT=3000 pnpm --filter express-live start
 *   DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres PORT=3001 pnpm --filter fastify-live start
 */
import { createServer } from 'node:http'
import { fileURLToPath } from 'node:url'
import { RewindError, sse } from '@rewind/express'
import { createPostgresStore } from '@rewind/postgres'
import { createRedisStore } from '@rewind/redis'
import express from 'express'
import { CLIENT_BUNDLE_PATH } from '../shared/assets.js'
import { createDropControl, readClientId } from '../shared/clients.js'
import { MAX_BODY_BYTES, PUBLISH_ERROR_STATUS } from '../shared/publish.js'
import * as routes from '../shared/routes.js'
import { readSettings, stopOnSignals, storeFor } from '../shared/run.js'
import { createTicker } from '../shared/ticker.js'

/**
 * @import { SseOptions } from '@rewind/express'
 * @import { Answer, DemoOptions } from '../shared/routes.js'
 */

const ASSETS = routes.readDemoAssets('Express', import.meta.resolve('@rewind/client/browser'))

/**
 * @param {import('express').Response} res
 * @param {Answer} answer
 */
const send = (res, { status, body }) => res.status(status).json(body)

/**
 * Builds the demo app; its Rewind middleware is `app.locals.events` (close it to end the streams)
 * and its ticker `app.locals.ticker` (it stops by itself once the middleware is closed).
 *
 * @param {DemoOptions<NonNullable<SseOptions['store']>, NonNullable<SseOptions['responses']>>} [options] see there
 */
export function createApp(options) {
  const { history, retry, store, ticker, responses } = routes.demoOptions(options)
  // A shared store has its own bounds (maxLen); history bounds are for the in-memory one only.
  const kept = store === undefined ? { history: { maxEvents: history } } : { store }
  const events = sse({ ...kept, retry, responses })
  const drops = createDropControl()
  /** @param {{ event?: string, data: unknown }} input */
  const publish = (input) => events.publish(routes.DEMO_STREAM, input)
  const ticks = createTicker(publish, { running: ticker })
  const page = ASSETS.page.replaceAll('{{history}}', String(history))
  const app = express()
  app.disable('x-powered-by')
  app.locals.events = events
  app.locals.ticker = ticks
  app.use(events)

  app.get('/', (req, res) => {
    res.type('html').send(page)
  })

  app.get(CLIENT_BUNDLE_PATH, (req, res) => {
    res.type('text/javascript').send(ASSETS.clientBundle)
  })

  app.get('/events', (req, res) => {
    res.sse(routes.DEMO_STREAM)
    drops.track(readClientId(req.query.client), res)
  })

  app.post('/events', express.json({ limit: MAX_BODY_BYTES }), async (req, res) => {
    send(res, await routes.publishEvent(publish, req.body))
  })

  app.post('/responses', express.json({ limit: MAX_BODY_BYTES }), async (req, res) => {
    send(res, await routes.startAnswer(events.responses, req.body))
  })

  app.get('/responses/:id', (req, res) => res.sse({ response: req.params.id }))

  app.delete('/responses/:id', async (req, res) => {
    send(res, await routes.cancelAnswer(events.responses, req.params.id))
  })

  app.post('/drop', (req, res) => {
    send(res, routes.dropClient(drops, req.query.client))
  })

  app.post('/gap', async (req, res) => {
    send(res, await routes.gapClient({ drops, history, publish }, req.query.client))
  })

  app.get('/ticker', (req, res) => {
    res.json(ticks.state())
  })

  app.post('/ticker', express.json(), (req, res) => {
    send(res, routes.setTicker(ticks, req.body))
  })

  app.use((req, res) => {
    res.status(404).json({ error: `no route for ${req.method} ${req.path}` })
  })

  // Every error is answered as JSON, including the body parser's (malformed JSON, too large).
  /** @type {import('express').ErrorRequestHandler} */
  const answerError = (error, req, res, next) => {
    if (res.headersSent) return next(error)
    const { status, message } = describeError(error)
    if (status >= 500) console.error(error)
    res.status(status).json({ error: message })
  }
  app.use(answerError)

  return app
}

/**
 * The fields body-parser's errors (http-errors) carry; any other thrown value simply lacks them.
 *
 * @typedef {{ type?: unknown, status?: unknown, statusCode?: unknown, expose?: unknown, message?: string }} HttpErrorFields
 */

/** @param {unknown} error */
function describeError(error) {
  if (error instanceof RewindError) {
    const status = PUBLISH_ERROR_STATUS[error.code]
    if (status !== undefined) return { status, message: error.message }
  }
  // Optional chaining below reads nothing from null, undefined or a primitive, so this view is safe.
  const fields = /** @type {HttpErrorFields | null | undefined} */ (error)
  if (fields?.type === 'entity.parse.failed') return { status: 400, message: 'the body is not valid JSON' }
  if (fields?.type === 'entity.too.large') {
    return { status: 413, message: `the body is larger than ${MAX_BODY_BYTES} bytes` }
  }
  // body-parser marks the errors whose message is meant for the client (unsupported charset, ...).
  const status = fields?.status ?? fields?.statusCode
  if (
    typeof status === 'number' &&
    Number.isInteger(status) &&
    status >= 400 &&
    status < 500 &&
    fields?.expose
  ) {
    return { status, message: fields.message }
  }
  return { status: 500, message: 'internal error' }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const settings = readSettings({ port: 3000 })
  const { port, host, history, ticker, responses } = settings
  const store = storeFor(settings, { redis: createRedisStore, postgres: createPostgresStore })
  const app = createApp({ history, store, ticker, responses })
  const server = createServer(app)
  server.listen(port, host, () => {
    // Listening on a host and port (not a pipe), so the address is an AddressInfo.
    const { address, port: actual } = /** @type {import('node:net').AddressInfo} */ (server.address())
    console.log(
      `Rewind live demo (Express) at http://${address.includes(':') ? `[${address}]` : address}:${actual}/`,
    )
  })
  // Clients are told to come back in about a second, with their Last-Event-ID.
  stopOnSignals(async () => {
    app.locals.ticker.stop()
    await app.locals.events.close({ server, retry: 1000 })
    await store?.close()
  })
}
