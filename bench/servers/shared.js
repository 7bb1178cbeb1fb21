/**
 * What every bench server shares: the port argument, the payload, the publish driver behind
 * `POST /publish`, the clock behind `GET /clock`, and `ready` / SIGTERM handling.
 * Each server file only wires these into its own framework and its own way of broadcasting.
 */
import { performance } from 'node:perf_hooks'

/** The port to listen on: the first argument. */
export const port = Number(process.argv[2] ?? 0)

/** Wall-clock time in microseconds, with sub-millisecond precision, comparable across processes. */
export function nowMicros() {
  return Math.round((performance.timeOrigin + performance.now()) * 1000)
}

// `{"t":` + 16 digits + `,"p":"` + padding + `"}`
const OVERHEAD = 5 + 16 + 6 + 2

/** The data of one event: its publish time (`t`, µs) and padding, `size` bytes once serialized. */
export function makeData(size) {
  return { t: nowMicros(), p: 'x'.repeat(Math.max(0, size - OVERHEAD)) }
}

/** Reads `n`, `size`, `mode` (burst, paced or rate) and `rate` (events per second) from a query string. */
export function publishOptions(query) {
  const get = (name) => (typeof query.get === 'function' ? query.get(name) : query[name])
  const n = Math.max(0, Math.min(100_000, Number(get('n') ?? 1) || 0))
  const size = Math.max(OVERHEAD, Math.min(65_536, Number(get('size') ?? 128) || 128))
  const mode = get('mode') ?? 'burst'
  const rate = Math.max(1, Math.min(100_000, Number(get('rate') ?? 50) || 50))
  return { n, size, mode, rate }
}

/**
 * Publishes `n` events through `publishOne(data)` (which returns the id, or a promise of it) and
 * resolves with the ids once the last one is published:
 * - `burst`: all in one synchronous loop, as an app publishing a burst does;
 * - `paced`: one per turn of the event loop (`setImmediate`), so nothing can be coalesced;
 * - `rate`: `rate` events per second on a timer, scheduled against absolute times (no drift).
 */
export function publishMany({ n, size, mode, rate }, publishOne) {
  const ids = new Array(n)
  if (mode === 'burst') {
    for (let i = 0; i < n; i++) ids[i] = publishOne(makeData(size))
    return Promise.all(ids)
  }
  return new Promise((resolve, reject) => {
    let i = 0
    const start = performance.now()
    const step = () => {
      try {
        ids[i] = publishOne(makeData(size))
      } catch (error) {
        reject(error)
        return
      }
      i++
      if (i >= n) {
        Promise.all(ids).then(resolve, reject)
        return
      }
      if (mode === 'rate') setTimeout(step, Math.max(0, start + (i * 1000) / rate - performance.now()))
      else setImmediate(step)
    }
    if (n === 0) resolve([])
    else step()
  })
}

/** Reads `tokens` (1 to 100,000; default 2000) of a `POST /answer` query string. */
export function answerTokens(query) {
  const value = Number(typeof query.get === 'function' ? query.get('tokens') : query.tokens)
  return Math.max(1, Math.min(100_000, Number.isFinite(value) && value > 0 ? Math.floor(value) : 2000))
}

/**
 * The tokens of a streamed answer as the bench's servers produce them: `n` events whose data is a
 * 64-byte JSON object (the load client counts frames by their closing brace), as fast as they come.
 */
export async function* answerItems(n) {
  for (let i = 0; i < n; i++) yield { data: makeData(64) }
}

/**
 * Hand-written replay, as naive code keeps it: a ring of the last `size` frames (ids are 1, 2, 3...),
 * and a client with `Last-Event-ID` gets every frame after it in one write. No bound per client, no
 * gap signal (an unknown id gets everything kept), no position for a fresh client.
 */
export function handWrittenHistory(size = 1000) {
  const ring = new Array(size)
  let newest = 0
  return {
    /** Keeps the frame of the next id; returns that id. */
    push(frame) {
      ring[++newest % size] = frame
      return newest
    },
    /** The frames after `lastEventId` still kept, as one buffer; undefined if none. */
    after(lastEventId) {
      if (newest === 0) return undefined
      const oldest = Math.max(1, newest - size + 1)
      const after = Number(lastEventId)
      const from = Number.isInteger(after) && after >= oldest - 1 && after <= newest ? after + 1 : oldest
      if (from > newest) return undefined
      const frames = []
      for (let id = from; id <= newest; id++) frames.push(ring[id % size])
      return Buffer.concat(frames)
    },
  }
}

const HEARTBEAT = Buffer.from(':\n\n')

/**
 * Hand-written broadcasting, as raw node:http and hand-written Fastify do it: each event serialized
 * once into a frame buffer, kept in a {@link handWrittenHistory} and written to every open response.
 * `publish(data)` returns the event's id; `subscribe(res, lastEventId)` writes the head, then the
 * frames after `lastEventId` in one write (or flushes the head alone), and keeps `res` until it closes.
 *
 * With `heartbeatInterval` (ms; default 0, none) a timer writes a `:` comment to every response
 * unless an event went to all of them since the last tick: the same skip as Rewind's heartbeat,
 * so that a tick landing in a round of events costs neither side a write per connection.
 * `close()` stops that timer.
 */
export function handWrittenStream({ heartbeatInterval = 0 } = {}) {
  const clients = new Set()
  const history = handWrittenHistory()
  let seq = 0
  let publishedSinceTick = false
  const timer =
    heartbeatInterval > 0
      ? setInterval(() => {
          if (!publishedSinceTick) for (const res of clients) res.write(HEARTBEAT)
          publishedSinceTick = false
        }, heartbeatInterval)
      : undefined
  return {
    publish(data) {
      const id = String(++seq)
      const frame = Buffer.from(`id: ${id}\ndata: ${JSON.stringify(data)}\n\n`)
      history.push(frame)
      for (const res of clients) res.write(frame)
      publishedSinceTick = true
      return id
    },
    close() {
      clearInterval(timer)
    },
    subscribe(res, lastEventId) {
      res.writeHead(200, {
        'content-type': 'text/event-stream',
        'cache-control': 'no-cache',
        connection: 'keep-alive',
      })
      const missed = lastEventId === undefined ? undefined : history.after(lastEventId)
      if (missed !== undefined) res.write(missed)
      else res.flushHeaders()
      clients.add(res)
      res.on('close', () => clients.delete(res))
    },
  }
}

/**
 * Hand-written streamed answers: every frame of each answer in an array, then one buffer, replayed
 * to each client in one write (the best case for naive code: no history bounds, no resume position,
 * nothing shared between clients but the bytes). `start(tokens)` resolves with the id once the
 * answer is complete; `get(id)` gives its bytes.
 */
export function handWrittenAnswers() {
  const answers = new Map()
  return {
    async start(tokens) {
      const id = String(answers.size + 1)
      const frames = []
      let n = 0
      for await (const item of answerItems(tokens))
        frames.push(`id: ${++n}\ndata: ${JSON.stringify(item.data)}\n\n`)
      frames.push(`id: ${++n}\nevent: end\ndata: done\n\n`)
      answers.set(id, Buffer.from(frames.join('')))
      return id
    },
    get(id) {
      return answers.get(id)
    },
  }
}

/**
 * Answers a control request; the body is JSON. Returns undefined for a path that is not a control.
 * `startAnswer(tokens)`, where a server has streamed answers, starts one, waits for its end, and
 * resolves with its id (`POST /answer?tokens=N`).
 */
export async function control(method, path, query, publishOne, startAnswer) {
  if (method === 'POST' && path === '/answer' && startAnswer !== undefined) {
    return { id: await startAnswer(answerTokens(query)) }
  }
  if (method === 'POST' && path === '/publish') {
    const ids = await publishMany(publishOptions(query), publishOne)
    return { ids }
  }
  if (path === '/clock') return { now: nowMicros() }
  if (method === 'POST' && path === '/gc') {
    if (typeof globalThis.gc === 'function') {
      globalThis.gc()
      globalThis.gc()
    }
    return { rss: process.memoryUsage.rss() }
  }
  return undefined
}

/**
 * The control routes as an Express handler: what {@link control} answers is sent as JSON, anything
 * else goes on to the next route.
 */
export function expressControl(publishOne, startAnswer) {
  return async (req, res, next) => {
    try {
      const body = await control(req.method, req.path, req.query, publishOne, startAnswer)
      if (body === undefined) next()
      else res.json(body)
    } catch (error) {
      next(error)
    }
  }
}

/**
 * The control routes on a Fastify instance: what {@link control} answers is sent as JSON. `/answer`
 * only where the server has streamed answers (`startAnswer`).
 */
export function fastifyControl(fastify, publish, startAnswer) {
  const route = async (request) =>
    control(request.method, request.routeOptions.url, request.query, publish, startAnswer)
  fastify.post('/publish', route)
  fastify.get('/clock', route)
  fastify.post('/gc', route)
  if (startAnswer !== undefined) fastify.post('/answer', route)
}

/**
 * How a Rewind server (`events`: anything with Rewind's `publish` and `responses`) publishes one
 * event on stream `s`, and starts an answer of `tokens` tokens and resolves with its id once it ends.
 */
export function rewindControls(events) {
  return {
    publish: (data) => events.publish('s', { data }),
    startAnswer: async (tokens) => {
      const { id, done } = await events.responses.start(answerItems(tokens))
      await done
      return id
    },
  }
}

/** Prints `ready` once listening, and exits on SIGTERM (after `onClose`, if given). */
export function announce(onClose) {
  process.stdout.write('ready\n')
  let closing = false
  process.on('SIGTERM', () => {
    if (closing) return
    closing = true
    const timer = setTimeout(() => process.exit(0), 2000)
    Promise.resolve()
      .then(onClose)
      .catch(() => {})
      .finally(() => {
        clearTimeout(timer)
        process.exit(0)
      })
  })
}
