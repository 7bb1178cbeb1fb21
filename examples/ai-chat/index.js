/**
 * An AI SDK chat whose answers resume exactly: drop the connection or reload the page mid-answer,
 * and the answer carries on from the exact chunk, on any instance.
 *
 *   pnpm --filter ai-chat start            # builds the page, then open http://127.0.0.1:3000/
 *   FRAMEWORK=fastify pnpm --filter ai-chat start
 *
 *   curl -N http://127.0.0.1:3000/api/chat -H 'content-type: application/json' \
 *     -d '{"id":"c1","messages":[{"id":"m1","role":"user","parts":[{"type":"text","text":"hi"}]}]}'
 *   curl -N http://127.0.0.1:3000/api/chat/c1/stream          # resume it (204 once it has ended)
 *   curl -X POST http://127.0.0.1:3000/api/chat/c1/stop       # stop it, on whichever instance
 *
 * Environment: PORT (3000), HOST (127.0.0.1), FRAMEWORK (`express` or `fastify`), MOCK_TOKENS (words
 * per answer, 200), MOCK_INTERVAL (ms between words, 20), REDIS_URL and REDIS_PREFIX (`ai-chat:`):
 * instances started with the same two share answers; RESPONSE_LEASE (ms: how soon the other
 * instances learn that a producing process died; the library's default). SIGTERM ends the streams
 * and exits.
 */
import { createServer } from 'node:http'
import { createExpressApp, createFastifyApp } from './app.js'

const env = process.env

/** @param {string} name @param {number} fallback @param {number} min */
function integer(name, fallback, min) {
  const raw = env[name]
  if (raw === undefined || raw === '') return fallback
  const value = Number(raw)
  if (!Number.isSafeInteger(value) || value < min)
    throw new Error(`${name} must be an integer >= ${min}, got ${raw}`)
  return value
}

const lease = env.RESPONSE_LEASE ? integer('RESPONSE_LEASE', 0, 1) : undefined
const settings = {
  tokens: integer('MOCK_TOKENS', 200, 1),
  interval: integer('MOCK_INTERVAL', 20, 0),
  ...(env.REDIS_URL ? { redis: { url: env.REDIS_URL, prefix: env.REDIS_PREFIX || 'ai-chat:' } } : {}),
  ...(lease === undefined ? {} : { lease }),
}
const port = integer('PORT', 3000, 0)
const host = env.HOST || '127.0.0.1'

/** @type {() => Promise<void>} */
let stop
if (env.FRAMEWORK === 'fastify') {
  const app = await createFastifyApp(settings)
  const address = await app.listen({ port, host })
  console.log(`ai-chat (Fastify) listening on ${address}`)
  stop = () => app.close()
} else {
  const app = createExpressApp(settings)
  const server = createServer(app)
  await new Promise((resolve) => server.listen(port, host, () => resolve(undefined)))
  const address = /** @type {import('node:net').AddressInfo} */ (server.address())
  console.log(`ai-chat (Express) listening on http://${host}:${address.port}`)
  stop = () => app.locals.close(server)
}

let stopping = false
for (const signal of /** @type {const} */ (['SIGTERM', 'SIGINT'])) {
  process.on(signal, () => {
    if (stopping) return
    stopping = true
    // Producers end with an error chunk, then every stream ends and the server closes.
    setTimeout(() => process.exit(1), 5000).unref()
    stop().then(
      () => process.exit(0),
      (error) => {
        console.error(error)
        process.exit(1)
      },
    )
  })
}
