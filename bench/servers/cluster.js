/**
 * The server of the connections scenario (connections.js): SSE in node:cluster workers on one port.
 * The primary forks BENCH_WORKERS workers (round-robin: it accepts each connection and hands it to
 * the next worker), prints `workers <pid,...>` and then `ready` once all listen, and stops them on
 * SIGTERM.
 *
 * What a worker is, by BENCH_CLUSTER_MODE:
 * - `redis` (the default): Rewind on one shared `@rewind/redis` history (BENCH_REDIS_PREFIX); an
 *   event published on one worker reaches the clients of the others through Redis.
 * - `memory`: Rewind with its in-memory history, one per worker; every worker publishes every event
 *   itself, relayed by the primary over the cluster's IPC channel.
 * - `raw`: plain node:http, hand-written (`handWrittenStream` in shared.js: the head, a Set of
 *   responses, one `id:`/`data:` frame written to each), relayed as `memory`. The floor.
 * Rewind is `@rewind/express`, or `@rewind/fastify` with BENCH_CLUSTER_FRAMEWORK=fastify.
 *
 * Each worker: heartbeats every BENCH_HEARTBEAT ms (0: none), `GET /events` on stream `s`, and a
 * forced GC on SIGUSR2 so RSS can be read without garbage in it. `POST /publish?n=5&size=128`, on
 * whichever worker the primary hands it to, makes a burst of `n` events there (their publish time
 * taken then) and publishes them back to back: through Redis, or relayed to every worker including
 * itself. The trigger is the same request in every mode, so the delivery times compare.
 */
import cluster from 'node:cluster'
import http from 'node:http'
import { announce, control, handWrittenStream, makeData, port, publishOptions } from './shared.js'

const workers = Number(process.env.BENCH_WORKERS ?? 2)
const MODE = process.env.BENCH_CLUSTER_MODE ?? 'redis'
const FRAMEWORK = process.env.BENCH_CLUSTER_FRAMEWORK ?? 'express'
const HEARTBEAT = Number(process.env.BENCH_HEARTBEAT ?? 0)

if (!['redis', 'memory', 'raw'].includes(MODE)) throw new Error(`unknown BENCH_CLUSTER_MODE ${MODE}`)
if (!['express', 'fastify'].includes(FRAMEWORK))
  throw new Error(`unknown BENCH_CLUSTER_FRAMEWORK ${FRAMEWORK}`)

if (cluster.isPrimary) {
  const pids = []
  let listening = 0
  let stopping = false
  cluster.on('listening', () => {
    if (++listening !== workers) return
    process.stdout.write(`workers ${pids.join(',')}\n`)
    announce(() => {
      stopping = true
      return Promise.all(
        Object.values(cluster.workers).map(
          (worker) =>
            new Promise((resolve) => {
              worker.once('exit', resolve)
              worker.process.kill('SIGTERM')
            }),
        ),
      )
    })
  })
  cluster.on('exit', (worker, code, signal) => {
    if (stopping) return
    // A worker lost mid-measurement invalidates it: fail loudly rather than measure fewer workers.
    process.stderr.write(`error: worker ${worker.process.pid} exited (${signal ?? code})\n`)
    process.exit(1)
  })
  // The relay of `memory` and `raw`: a burst made on one worker goes to every worker as it is.
  cluster.on('message', (_from, message) => {
    if (message?.publish === undefined) return
    for (const worker of Object.values(cluster.workers)) worker.send(message)
  })
  for (let i = 0; i < workers; i++) pids.push(cluster.fork().process.pid)
} else {
  const worker = MODE === 'raw' ? rawWorker() : await rewindWorker()
  /** Publishes a burst made on this worker: through Redis from here, else on every worker. */
  const fanOut =
    MODE === 'redis'
      ? (batch) => Promise.all(batch.map((data) => worker.publish(data)))
      : (batch) => new Promise((resolve) => process.send({ publish: batch }, resolve))
  if (MODE !== 'redis') {
    process.on('message', (message) => {
      // Back to back, in one turn of the event loop, as an app publishing a burst does.
      for (const data of message?.publish ?? []) worker.publish(data)
    })
  }
  /** `POST /publish` as above; the other control routes as every bench server has them. */
  worker.control = async (method, path, query) => {
    if (method !== 'POST' || path !== '/publish') return control(method, path, query)
    const { n, size } = publishOptions(query)
    const batch = Array.from({ length: n }, () => makeData(size))
    await fanOut(batch)
    return { published: n }
  }
  const server = await worker.listen()
  // Under the open-file limit: round-robin hands a worker more than its share when it acknowledges
  // faster, and a full worker refuses the connection, which the primary then gives to another
  // (rather than the worker failing to accept with EMFILE). When every worker is full the primary
  // hands the connection round forever, burning CPU in every process: leave room above the load.
  if (process.env.BENCH_MAX_CONNECTIONS) server.maxConnections = Number(process.env.BENCH_MAX_CONNECTIONS)

  // A primary that was killed cannot stop its workers; they would hold their sockets forever.
  process.on('disconnect', () => process.exit(0))
  process.on('SIGUSR2', () => {
    globalThis.gc?.()
    globalThis.gc?.()
  })
  process.on('SIGTERM', async () => {
    const timer = setTimeout(() => process.exit(0), 2000)
    try {
      await worker.close()
    } finally {
      clearTimeout(timer)
      process.exit(0)
    }
  })
}

/**
 * A worker of Rewind, on Redis or in memory: `publish(data)` on stream `s`, `listen()` resolving
 * with the node:http server, `close()`. The routes call `worker.control`, set once it exists.
 */
async function rewindWorker() {
  const store =
    MODE === 'redis'
      ? (await import('@rewind/redis')).createRedisStore({
          redis: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
          prefix: process.env.BENCH_REDIS_PREFIX ?? 'rewind-bench:',
        })
      : undefined
  const options = { heartbeatInterval: HEARTBEAT, ...(store === undefined ? {} : { store }) }
  const worker = {}
  if (FRAMEWORK === 'fastify') {
    const [{ ssePlugin }, { default: Fastify }] = await Promise.all([
      import('@rewind/fastify'),
      import('fastify'),
    ])
    const fastify = Fastify()
    await fastify.register(ssePlugin, options)
    fastify.get('/events', (request, reply) => reply.sse('s'))
    const route = (request) => worker.control(request.method, request.routeOptions.url, request.query)
    fastify.post('/publish', route)
    fastify.get('/clock', route)
    fastify.post('/gc', route)
    worker.publish = (data) => fastify.sse.publish('s', { data })
    worker.listen = async () => {
      await fastify.listen({ port, host: '127.0.0.1' })
      return fastify.server
    }
    worker.close = async () => {
      await fastify.close()
      await store?.close()
    }
    return worker
  }
  const [{ sse }, { default: express }] = await Promise.all([import('@rewind/express'), import('express')])
  const events = sse(options)
  const app = express()
  app.use(events)
  app.get('/events', (req, res) => {
    res.sse('s')
  })
  app.all(['/publish', '/clock', '/gc'], async (req, res, next) => {
    try {
      const body = await worker.control(req.method, req.path, req.query)
      if (body === undefined) next()
      else res.json(body)
    } catch (error) {
      next(error)
    }
  })
  let server
  worker.publish = (data) => events.publish('s', { data })
  worker.listen = () =>
    new Promise((resolve) => {
      server = app.listen(port, '127.0.0.1', () => resolve(server))
    })
  worker.close = async () => {
    await events.close({ server })
    await store?.close()
  }
  return worker
}

/** A worker of plain node:http, hand-written: the same interface as {@link rewindWorker}'s. */
function rawWorker() {
  const stream = handWrittenStream({ heartbeatInterval: HEARTBEAT })
  const worker = {}
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://localhost')
    if (req.method === 'GET' && url.pathname === '/events') {
      stream.subscribe(res, req.headers['last-event-id'])
      return
    }
    worker.control(req.method, url.pathname, url.searchParams).then(
      (body) => {
        if (body === undefined) res.writeHead(404).end()
        else res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body))
      },
      (error) => res.writeHead(500).end(String(error)),
    )
  })
  worker.publish = stream.publish
  worker.listen = () => new Promise((resolve) => server.listen(port, '127.0.0.1', () => resolve(server)))
  worker.close = async () => {
    stream.close()
    // The SSE responses never end by themselves: close() would wait for them forever.
    server.closeAllConnections()
    await new Promise((resolve) => server.close(resolve))
  }
  return worker
}
