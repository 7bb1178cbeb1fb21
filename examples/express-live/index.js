/**
 * Rewind live demo on Express: publish events, cut the connection, watch the page resume with
 * nothing missed.
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
 *   # a streamed answer that survives drops, reloads and instances (see ../shared/answers.js)
 *   curl -X POST http://127.0.0.1:3000/responses -H 'content-type: application/json' -d '{"tokens":200}'
 *   curl -N http://127.0.0.1:3000/responses/<id>
 *
 * Environment: PORT (3000), HOST (127.0.0.1), HISTORY (events kept for resuming clients, 1000),
 * RESPONSE_LEASE (ms a streamed answer's producer holds its lease; the library's default), REDIS_URL (keep the history in Redis: every demo process, Express or Fastify, started with the same
 * REDIS_URL and REDIS_PREFIX (default "rewind-demo:") shares it, so a client resumes on any of them).
 *
 *   REDIS_URL=redis://127.0.0.1:6379 PORT=3000 pnpm --filter express-live start
 *   REDIS_URL=redis://127.0.0.1:6379 PORT=3001 pnpm --filter fastify-live start
 */
import { readFileSync } from 'node:fs'
import { createServer } from 'node:http'
import { fileURLToPath } from 'node:url'
import { RewindError, sse } from '@rewind/express'
import { createRedisStore } from '@rewind/redis'
import express from 'express'
import { fakeAnswer, readAnswerBody } from '../shared/answers.js'
import { createDropControl, readClientId } from '../shared/clients.js'
import { MAX_BODY_BYTES, PUBLISH_ERROR_STATUS, readPublishBody } from '../shared/publish.js'
import { readSettings, stopOnSignals, storeFor } from '../shared/run.js'

const STREAM = 'demo'
const PAGE_FILE = new URL('../shared/page.html', import.meta.url)
const PAGE = readFileSync(PAGE_FILE, 'utf8').replaceAll('{{server}}', 'Express')

/**
 * Builds the demo app; its Rewind middleware is `app.locals.events` (close it to end the streams).
 *
 * @param {{ history?: number, retry?: number, store?: object, responses?: object }} [options] events
 *   kept for resuming clients (1000), the reconnection delay sent to clients in milliseconds (1000:
 *   short, so a drop is quick to watch), a shared history store (default: in memory), and the bounds
 *   of streamed answers (`{ lease, ttl, ... }`; default: the library's)
 */
export function createApp({ history = 1000, retry = 1000, store, responses = {} } = {}) {
  const events = sse({
    history: { maxEvents: history },
    retry,
    responses,
    ...(store === undefined ? {} : { store }),
  })
  const drops = createDropControl()
  const app = express()
  app.disable('x-powered-by')
  app.locals.events = events
  app.use(events)

  app.get('/', (req, res) => {
    res.type('html').send(PAGE)
  })

  app.get('/events', (req, res) => {
    res.sse(STREAM)
    drops.track(readClientId(req.query.client), res)
  })

  app.post('/events', express.json({ limit: MAX_BODY_BYTES }), async (req, res) => {
    const body = readPublishBody(req.body)
    if ('error' in body) return res.status(400).json({ error: body.error })
    // The id at once in memory; a promise of it with Redis (await covers both).
    res.status(201).json({ id: await events.publish(STREAM, body.input) })
  })

  // A streamed answer: started once, it runs to its end whoever is connected; clients get it from
  // the start (or their Last-Event-ID), then the terminal event; 204 once they have it.
  app.post('/responses', express.json({ limit: MAX_BODY_BYTES }), async (req, res) => {
    const body = readAnswerBody(req.body)
    if ('error' in body) return res.status(400).json({ error: body.error })
    const { id } = await events.responses.start((signal) => fakeAnswer(body.answer, signal))
    res.status(201).json({ id })
  })

  app.get('/responses/:id', (req, res) => res.sse({ response: req.params.id }))

  app.delete('/responses/:id', async (req, res) => {
    const status = await events.responses.cancel(req.params.id)
    if (status === undefined) return res.status(404).json({ error: 'unknown response' })
    res.status(202).json({ status })
  })

  app.post('/drop', (req, res) => {
    const client = readClientId(req.query.client)
    if (client === undefined) {
      return res.status(400).json({ error: 'expected ?client=<the id the page connected with>' })
    }
    res.json({ dropped: drops.drop(client) })
  })

  app.use((req, res) => {
    res.status(404).json({ error: `no route for ${req.method} ${req.path}` })
  })

  // Every error is answered as JSON, including the body parser's (malformed JSON, too large).
  app.use((error, req, res, next) => {
    if (res.headersSent) return next(error)
    const { status, message } = describeError(error)
    if (status >= 500) console.error(error)
    res.status(status).json({ error: message })
  })

  return app
}

function describeError(error) {
  if (error instanceof RewindError && PUBLISH_ERROR_STATUS[error.code] !== undefined) {
    return { status: PUBLISH_ERROR_STATUS[error.code], message: error.message }
  }
  if (error?.type === 'entity.parse.failed') return { status: 400, message: 'the body is not valid JSON' }
  if (error?.type === 'entity.too.large') {
    return { status: 413, message: `the body is larger than ${MAX_BODY_BYTES} bytes` }
  }
  // body-parser marks the errors whose message is meant for the client (unsupported charset, ...).
  const status = error?.status ?? error?.statusCode
  if (Number.isInteger(status) && status >= 400 && status < 500 && error.expose) {
    return { status, message: error.message }
  }
  return { status: 500, message: 'internal error' }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const settings = readSettings({ port: 3000 })
  const { port, host, history, responses } = settings
  const store = storeFor(settings, createRedisStore)
  const app = createApp({ history, store, responses })
  const server = createServer(app)
  server.listen(port, host, () => {
    const { address, port: actual } = server.address()
    console.log(
      `Rewind live demo (Express) at http://${address.includes(':') ? `[${address}]` : address}:${actual}/`,
    )
  })
  // Clients are told to come back in about a second, with their Last-Event-ID.
  stopOnSignals(async () => {
    await app.locals.events.close({ server, retry: 1000 })
    await store?.close()
  })
}
