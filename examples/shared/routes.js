/**
 * What the JSON routes of the live demos do, apart from the framework: each function takes what its
 * route read from the request and returns the `{ status, body }` to answer with, so the Express,
 * Fastify and Hono demos answer every request alike; each demo only sends the answer its own way.
 */
import { readFileSync } from 'node:fs'
import { fakeAnswer, readAnswerBody } from './answers.js'
import { readClientBundle } from './assets.js'
import { readClientId } from './clients.js'
import { forceGap } from './gap.js'
import { readPublishBody } from './publish.js'
import { DEFAULT_DEMO_HISTORY } from './run.js'
import { readTickerBody } from './ticker.js'

/**
 * @typedef {{ status: number, body: unknown }} Answer
 * @typedef {(input: { event?: string, data: unknown }) => unknown} Publish
 *   a publish on the demo stream: an id, or a promise of one with a shared store
 * @typedef {{
 *   start(producer: (signal: AbortSignal) => ReturnType<typeof fakeAnswer>): Promise<{ id: string }>,
 *   cancel(id: string): Promise<string | undefined>,
 * }} Responses the `responses` of the demo's Rewind
 */

/**
 * The options of a live demo's app: events kept for resuming clients (100), the reconnection delay
 * sent to clients in milliseconds (1000: short, so a drop is quick to watch), a shared history store
 * (default: in memory), whether the background ticker starts running (true), and the bounds of
 * streamed answers (`{ lease, ttl, ... }`; default: the library's).
 *
 * @template Store, Bounds the framework's types of a store and of the bounds of streamed answers
 * @typedef {{ history?: number, retry?: number, store?: Store | undefined, ticker?: boolean, responses?: Bounds }} DemoOptions
 */

/**
 * A demo's options with their defaults.
 *
 * @template Store, Bounds
 * @param {DemoOptions<Store, Bounds>} [options]
 */
export function demoOptions({
  history = DEFAULT_DEMO_HISTORY,
  retry = 1000,
  store,
  ticker = true,
  responses,
} = {}) {
  // No bounds given: the library's defaults.
  return { history, retry, store, ticker, responses: responses ?? /** @type {Bounds} */ ({}) }
}

/** The one stream every live demo publishes to and serves. */
export const DEMO_STREAM = 'demo'

const NO_CLIENT = { status: 400, body: { error: 'expected ?client=<the id the page connected with>' } }

/**
 * The page (naming `server`) and the client bundle it imports, read once when a demo loads.
 *
 * @param {string} server the framework's name, shown on the page
 * @param {string} clientBundle what the demo's `import.meta.resolve('@rewind/client/browser')` gives
 *   (this folder is not a package, so it cannot resolve it)
 */
export function readDemoAssets(server, clientBundle) {
  return {
    page: readFileSync(new URL('./page.html', import.meta.url), 'utf8').replaceAll('{{server}}', server),
    clientBundle: readClientBundle(clientBundle),
  }
}

/**
 * `POST /events`: publishes the body's event on the demo stream; 201 with its id.
 *
 * @param {Publish} publish
 * @param {unknown} json the parsed body
 * @returns {Promise<Answer>}
 */
export async function publishEvent(publish, json) {
  const body = readPublishBody(json)
  if ('error' in body) return { status: 400, body: { error: body.error } }
  // The id at once in memory; a promise of it with a shared store (await covers both).
  return { status: 201, body: { id: await publish(body.input) } }
}

/**
 * `POST /responses`: starts a streamed answer; 201 with its id. Started once, it runs to its end
 * whoever is connected; clients get it from the start (or their Last-Event-ID), then the terminal
 * event; 204 once they have it.
 *
 * @param {Responses} responses
 * @param {unknown} json the parsed body
 * @returns {Promise<Answer>}
 */
export async function startAnswer(responses, json) {
  const body = readAnswerBody(json)
  if ('error' in body) return { status: 400, body: { error: body.error } }
  const { id } = await responses.start((signal) => fakeAnswer(body.answer, signal))
  return { status: 201, body: { id } }
}

/**
 * `DELETE /responses/:id`: cancels a streamed answer; 202 with its status, 404 for an unknown id.
 *
 * @param {Responses} responses
 * @param {string} id
 * @returns {Promise<Answer>}
 */
export async function cancelAnswer(responses, id) {
  const status = await responses.cancel(id)
  if (status === undefined) return { status: 404, body: { error: 'unknown response' } }
  return { status: 202, body: { status } }
}

/**
 * `POST /drop?client=<id>`: cuts the connections of that page.
 *
 * @param {{ drop(client: string): number }} drops
 * @param {unknown} client the `client` query parameter, unchecked
 * @returns {Answer}
 */
export function dropClient(drops, client) {
  const id = readClientId(client)
  if (id === undefined) return NO_CLIENT
  return { status: 200, body: { dropped: drops.drop(id) } }
}

/**
 * `POST /gap?client=<id>`: cuts the connections of that page and publishes past the history while
 * it is away (see gap.js).
 *
 * @param {{ drops: { drop(client: string): number }, history: number, publish: Publish }} demo
 * @param {unknown} client the `client` query parameter, unchecked
 * @returns {Promise<Answer>}
 */
export async function gapClient({ drops, history, publish }, client) {
  const id = readClientId(client)
  if (id === undefined) return NO_CLIENT
  return { status: 200, body: await forceGap({ drops, client: id, history, publish }) }
}

/**
 * `POST /ticker {"running"}`: pauses or resumes the background ticker; its state.
 *
 * @param {{ start(): void, stop(): void, state(): unknown }} ticker
 * @param {unknown} json the parsed body
 * @returns {Answer}
 */
export function setTicker(ticker, json) {
  const body = readTickerBody(json)
  if ('error' in body) return { status: 400, body: { error: body.error } }
  if (body.running) ticker.start()
  else ticker.stop()
  return { status: 200, body: ticker.state() }
}
