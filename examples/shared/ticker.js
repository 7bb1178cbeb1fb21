/**
 * The live demos' background ticker: a `tick` event a few times a second, so the page shows events
 * flowing as soon as it opens. `GET /ticker` tells whether it runs; `POST /ticker` with
 * `{ "running": false }` pauses it (for every visitor: there is one ticker per server).
 */

/** Name of the ticker's events (a named event: the page listens for it with addEventListener). */
export const TICK_EVENT = 'tick'

/** Milliseconds between ticks: three a second. */
export const DEFAULT_TICK_INTERVAL = 333

/**
 * @param {(input: { event: string, data: string }) => unknown} publish publishes on the demo stream
 *   (returns the id, or a promise of it with Redis)
 * @param {{ interval?: number, running?: boolean }} [options] milliseconds between ticks
 *   (DEFAULT_TICK_INTERVAL), and whether it starts running (true)
 */
export function createTicker(publish, { interval = DEFAULT_TICK_INTERVAL, running = true } = {}) {
  /** @type {NodeJS.Timeout | undefined} */
  let timer
  let count = 0
  let failing = false

  async function tick() {
    count++
    try {
      await publish({
        event: TICK_EVENT,
        data: `tick ${count} at ${new Date().toISOString().slice(11, 19)} UTC`,
      })
      failing = false
    } catch (error) {
      // The hub was closed under it (the server is stopping): nothing left to tick for.
      if (typeof error === 'object' && error !== null && 'code' in error && error.code === 'ERR_CLOSED') {
        return stop()
      }
      // Once per outage (Redis down, say), not three times a second.
      if (!failing) console.error('ticker: publishing failed; retrying on every tick', error)
      failing = true
    }
  }

  function start() {
    if (timer !== undefined) return
    timer = setInterval(tick, interval)
    // The ticker alone never keeps the process alive.
    timer.unref()
  }

  function stop() {
    clearInterval(timer)
    timer = undefined
  }

  if (running) start()
  return {
    start,
    stop,
    /** What `GET /ticker` and `POST /ticker` answer. */
    state() {
      return { running: timer !== undefined, perSecond: Math.round((1000 / interval) * 10) / 10 }
    },
  }
}

/**
 * Reads the JSON body of `POST /ticker`: `{ "running": boolean }`.
 *
 * @param {unknown} body the parsed body (`undefined` without a JSON body)
 * @returns {{ running: boolean } | { error: string }}
 */
export function readTickerBody(body) {
  if (
    body === null ||
    typeof body !== 'object' ||
    !('running' in body) ||
    typeof body.running !== 'boolean'
  ) {
    return { error: 'expected a JSON body { "running": true | false } (Content-Type: application/json)' }
  }
  if (Object.keys(body).length !== 1)
    return { error: 'the body is { "running": true | false }, nothing else' }
  return { running: body.running }
}
