/**
 * How the live demos run as a process: settings from the environment (`PORT`, `HOST` 127.0.0.1,
 * `HISTORY` 100: how many events each stream keeps for clients that resume, small so that the page's
 * "force a gap" control needs only a short burst; `TICKER=off` to start with the background ticker
 * paused; `REDIS_URL` to keep that history in Redis, shared by every demo process started with the
 * same `REDIS_URL` and `REDIS_PREFIX`; or `DATABASE_URL` to keep it in Postgres, shared by every demo
 * process started with the same `DATABASE_URL` and `DATABASE_SCHEMA`; `RESPONSE_LEASE`: the lease in
 * milliseconds of a streamed
 * answer's producer, which bounds how soon the other instances learn that a producing process died;
 * unset, the library's default) and a graceful stop on SIGTERM and SIGINT.
 */

/** Events the demos keep for resuming clients: fewer than the library's 1000, so a gap is quick to force. */
export const DEFAULT_DEMO_HISTORY = 100

/** Key prefix of the demos' streams in Redis; the same in both demos, so they form one cluster. */
export const DEFAULT_REDIS_PREFIX = 'rewind-demo:'

/** Schema of the demos' tables in Postgres; the same in both demos, so they form one cluster. */
export const DEFAULT_DATABASE_SCHEMA = 'rewind_demo'

/** How long a stop may take before the process gives up and exits with code 1. */
const STOP_TIMEOUT = 5000

/**
 * @param {{ port: number }} defaults
 * @returns {{ port: number, host: string, history: number, ticker: boolean, responses: { lease?: number }, redis?: { url: string, prefix: string }, postgres?: { url: string, schema: string } }}
 */
export function readSettings(defaults) {
  const url = process.env.REDIS_URL
  const databaseUrl = process.env.DATABASE_URL
  if (url && databaseUrl) {
    throw new RangeError('set REDIS_URL or DATABASE_URL, not both: the history lives in one store')
  }
  const lease = envInteger('RESPONSE_LEASE', undefined, 1)
  return {
    port: envInteger('PORT', defaults.port, 0),
    host: process.env.HOST || '127.0.0.1',
    history: envInteger('HISTORY', DEFAULT_DEMO_HISTORY, 1),
    ticker: process.env.TICKER !== 'off',
    // Only what is set, so the hub keeps its own defaults for the rest.
    responses: lease === undefined ? {} : { lease },
    ...(url ? { redis: { url, prefix: process.env.REDIS_PREFIX || DEFAULT_REDIS_PREFIX } } : {}),
    ...(databaseUrl
      ? { postgres: { url: databaseUrl, schema: process.env.DATABASE_SCHEMA || DEFAULT_DATABASE_SCHEMA } }
      : {}),
  }
}

/**
 * The history store of a demo process: Redis when `REDIS_URL` is set, Postgres when `DATABASE_URL`
 * is, else undefined (the hub's in-memory history). Each app passes its own store factories, since
 * this folder is not a package.
 *
 * @template {{ close(): Promise<void> }} R
 * @template {{ close(): Promise<void> }} P
 * @param {ReturnType<typeof readSettings>} settings
 * @param {{
 *   redis: (options: { redis: string, prefix: string, maxLen: number }) => R,
 *   postgres: (options: { connectionString: string, schema: string, maxLen: number }) => P,
 * }} factories
 * @returns {R | P | undefined}
 */
export function storeFor(settings, factories) {
  if (settings.redis !== undefined) {
    return factories.redis({
      redis: settings.redis.url,
      prefix: settings.redis.prefix,
      maxLen: settings.history,
    })
  }
  if (settings.postgres !== undefined) {
    return factories.postgres({
      connectionString: settings.postgres.url,
      schema: settings.postgres.schema,
      maxLen: settings.history,
    })
  }
  return undefined
}

/**
 * Calls `stop` on the first SIGTERM or SIGINT; the process then exits with code 0 once nothing is
 * left open. Later signals are ignored: a Ctrl+C in a terminal reaches the process twice when it
 * runs under `pnpm start` (directly, and forwarded by pnpm).
 *
 * @param {() => Promise<void>} stop ends the streams and closes the server
 */
export function stopOnSignals(stop) {
  let stopping = false
  /** @param {NodeJS.Signals} signal */
  const onSignal = (signal) => {
    if (stopping) return
    stopping = true
    console.log(`${signal}: ending the event streams and closing the server`)
    setTimeout(() => {
      console.error(`still not closed after ${STOP_TIMEOUT} ms; exiting`)
      process.exit(1)
    }, STOP_TIMEOUT).unref()
    stop().catch((error) => {
      console.error(error)
      process.exitCode = 1
    })
  }
  process.on('SIGTERM', onSignal)
  process.on('SIGINT', onSignal)
}

/**
 * An integer setting from the environment (the demos' PORT, HISTORY, ...); throws a `RangeError`
 * naming the variable when it is not a whole number of at least `min`.
 *
 * @template {number | undefined} F
 * @param {string} name of the environment variable
 * @param {F} fallback when it is unset or empty
 * @param {number} min smallest value accepted
 * @returns {number | F}
 */
export function envInteger(name, fallback, min) {
  const text = process.env[name]
  if (text === undefined || text === '') return fallback
  const value = Number(text)
  if (!Number.isSafeInteger(value) || value < min) {
    throw new RangeError(`${name} must be an integer of at least ${min}, got ${JSON.stringify(text)}`)
  }
  return value
}
