/**
 * @rewind/express in node:cluster workers on one port, sharing one @rewind/redis history: the
 * server of the connections scenario (connections.js). The primary forks BENCH_WORKERS workers
 * (round-robin: it accepts each connection and hands it to the next worker), prints
 * `workers <pid,...>` and then `ready` once all listen, and stops them on SIGTERM.
 *
 * Each worker: heartbeats every BENCH_HEARTBEAT ms (0: none), `GET /events` on stream `s`,
 * `POST /publish` as every bench server (an event published on one worker reaches the clients of
 * all through Redis), and a forced GC on SIGUSR2 so RSS can be read without garbage in it.
 */
import cluster from 'node:cluster'
import { announce, expressControl, port } from './shared.js'

const workers = Number(process.env.BENCH_WORKERS ?? 2)

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
  for (let i = 0; i < workers; i++) pids.push(cluster.fork().process.pid)
} else {
  const [{ sse }, { createRedisStore }, { default: express }] = await Promise.all([
    import('@rewind/express'),
    import('@rewind/redis'),
    import('express'),
  ])
  const store = createRedisStore({
    redis: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
    prefix: process.env.BENCH_REDIS_PREFIX ?? 'rewind-bench:',
  })
  const events = sse({ store, heartbeatInterval: Number(process.env.BENCH_HEARTBEAT ?? 0) })
  const publish = (data) => events.publish('s', { data })

  const app = express()
  app.use(events)
  app.get('/events', (req, res) => {
    res.sse('s')
  })
  app.all(['/publish', '/clock', '/gc'], expressControl(publish))

  // A primary that was killed cannot stop its workers; they would hold their sockets forever.
  process.on('disconnect', () => process.exit(0))
  process.on('SIGUSR2', () => {
    globalThis.gc?.()
    globalThis.gc?.()
  })
  const server = app.listen(port, '127.0.0.1')
  // Under the open-file limit: round-robin hands a worker more than its share when it acknowledges
  // faster, and a full worker refuses the connection, which the primary then gives to another
  // (rather than the worker failing to accept with EMFILE). When every worker is full the primary
  // hands the connection round forever, burning CPU in every process: leave room above the load.
  if (process.env.BENCH_MAX_CONNECTIONS) server.maxConnections = Number(process.env.BENCH_MAX_CONNECTIONS)
  process.on('SIGTERM', async () => {
    const timer = setTimeout(() => process.exit(0), 2000)
    try {
      await events.close({ server })
      await store.close()
    } finally {
      clearTimeout(timer)
      process.exit(0)
    }
  })
}
