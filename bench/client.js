/**
 * The load client: a child process of run.js (on its own core where `taskset` exists) that opens
 * raw TCP connections to a bench server, counts the events it receives and samples their latency.
 *
 * Cheap per event on purpose, so the server is what is measured:
 * - every socket reads into one shared buffer (`onread`), so reads allocate nothing;
 * - events are counted, not parsed: each data frame ends in `}\n\n` (the payload is a JSON object),
 *   found with `Buffer#indexOf`, with a pair split across reads carried over in two bits of state;
 *   `retry:`, id-only and comment frames end otherwise and are not counted;
 * - publish times are read only from the frames of sampled sockets (every `stride`-th one).
 *
 * Commands arrive over IPC from run.js; each answers with one result message.
 */
import http from 'node:http'
import net from 'node:net'
import { performance } from 'node:perf_hooks'
import { countFrames } from './lib/frames.js'
import { readCpuTicks, readRssKiB } from './lib/proc.js'

/** Full-size rounds of replay and answers run before the measured one. */
const WARMUP_ROUNDS = 4

/** `body()`'s result with the server's and this client's CPU over it. */
async function measured(ctx, body) {
  const mark = cpuMark(ctx.pid, ctx.ticks)
  const result = await body()
  return { ...result, ...cpuSince(mark, ctx.pid, ctx.ticks) }
}

/**
 * Runs `warmup()` WARMUP_ROUNDS times, then `round()`, and reports that last round with the first
 * (`cold`). What is measured is a server whose hot paths are compiled and whose heap has grown to
 * the load, as in a server that has been running; the first round, the JIT's first pass over the
 * code (which costs a larger library more), is reported beside it.
 */
async function warmThenMeasure(warmup, round = warmup) {
  const first = await warmup()
  for (let i = 1; i < WARMUP_ROUNDS; i++) await warmup()
  const result = await round()
  return { ...result, cold: { elapsed: first.elapsed, serverCpu: first.serverCpu, lost: first.lost } }
}

const READ_BUFFER = Buffer.allocUnsafe(256 * 1024)
const HEADER_END = '\r\n\r\n'

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
const nowMicros = () => (performance.timeOrigin + performance.now()) * 1000

/** Latency samples in microseconds, preallocated so sampling does not allocate. */
class Samples {
  constructor(capacity) {
    this.values = new Float64Array(Math.max(1, capacity))
    this.length = 0
  }
  push(value) {
    if (this.length < this.values.length) this.values[this.length++] = value
  }
  summary() {
    const sorted = this.values.subarray(0, this.length).sort()
    const at = (q) =>
      sorted.length === 0 ? null : sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]
    return {
      samples: sorted.length,
      p50: at(0.5),
      p99: at(0.99),
      max: sorted.length === 0 ? null : sorted[sorted.length - 1],
    }
  }
}

/**
 * One SSE connection. `events` counts data frames; `onHeaders` fires once the status line and
 * headers are in; `onEvents` is told how many frames each read completed.
 */
class Subscriber {
  constructor(port, { lastEventId, samples, onHeaders, onEvents, onClose, path = '/events' }) {
    this.events = 0
    this.status = 0
    this.headersDone = false
    this.closed = false
    this.tail = 0 // 1: the last read ended with `}`, 2: with `}\n`
    this.header = ''
    this.carry = ''
    this.samples = samples
    this.onHeaders = onHeaders
    this.onEvents = onEvents
    this.socket = net.connect({
      port,
      host: '127.0.0.1',
      noDelay: true,
      onread: { buffer: READ_BUFFER, callback: (nread, buf) => this.read(buf, nread) },
    })
    const resume = lastEventId === undefined ? '' : `Last-Event-ID: ${lastEventId}\r\n`
    this.socket.write(
      `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nAccept: text/event-stream\r\n${resume}\r\n`,
    )
    this.socket.on('error', () => {})
    this.socket.on('close', () => {
      this.closed = true
      onClose?.(this)
    })
  }

  read(buf, nread) {
    let start = 0
    if (!this.headersDone) {
      const text = this.header + buf.toString('latin1', 0, nread)
      const end = text.indexOf(HEADER_END)
      if (end === -1) {
        this.header = text.length > 16_384 ? '' : text
        return
      }
      this.headersDone = true
      this.status = Number(text.slice(9, 12))
      this.header = ''
      start = nread - (text.length - (end + 4))
      this.onHeaders?.(this)
      if (start >= nread) return
    }
    const n = countFrames(this, buf, start, nread)
    if (this.samples !== undefined) this.sample(buf, start, nread)
    if (n > 0) {
      this.events += n
      this.onEvents?.(n, this)
    }
  }

  /** Reads the publish time (`"t":<µs>,`) of every frame in this read and records its latency. */
  sample(buf, start, end) {
    const now = nowMicros()
    const text = this.carry + buf.toString('latin1', start, end)
    let pos = 0
    for (;;) {
      const k = text.indexOf('"t":', pos)
      if (k === -1) {
        this.carry = text.slice(Math.max(pos, text.length - 3))
        return
      }
      const comma = text.indexOf(',', k + 4)
      if (comma === -1) {
        this.carry = text.slice(k)
        return
      }
      this.samples.push(now - Number(text.slice(k + 4, comma)))
      pos = comma
    }
  }

  close() {
    if (!this.socket.destroyed) this.socket.resetAndDestroy()
  }
}

/** A plain HTTP request to a bench server's control routes; resolves with the parsed JSON body. */
function request(port, method, path) {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port, method, path, agent: false, headers: { 'content-length': 0 } },
      (res) => {
        let body = ''
        res.setEncoding('utf8')
        res.on('data', (chunk) => {
          body += chunk
        })
        res.on('end', () => {
          if (res.statusCode !== 200) reject(new Error(`${method} ${path}: ${res.statusCode} ${body}`))
          else resolve(JSON.parse(body))
        })
      },
    )
    req.on('error', reject)
    req.end()
  })
}

/**
 * Offset of the server's clock from ours (µs), from the lowest-RTT of several pings: a sanity check
 * only. Both processes read the same system clock (`performance.timeOrigin + performance.now()`), so
 * the true offset is about zero and latencies are not corrected by this noisier estimate.
 */
async function clockOffset(port) {
  let best = { rtt: Number.POSITIVE_INFINITY, offset: 0 }
  for (let i = 0; i < 25; i++) {
    const t0 = nowMicros()
    const { now } = await request(port, 'GET', '/clock')
    const t1 = nowMicros()
    if (t1 - t0 < best.rtt) best = { rtt: t1 - t0, offset: now - (t0 + t1) / 2 }
  }
  return best
}

/**
 * Opens `count` subscribers, at most `concurrency` handshakes in flight, and resolves once every one
 * has its headers (or rejects after `timeoutMs`).
 */
function openSubscribers(port, count, concurrency, options = {}, timeoutMs = 30_000) {
  return new Promise((resolve, reject) => {
    const subs = []
    let opened = 0
    let ready = 0
    let failed = 0
    const timer = setTimeout(() => {
      reject(new Error(`only ${ready} of ${count} subscribers connected (${failed} closed)`))
    }, timeoutMs)
    const next = () => {
      while (opened < count && opened - ready - failed < concurrency) {
        const index = opened++
        subs.push(
          new Subscriber(port, {
            ...options,
            samples: options.sampleEvery && index % options.sampleEvery === 0 ? options.samples : undefined,
            onHeaders: (sub) => {
              if (sub.status !== 200) failed++
              else ready++
              if (ready + failed === count) {
                clearTimeout(timer)
                if (failed > 0) reject(new Error(`${failed} of ${count} subscribers refused`))
                else resolve(subs)
              } else next()
            },
            onClose: (sub) => {
              if (sub.headersDone) return
              failed++
              if (ready + failed === count) {
                clearTimeout(timer)
                reject(new Error(`${failed} of ${count} subscribers closed before their headers`))
              } else next()
            },
          }),
        )
      }
    }
    next()
  })
}

function closeAll(subs) {
  for (const sub of subs) sub.close()
}

/** Gives up waiting once no event has arrived for this long (a closed or stuck subscriber). */
const STALL_MS = 10_000

/**
 * Resolves true when `done()` holds, polled cheaply; false after `timeoutMs`, or once
 * `lastProgress()` (the time of the last event) is `STALL_MS` old.
 */
async function until(done, timeoutMs, lastProgress = () => performance.now()) {
  const start = performance.now()
  while (!done()) {
    const now = performance.now()
    if (now - start > timeoutMs || now - Math.max(start, lastProgress()) > STALL_MS) return false
    await sleep(2)
  }
  return true
}

/** CPU time of the server (from /proc) and of this client, to put around a measured window. */
function cpuMark(pid, ticksPerSecond) {
  return { server: readCpuTicks(pid) / ticksPerSecond, client: process.cpuUsage() }
}

function cpuSince(mark, pid, ticksPerSecond) {
  const used = process.cpuUsage(mark.client)
  return {
    serverCpu: readCpuTicks(pid) / ticksPerSecond - mark.server,
    clientCpu: (used.user + used.system) / 1e6,
  }
}

/**
 * Publishes on `publishPort` and waits until every subscriber has `n` more events. Measures from
 * the publish request to the last event received.
 */
async function deliver(ctx, subs, publishPort, query, n, timeoutMs) {
  const before = subs.map((sub) => sub.events)
  const expected = subs.length * n
  let received = 0
  let lastAt = 0
  for (const sub of subs) {
    sub.onEvents = (count) => {
      received += count
      lastAt = performance.now()
    }
  }
  const mark = cpuMark(ctx.pid, ctx.ticks)
  const t0 = performance.now()
  const published = request(publishPort, 'POST', `/publish?${query}`)
  const ids = (await published).ids
  const complete = await until(
    () => received >= expected,
    timeoutMs,
    () => lastAt,
  )
  if (complete) await sleep(50) // anything extra (duplicates) would arrive now
  const cpu = cpuSince(mark, ctx.pid, ctx.ticks)
  let lost = 0
  let extra = 0
  subs.forEach((sub, i) => {
    sub.onEvents = undefined
    const got = sub.events - before[i]
    if (got < n) lost += n - got
    else extra += got - n
  })
  const elapsed = ((complete ? lastAt : performance.now()) - t0) / 1000
  return { ids, elapsed, expected, delivered: expected - lost, lost, extra, ...cpu }
}

const commands = {
  /** Scenario 1 (burst or paced) and 2 (rate): fan-out to `subs` subscribers. */
  async fanout(ctx, { port, subs: count, n, size, mode, rate, sampleEvery, warmup, timeoutMs, repeat = 1 }) {
    const clock = await clockOffset(port)
    const samples = new Samples(Math.ceil(count / sampleEvery) * (n + warmup))
    const subs = await openSubscribers(port, count, 100, { samples, sampleEvery })
    try {
      await sleep(200)
      if (warmup > 0) {
        const w = await deliver(
          ctx,
          subs,
          port,
          `n=${warmup}&size=${size}&mode=${mode}&rate=${rate}`,
          warmup,
          timeoutMs,
        )
        if (w.lost > 0) throw new Error(`warm-up lost ${w.lost} events`)
      }
      let result
      // `repeat` > 1 (profiling) measures the last of several rounds on the same connections.
      for (let round = 0; round < repeat; round++) {
        samples.length = 0
        result = await deliver(ctx, subs, port, `n=${n}&size=${size}&mode=${mode}&rate=${rate}`, n, timeoutMs)
      }
      delete result.ids
      return {
        ...result,
        rate: result.delivered / result.elapsed,
        latency: samples.summary(),
        clock,
      }
    } finally {
      closeAll(subs)
    }
  },

  /** Scenario 3: RSS of the server with `conns` idle connections, per connection. */
  async memory(ctx, { port, conns, warmup, settleMs = 1000 }) {
    const warm = await openSubscribers(port, warmup, 100)
    await sleep(settleMs / 5)
    closeAll(warm)
    await sleep(settleMs / 2)
    await request(port, 'POST', '/gc')
    await sleep(settleMs / 2)
    const before = readRssKiB(ctx.pid)
    const mark = cpuMark(ctx.pid, ctx.ticks)
    const t0 = performance.now()
    const subs = await openSubscribers(port, conns, 200, {}, 60_000)
    const elapsed = (performance.now() - t0) / 1000
    const cpu = cpuSince(mark, ctx.pid, ctx.ticks)
    try {
      await sleep(settleMs / 2)
      await request(port, 'POST', '/gc')
      await sleep(settleMs)
      const after = readRssKiB(ctx.pid)
      return { before, after, perConnKiB: (after - before) / conns, elapsed, ...cpu }
    } finally {
      closeAll(subs)
    }
  },

  /** Scenario 4: `clients` resume `behind` events back from a history of `history` events. */
  async replay(ctx, { port, publishPort, clients, history, behind, timeoutMs }) {
    const pub = publishPort ?? port
    const { ids } = await request(pub, 'POST', `/publish?n=${history}&size=128`)
    if (ids.length !== history) throw new Error(`published ${ids.length} of ${history}`)
    const round = () =>
      measured(ctx, () => catchUp(port, clients, ids[history - behind - 1], behind, timeoutMs))
    return warmThenMeasure(round)
  },

  /**
   * Scenario 7: a streamed answer of `tokens` events is produced to its end (on `publishPort`), then
   * `clients` attach at once without a position (on `port`) and each gets the whole answer from its
   * start: time until every client has every token.
   */
  async answer(ctx, { port, publishPort, clients, tokens, timeoutMs }) {
    const pub = publishPort ?? port
    // Warm-up rounds read another answer of the same length (see `warmThenMeasure`).
    const warm = await request(pub, 'POST', `/answer?tokens=${tokens}`)
    const round = (id) => measured(ctx, () => attach(port, `/answers/${id}`, clients, tokens, timeoutMs))
    const { id } = await request(pub, 'POST', `/answer?tokens=${tokens}`)
    return warmThenMeasure(
      () => round(warm.id),
      () => round(id),
    )
  },

  /** Scenario 5: handshakes per second, each connection closed once its headers arrive. */
  async connect(ctx, { port, total, concurrency, prefill, warmup }) {
    if (prefill > 0) await request(port, 'POST', `/publish?n=${prefill}&size=128`)
    await handshakes(port, warmup, concurrency)
    const mark = cpuMark(ctx.pid, ctx.ticks)
    const result = await handshakes(port, total, concurrency)
    return { ...result, ...cpuSince(mark, ctx.pid, ctx.ticks) }
  },

  /** Scenario 6: publish on one instance (`publishPort`), subscribers on another (`port`). */
  async crossInstance(ctx, args) {
    const { port, publishPort, subs: count, n, size, rate, sampleEvery, warmup, timeoutMs } = args
    const clockSub = await clockOffset(port)
    const clockPub = await clockOffset(publishPort)
    const samples = new Samples(Math.ceil(count / sampleEvery) * (n + warmup))
    const subs = await openSubscribers(port, count, 100, { samples, sampleEvery })
    try {
      await sleep(300)
      const query = (k) => `n=${k}&size=${size}&mode=rate&rate=${rate}`
      if (warmup > 0) await deliver(ctx, subs, publishPort, query(warmup), warmup, timeoutMs)
      samples.length = 0
      const result = await deliver(ctx, subs, publishPort, query(n), n, timeoutMs)
      delete result.ids
      return { ...result, latency: samples.summary(), clock: clockSub, clockPublisher: clockPub }
    } finally {
      closeAll(subs)
    }
  },
}

/** Opens `clients` subscribers of `path` at once, without a position; waits until each has `n` events. */
function attach(port, path, clients, n, timeoutMs) {
  return catchUp(port, clients, undefined, n, timeoutMs, path)
}

/** Opens `clients` subscribers at once resuming from `lastEventId`; waits until each has `n` events. */
async function catchUp(port, clients, lastEventId, n, timeoutMs, path = '/events') {
  const expected = clients * n
  let received = 0
  let lastAt = 0
  const t0 = performance.now()
  const subs = []
  for (let i = 0; i < clients; i++) {
    subs.push(
      new Subscriber(port, {
        lastEventId,
        path,
        onEvents: (count) => {
          received += count
          lastAt = performance.now()
        },
      }),
    )
  }
  try {
    const complete = await until(
      () => received >= expected,
      timeoutMs,
      () => lastAt,
    )
    if (complete) await sleep(50)
    let lost = 0
    let extra = 0
    for (const sub of subs) {
      if (sub.events < n) lost += n - sub.events
      else extra += sub.events - n
    }
    const elapsed = ((complete ? lastAt : performance.now()) - t0) / 1000
    return { elapsed, expected, delivered: expected - lost, lost, extra }
  } finally {
    closeAll(subs)
  }
}

/** Opens `total` connections, `concurrency` at a time, each closed (reset) once its headers arrive. */
function handshakes(port, total, concurrency) {
  return new Promise((resolve, reject) => {
    const times = new Samples(total)
    let started = 0
    let finished = 0
    let failed = 0
    const t0 = performance.now()
    const timer = setTimeout(() => reject(new Error(`handshakes: ${finished} of ${total} in time`)), 60_000)
    const open = () => {
      const begin = nowMicros()
      started++
      const sub = new Subscriber(port, {
        onHeaders: () => {
          times.push(nowMicros() - begin)
          if (sub.status !== 200) failed++
          sub.close()
          done()
        },
        onClose: () => {
          if (!sub.headersDone) {
            failed++
            done()
          }
        },
      })
    }
    const done = () => {
      finished++
      if (finished === total) {
        clearTimeout(timer)
        const elapsed = (performance.now() - t0) / 1000
        resolve({ total, failed, elapsed, rate: total / elapsed, handshake: times.summary() })
      } else if (started < total) open()
    }
    for (let i = 0; i < Math.min(concurrency, total); i++) open()
  })
}

process.on('message', async (message) => {
  const { id, command, args, ctx } = message
  try {
    const result = await commands[command](ctx, args)
    process.send({ id, result })
  } catch (error) {
    process.send({ id, error: error instanceof Error ? error.stack : String(error) })
  }
})
process.on('disconnect', () => process.exit(0))
process.send({ ready: true })
