/**
 * Rewind live demo on Fastify: events flow from a background ticker as soon as the page opens; cut
 * the connection or force a gap, and watch the page resume with nothing missed.
 *
 *   pnpm --filter fastify-live start        # then open http://127.0.0.1:3001/
 *
 *   # follow the stream (resume with -H 'Last-Event-ID: <an id you saw>')
 *   curl -N http://127.0.0.1:3001/events
 *   # publish: string data is sent as is (newlines allowed), anything else as JSON
 *   curl -X POST http://127.0.0.1:3001/events -H 'content-type: application/json' -d '{"data":"hello"}'
 *   curl -X POST http://127.0.0.1:3001/events -H 'content-type: application/json' \
 *     -d '{"event":"price","data":{"sku":"A-17","eur":12.5}}'   # the page shows it with /?listen=price
 *   # cut the connections of a page (its client id is shown on the page)
 *   curl -X POST 'http://127.0.0.1:3001/drop?client=<id>'
 *   # cut them and publish more events than the history keeps while it is away: it resumes with a gap
 *   curl -X POST 'http://127.0.0.1:3001/gap?client=<id>'
 *   # pause or resume the background ticker (three `tick` events a second)
 *   curl -X POST http://127.0.0.1:3001/ticker -H 'content-type: application/json' -d '{"running":false}'
 *   # a streamed answer that survives drops, reloads and instances (see ../shared/answers.js)
 *   curl -X POST http://127.0.0.1:3001/responses -H 'content-type: application/json' -d '{"tokens":200}'
 *   curl -N http://127.0.0.1:3001/responses/<id>
 *
 * Environment: PORT (3001), HOST (127.0.0.1), HISTORY (events kept for resuming clients, 100),
 * TICKER (`off` starts with the ticker paused), RESPONSE_LEASE (ms a streamed answer's producer holds its
 * lease; the library's default),
 * REDIS_URL (keep the history in Redis: every demo process, Express or Fastify, started with the same
 * REDIS_URL and REDIS_PREFIX (default "rewind-demo:") shares it, so a client resumes on any of them),
 * or DATABASE_URL (keep it in Postgres instead, shared the same way by every demo process started with
 * the same DATABASE_URL and DATABASE_SCHEMA, default "rewind_demo").
 */
import { fileURLToPath } from 'node:url'
import { RewindError, ssePlugin } from '@rewind/fastify'
import { createPostgresStore } from '@rewind/postgres'
import { createRedisStore } from '@rewind/redis'
import Fastify from 'fastify'
import { CLIENT_BUNDLE_PATH } from '../shared/assets.js'
import { createDropControl, readClientId } from '../shared/clients.js'
import { MAX_BODY_BYTES, PUBLISH_ERROR_STATUS } from '../shared/publish.js'
import * as routes from '../shared/routes.js'
import { readSettings, stopOnSignals, storeFor } from '../shared/run.js'
import { createTicker } from '../shared/ticker.js'

/**
 * @import { SsePluginOptions } from '@rewind/fastify'
 * @import { Answer, DemoOptions } from '../shared/routes.js'
 * @typedef {NonNullable<SsePluginOptions['store']> & { close(): Promise<void> }} ClosableStore
 */

const ASSETS = routes.readDemoAssets('Fastify', import.meta.resolve('@rewind/client/browser'))

/**
 * @param {import('fastify').FastifyReply} reply
 * @param {Answer} answer
 */
const send = (reply, { status, body }) => reply.code(status).send(body)

/**
 * Builds the demo's Fastify instance (not yet listening); `fastify.close()` ends its streams and
 * stops its ticker, and closes its store.
 *
 * @param {DemoOptions<ClosableStore, NonNullable<SsePluginOptions['responses']>>} [options] see there
 */
export function buildApp(options) {
  const { history, retry, store, ticker, responses } = routes.demoOptions(options)
  // A response id may have 128 characters; Fastify's router refuses parameters over 100 by default.
  // Close destroys the sockets left once the streams have ended (idle keep-alive ones from other clients
  // would hold a stop for seconds).
  const fastify = Fastify({
    bodyLimit: MAX_BODY_BYTES,
    forceCloseConnections: true,
    routerOptions: { maxParamLength: 128 },
  })
  const drops = createDropControl()
  // A shared store has its own bounds (maxLen); history bounds are for the in-memory one only.
  const kept = store === undefined ? { history: { maxEvents: history } } : { store }
  fastify.register(ssePlugin, { ...kept, retry, closeRetry: 1000, responses })
  /** @param {{ event?: string, data: unknown }} input */
  const publish = (input) => fastify.sse.publish(routes.DEMO_STREAM, input)
  // Started once ready: fastify.sse exists only after the plugin has loaded.
  const ticks = createTicker(publish, { running: false })
  if (ticker) fastify.addHook('onReady', async () => ticks.start())
  fastify.addHook('preClose', async () => ticks.stop())
  // onClose runs after the plugin's preClose has ended the streams: the store is no longer needed.
  if (store !== undefined) fastify.addHook('onClose', () => store.close())
  const page = ASSETS.page.replaceAll('{{history}}', String(history))

  fastify.get('/', (request, reply) => {
    reply.type('text/html; charset=utf-8').send(page)
  })

  fastify.get(CLIENT_BUNDLE_PATH, (request, reply) => {
    reply.type('text/javascript; charset=utf-8').send(ASSETS.clientBundle)
  })

  fastify.get('/events', (request, reply) => {
    drops.track(readClientId(clientParam(request)), reply.raw)
    return reply.sse(routes.DEMO_STREAM)
  })

  fastify.post('/events', async (request, reply) =>
    send(reply, await routes.publishEvent(publish, request.body)),
  )

  fastify.post('/responses', async (request, reply) =>
    send(reply, await routes.startAnswer(fastify.sse.responses, request.body)),
  )

  fastify.get('/responses/:id', (request, reply) => reply.sse({ response: idParam(request) }))

  fastify.delete('/responses/:id', async (request, reply) =>
    send(reply, await routes.cancelAnswer(fastify.sse.responses, idParam(request))),
  )

  fastify.post('/drop', (request, reply) => send(reply, routes.dropClient(drops, clientParam(request))))

  fastify.post('/gap', async (request, reply) =>
    send(reply, await routes.gapClient({ drops, history, publish }, clientParam(request))),
  )

  fastify.get('/ticker', () => ticks.state())

  fastify.post('/ticker', (request, reply) => send(reply, routes.setTicker(ticks, request.body)))

  fastify.setNotFoundHandler((request, reply) => {
    reply.code(404).send({ error: `no route for ${request.method} ${request.url.split('?')[0]}` })
  })

  // Every error is answered as `{ error }`, including the body parser's (malformed JSON, too large).
  fastify.setErrorHandler((error, request, reply) => {
    const { status, message } = describeError(error)
    if (status >= 500) console.error(error)
    reply.code(status).send({ error: message })
  })

  return fastify
}

/**
 * The `client` query parameter, still unchecked (readClientId checks it). Fastify parses every query
 * string into an object, so reading a field of it is safe.
 *
 * @param {import('fastify').FastifyRequest} request
 */
function clientParam(request) {
  return /** @type {{ client?: unknown }} */ (request.query).client
}

/**
 * The `:id` of a `/responses/:id` route: the router matched it, so it is a string.
 *
 * @param {import('fastify').FastifyRequest} request
 */
function idParam(request) {
  return /** @type {{ id: string }} */ (request.params).id
}

/**
 * The fields Fastify's errors carry; any other thrown value simply lacks them.
 *
 * @typedef {{ code?: unknown, statusCode?: unknown, message?: string }} FastifyErrorFields
 */

/** @param {unknown} error */
function describeError(error) {
  if (error instanceof RewindError) {
    const status = PUBLISH_ERROR_STATUS[error.code]
    if (status !== undefined) return { status, message: error.message }
  }
  // Optional chaining below reads nothing from null, undefined or a primitive, so this view is safe.
  const fields = /** @type {FastifyErrorFields | null | undefined} */ (error)
  switch (fields?.code) {
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return { status: 400, message: 'the body is not valid JSON' }
    // Same answer as a missing body: the demos only take JSON.
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return { status: 400, message: 'expected a JSON body (Content-Type: application/json)' }
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return { status: 413, message: `the body is larger than ${MAX_BODY_BYTES} bytes` }
  }
  // Fastify sets a 4xx statusCode on errors caused by the request (a JSON syntax error, for one).
  const status = fields?.statusCode
  if (typeof status === 'number' && Number.isInteger(status) && status >= 400 && status < 500) {
    return { status, message: fields?.message }
  }
  return { status: 500, message: 'internal error' }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const settings = readSettings({ port: 3001 })
  const { port, host, history, ticker, responses } = settings
  const fastify = buildApp({
    history,
    ticker,
    responses,
    store: storeFor(settings, { redis: createRedisStore, postgres: createPostgresStore }),
  })
  await fastify.listen({ port, host })
  // Listening on a host and port (not a pipe), so the address is an AddressInfo.
  const { address, port: actual } = /** @type {import('node:net').AddressInfo} */ (fastify.server.address())
  console.log(
    `Rewind live demo (Fastify) at http://${address.includes(':') ? `[${address}]` : address}:${actual}/`,
  )
  // Clients are told to come back in about a second, with their Last-Event-ID.
  stopOnSignals(() => fastify.close())
}
