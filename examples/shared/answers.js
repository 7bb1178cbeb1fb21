/**
 * The streamed-answer contract shared by the live demos: a fake model (deterministic, no network)
 * whose answer is `N` tokens `t0`, `t1`, … one every `interval` ms, and the validation of
 * `POST /responses` bodies `{ "tokens": N, "interval": ms }`.
 *
 *   curl -X POST http://127.0.0.1:3000/responses -H 'content-type: application/json' -d '{"tokens":200,"interval":50}'
 *   curl -N http://127.0.0.1:3000/responses/<id>                          # from the start, to the end
 *   curl -N http://127.0.0.1:3000/responses/<id> -H 'Last-Event-ID: <id>'  # the rest; 204 after the end
 *   curl -X DELETE http://127.0.0.1:3000/responses/<id>                   # cancel, from any instance
 */

/** Most tokens one answer may have. */
export const MAX_TOKENS = 100_000
/** Longest pause between two tokens, in milliseconds. */
export const MAX_INTERVAL = 1000

const SHAPE = `{ "tokens": 1..${MAX_TOKENS}, "interval"?: 0..${MAX_INTERVAL} (ms, default 50) }`

/**
 * Reads a parsed JSON body of `POST /responses`.
 *
 * @param {unknown} body the parsed body (`undefined` when the request had no JSON body)
 * @returns {{ answer: { tokens: number, interval: number } } | { error: string }}
 */
export function readAnswerBody(body) {
  if (body === undefined) return { error: `expected a JSON body (Content-Type: application/json): ${SHAPE}` }
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    return { error: `the body must be a JSON object: ${SHAPE}` }
  }
  for (const key of Object.keys(body)) {
    if (key !== 'tokens' && key !== 'interval')
      return { error: `unknown field "${key}": the body is ${SHAPE}` }
  }
  // The loop above allowed only these two keys; each may still hold any JSON value until checked below.
  const { tokens, interval = 50 } = /** @type {{ tokens?: unknown, interval?: unknown }} */ (body)
  // `typeof` first so that the range checks compare numbers (Number.isInteger is false for non-numbers anyway).
  if (typeof tokens !== 'number' || !Number.isInteger(tokens) || tokens < 1 || tokens > MAX_TOKENS) {
    return { error: `"tokens" must be an integer from 1 to ${MAX_TOKENS}` }
  }
  if (
    typeof interval !== 'number' ||
    !Number.isInteger(interval) ||
    interval < 0 ||
    interval > MAX_INTERVAL
  ) {
    return { error: `"interval" must be an integer from 0 to ${MAX_INTERVAL} (milliseconds)` }
  }
  return { answer: { tokens, interval } }
}

/**
 * The fake model: yields `t0` … `t{tokens-1}`, one every `interval` ms, and stops as soon as `signal`
 * aborts (a cancel, from any instance). With `interval` 0 it still yields to the event loop now and
 * then, as a real model's network reads would.
 *
 * @param {{ tokens: number, interval: number }} answer
 * @param {AbortSignal} signal
 */
export async function* fakeAnswer({ tokens, interval }, signal) {
  for (let i = 0; i < tokens; i++) {
    if (signal.aborted) return
    if (interval > 0) await sleep(interval, signal)
    else if (i % 100 === 0) await new Promise((resolve) => setImmediate(resolve))
    if (signal.aborted) return
    yield `t${i}`
  }
}

/**
 * @param {number} ms
 * @param {AbortSignal} signal wakes the sleeper early
 * @returns {Promise<void>}
 */
function sleep(ms, signal) {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms)
    function done() {
      clearTimeout(timer)
      signal.removeEventListener('abort', done)
      resolve()
    }
    signal.addEventListener('abort', done, { once: true })
  })
}
