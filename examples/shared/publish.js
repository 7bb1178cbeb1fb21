/**
 * The `POST /events` contract shared by the live demos: reads the JSON body into an event to publish,
 * and maps Rewind's publish errors to HTTP statuses. Shapes are checked here; the hub itself refuses
 * event names with CR, LF or NUL and data larger than its `maxEventBytes`.
 */

/** Largest request body the demos accept, in bytes (1 MiB). */
export const MAX_BODY_BYTES = 1024 * 1024

const SHAPE = '{ "event"?: string, "data": any }'

/**
 * Reads a parsed JSON body `{ "event"?: string, "data": any }`.
 *
 * @param {unknown} body the parsed body (`undefined` when the request had no JSON body)
 * @returns {{ input: { event?: string, data: unknown } } | { error: string }}
 */
export function readPublishBody(body) {
  if (body === undefined) return { error: `expected a JSON body (Content-Type: application/json): ${SHAPE}` }
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    return { error: `the body must be a JSON object: ${SHAPE}` }
  }
  // Unknown fields are refused so that a typo such as "evnet" is not silently published as a message.
  for (const key of Object.keys(body)) {
    if (key !== 'event' && key !== 'data') return { error: `unknown field "${key}": the body is ${SHAPE}` }
  }
  if (!Object.hasOwn(body, 'data')) return { error: `"data" is required: ${SHAPE}` }
  // The loop above allowed only "event" and "data"; each may still hold any JSON value until checked.
  const { event, data } = /** @type {{ event?: unknown, data: unknown }} */ (body)
  if (event !== undefined && typeof event !== 'string') return { error: '"event" must be a string' }
  return { input: event === undefined ? { data } : { event, data } }
}

/**
 * HTTP status for each `RewindError` code that `publish` throws because of the client's input;
 * any other error is the server's. (Each app checks `instanceof RewindError` with its adapter's
 * export: this folder is not a package and does not resolve `@rewind/*` itself.)
 */
/** @type {Readonly<Partial<Record<string, number>>>} */
export const PUBLISH_ERROR_STATUS = Object.freeze({
  ERR_INVALID_FIELD: 400,
  ERR_SERIALIZE: 400,
  ERR_EVENT_TOO_LARGE: 413,
  // With REDIS_URL: Redis is unreachable; the publisher may retry later.
  ERR_STORE_UNAVAILABLE: 503,
  // Every response the store may keep is still running: start one later.
  ERR_RESPONSE_LIMIT: 503,
})
