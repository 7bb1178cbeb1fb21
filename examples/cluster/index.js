/**
 * Rewind on every core: a node:cluster primary forks one worker per core, each an Express app with
 * Rewind on one shared @rewind/redis history. The workers share one port; an event published on
 * any of them reaches every client of every worker, and a client resumes on whichever worker its
 * reconnection lands (see README.md for why it is built this way).
 *
 *   pnpm --filter cluster start              # needs Redis at REDIS_URL (redis://127.0.0.1:6379)
 *
 *   # follow the stream; -i shows which worker answered (X-Worker)
 *   curl -N -i http://127.0.0.1:3003/events
 *   # publish a few times: the answers come from different workers, every follower gets every event
 *   curl -X POST http://127.0.0.1:3003/events -H 'content-type: application/json' -d '{"data":"hello"}'
 *   # resume from an id you saw, on whichever worker takes the connection
 *   curl -N -i http://127.0.0.1:3003/events -H 'Last-Event-ID: <an id you saw>'
 *
 * Environment: PORT (3003), HOST (127.0.0.1), WORKERS (one per core), REDIS_URL
 * (redis://127.0.0.1:6379), REDIS_PREFIX (key prefix of the history, "rewind-cluster:"), HISTORY
 * (events kept per stream, 1000), HEARTBEAT (ms between heartbeats on idle streams, 15000).
 *
 * SIGTERM or SIGINT to the primary ends every worker's streams (clients are told to come back in
 * about a second), closes their servers and Redis connections, and exits 0 once all have.
 */
import cluster from 'node:cluster'
import { createServer } from 'node:http'
import { availableParallelism } from 'node:os'
import { createRedisStore } from '@rewind/redis'
import { envInteger, stopOnSignals } from '../shared/run.js'
import { createApp } from './app.js'

/** A worker that dies sooner than this after starting is failing to start: replacing it would loop. */
const MIN_UPTIME = 5000
/** How long the workers may take to stop before the primary gives up on them and exits with code 1. */
const STOP_TIMEOUT = 10_000

function readSettings() {
  return {
    port: envInteger('PORT', 3003, 0),
    host: process.env.HOST || '127.0.0.1',
    workers: envInteger('WORKERS', availableParallelism(), 1),
    redis: process.env.REDIS_URL || 'redis://127.0.0.1:6379',
    prefix: process.env.REDIS_PREFIX || 'rewind-cluster:',
    history: envInteger('HISTORY', 1000, 1),
    heartbeat: envInteger('HEARTBEAT', 15_000, 0),
  }
}

/**
 * Forks the workers, replaces one that dies, and stops them all on SIGTERM or SIGINT.
 *
 * @param {ReturnType<typeof readSettings>} settings
 */
function runPrimary(settings) {
  const listening = new Set()
  const startedAt = new Map()
  let announced = false
  let stopping = false
  let exitCode = 0

  /** @param {number} slot the worker's number, kept by its replacement */
  const fork = (slot) => {
    const worker = cluster.fork({ WORKER_NAME: String(slot) })
    startedAt.set(worker.id, { slot, at: Date.now() })
  }

  cluster.on('listening', (worker, address) => {
    listening.add(worker.id)
    if (announced || listening.size < settings.workers) return
    announced = true
    const host = address.address?.includes(':') ? `[${address.address}]` : address.address
    console.log(`Rewind cluster: ${settings.workers} workers at http://${host}:${address.port}/`)
  })

  cluster.on('exit', (worker, code, signal) => {
    listening.delete(worker.id)
    const { slot, at } = startedAt.get(worker.id)
    startedAt.delete(worker.id)
    if (code !== 0) exitCode = 1
    if (stopping) {
      if (startedAt.size === 0) process.exit(exitCode)
      return
    }
    console.error(`worker ${slot} (pid ${worker.process.pid}) exited (${signal ?? code})`)
    if (Date.now() - at < MIN_UPTIME) {
      console.error(`worker ${slot} did not stay up for ${MIN_UPTIME} ms; stopping the others`)
      stop()
    } else fork(slot)
  })

  const stop = () => {
    if (stopping) return
    stopping = true
    setTimeout(() => {
      console.error(`workers still running after ${STOP_TIMEOUT} ms; exiting`)
      process.exit(1)
    }, STOP_TIMEOUT).unref()
    if (startedAt.size === 0) process.exit(exitCode)
    for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill('SIGTERM')
  }
  // A Ctrl+C in a terminal reaches the workers too; they ignore the second signal.
  process.on('SIGTERM', stop)
  process.on('SIGINT', stop)

  for (let slot = 1; slot <= settings.workers; slot++) fork(slot)
}

/**
 * One worker: its own store (its own Redis connections) and its own app, on the shared port.
 *
 * @param {ReturnType<typeof readSettings>} settings
 */
function runWorker(settings) {
  const store = createRedisStore({ redis: settings.redis, prefix: settings.prefix, maxLen: settings.history })
  const app = createApp({
    store,
    worker: process.env.WORKER_NAME ?? String(cluster.worker?.id),
    heartbeatInterval: settings.heartbeat,
  })
  const server = createServer(app)
  server.listen(settings.port, settings.host)
  stopOnSignals(async () => {
    await app.locals.events.close({ server, retry: 1000 })
    await store.close()
    // The channel to the primary is the last thing keeping the process alive.
    process.disconnect()
  })
}

const settings = readSettings()
if (cluster.isPrimary) runPrimary(settings)
else runWorker(settings)
