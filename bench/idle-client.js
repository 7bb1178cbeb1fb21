/**
 * A load client of the connections scenario (connections.js): one of several processes that
 * together hold many idle SSE connections, since one process may hold only as many sockets as its
 * open-file limit. Commands arrive over IPC; each answers with one result message.
 *
 * Cheap per socket and per event, as client.js: raw TCP, every socket reads into one shared buffer,
 * data frames are counted by their `}\n\n` ends (heartbeat comments end in `:\n\n` and are not), and
 * only every `sampleEvery`-th socket parses publish times. Sockets are spread over several source
 * addresses (`localAddress`, 127.0.0.x): an address has about 28,000 ephemeral ports.
 *
 * For the slowest delivery, each event is known by its position in the stream (every socket
 * connected before the first publish, so its k-th frame is the k-th event): the process records
 * when the last of its sockets got the k-th, and the publish time of the k-th (from a sampled socket).
 */
import net from 'node:net'
import { performance } from 'node:perf_hooks'
import { countFrames } from './lib/frames.js'

const READ_BUFFER = Buffer.allocUnsafe(64 * 1024)
const HEADER_END = Buffer.from('\r\n\r\n')
/** Most events one measurement follows (the arrays below are preallocated to it). */
const MAX_EVENTS = 1000

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
const nowMicros = () => (performance.timeOrigin + performance.now()) * 1000

/** State of this process's sockets, shared by all of them. */
const state = {
  sockets: [],
  /** `reached[k]`: sockets that have received at least k + 1 events. */
  reached: new Uint32Array(MAX_EVENTS),
  /** When the last socket got event k (µs), 0 until then. */
  completeAt: new Float64Array(MAX_EVENTS),
  /** Publish time of event k (µs), read from a sampled socket; 0 until seen. */
  publishedAt: new Float64Array(MAX_EVENTS),
  /** Every sampled delivery's latency (µs). */
  latencies: [],
  /** Sockets that closed after their headers (a server dropping idle connections would show here). */
  dropped: 0,
  live: 0,
}

class Connection {
  constructor(port, localAddress, sampled, onHeaders, onFail) {
    this.events = 0
    this.tail = 0
    this.headersDone = false
    this.sampled = sampled
    this.onHeaders = onHeaders
    this.socket = net.connect({
      port,
      host: '127.0.0.1',
      localAddress,
      noDelay: true,
      onread: { buffer: READ_BUFFER, callback: (nread, buf) => this.read(buf, nread) },
    })
    this.socket.write(`GET /events HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nAccept: text/event-stream\r\n\r\n`)
    this.socket.on('error', (error) => {
      this.error = error.code ?? error.message
    })
    this.socket.on('close', () => {
      if (!this.headersDone) onFail(this)
      else if (!this.closing) {
        state.dropped++
        state.live--
      }
    })
  }

  read(buf, nread) {
    let start = 0
    if (!this.headersDone) {
      // Headers fit in one read here (a few hundred bytes on loopback), and 200 is all we accept.
      const end = buf.subarray(0, nread).indexOf(HEADER_END)
      if (end === -1 || buf[9] !== 0x32) {
        this.socket.destroy()
        return
      }
      this.headersDone = true
      start = end + 4
      this.onHeaders(this)
      if (start >= nread) return
    }
    const n = countFrames(this, buf, start, nread)
    if (n === 0) return
    if (this.sampled) this.sample(buf, start, nread)
    const now = nowMicros()
    for (let k = this.events; k < this.events + n && k < MAX_EVENTS; k++) {
      if (++state.reached[k] === state.live) state.completeAt[k] = now
    }
    this.events += n
  }

  /** Publish times (`"t":<µs>,`) of the frames in this read, in order (frames are small: never split here). */
  sample(buf, start, end) {
    const now = nowMicros()
    const text = buf.toString('latin1', start, end)
    let k = this.events
    let pos = 0
    for (;;) {
      const at = text.indexOf('"t":', pos)
      if (at === -1) return
      const comma = text.indexOf(',', at + 4)
      if (comma === -1) return
      const t = Number(text.slice(at + 4, comma))
      if (k < MAX_EVENTS && state.publishedAt[k] === 0) state.publishedAt[k] = t
      state.latencies.push(now - t)
      k++
      pos = comma
    }
  }
}

/** Percentile of a sorted array (nearest rank). */
const at = (sorted, q) =>
  sorted.length === 0 ? null : sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]

const commands = {
  /**
   * Opens `count` connections, at most `concurrency` handshakes in flight, the i-th from
   * `addresses[i % addresses.length]`. Resolves once each has its headers or failed.
   */
  open({ port, count, addresses, concurrency, sampleEvery, timeoutMs = 900_000 }) {
    return new Promise((resolve) => {
      const handshakes = new Float64Array(count)
      const errors = {}
      let started = 0
      let ok = 0
      let failed = 0
      let finished = false
      const t0 = performance.now()
      const finish = () => {
        // After a timeout, handshakes still in flight must not start more connections.
        finished = true
        clearTimeout(timer)
        const elapsed = (performance.now() - t0) / 1000
        const sorted = handshakes.subarray(0, ok).sort()
        resolve({
          opened: ok,
          failed,
          errors,
          elapsed,
          rate: ok / elapsed,
          handshake: { p50: at(sorted, 0.5), p99: at(sorted, 0.99), max: at(sorted, 1) },
        })
      }
      const timer = setTimeout(finish, timeoutMs)
      const next = () => {
        while (!finished && started < count && started - ok - failed < concurrency) {
          const index = started++
          const begin = performance.now()
          const connection = new Connection(
            port,
            addresses[index % addresses.length],
            sampleEvery > 0 && index % sampleEvery === 0,
            () => {
              handshakes[ok++] = (performance.now() - begin) * 1000
              state.live++
              if (ok + failed === count) finish()
              else next()
            },
            (failure) => {
              failed++
              const code = failure.error ?? 'closed before headers'
              errors[code] = (errors[code] ?? 0) + 1
              if (ok + failed === count) finish()
              else next()
            },
          )
          state.sockets.push(connection)
        }
      }
      next()
    })
  },

  /** Forgets the delivery records, before a round of publishing. */
  reset() {
    state.reached.fill(0)
    state.completeAt.fill(0)
    state.publishedAt.fill(0)
    state.latencies = []
    for (const connection of state.sockets) connection.events = 0
    return { live: state.live }
  },

  /**
   * Waits until every open socket has `n` events (or `timeoutMs`, or 10 s without progress), then
   * reports per event when the last socket got it and when it was published.
   */
  async wait({ n, timeoutMs }) {
    const t0 = performance.now()
    let lastTotal = -1
    let lastProgress = t0
    for (;;) {
      if (state.completeAt[n - 1] !== 0) break
      const now = performance.now()
      const total = state.reached.subarray(0, n).reduce((sum, v) => sum + v, 0)
      if (total !== lastTotal) {
        lastTotal = total
        lastProgress = now
      }
      if (now - t0 > timeoutMs || now - lastProgress > 10_000) break
      await sleep(20)
    }
    await sleep(100) // duplicates would arrive now
    let lost = 0
    let extra = 0
    for (const connection of state.sockets) {
      if (!connection.headersDone || connection.closing) continue
      if (connection.events < n) lost += n - connection.events
      else extra += connection.events - n
    }
    const sorted = Float64Array.from(state.latencies).sort()
    return {
      live: state.live,
      dropped: state.dropped,
      lost,
      extra,
      completeAt: Array.from(state.completeAt.subarray(0, n)),
      publishedAt: Array.from(state.publishedAt.subarray(0, n)),
      latency: { samples: sorted.length, p50: at(sorted, 0.5), p99: at(sorted, 0.99), max: at(sorted, 1) },
    }
  },

  /** Sockets still open, and those the server dropped. */
  status() {
    return { live: state.live, dropped: state.dropped, rssKiB: Math.round(process.memoryUsage.rss() / 1024) }
  },

  /** Resets every socket. */
  async close() {
    for (const connection of state.sockets) {
      connection.closing = true
      if (!connection.socket.destroyed) connection.socket.resetAndDestroy()
    }
    state.sockets = []
    state.live = 0
    await sleep(100)
    return {}
  },
}

process.on('message', async ({ id, command, args }) => {
  try {
    process.send({ id, result: await commands[command](args) })
  } catch (error) {
    process.send({ id, error: error instanceof Error ? error.stack : String(error) })
  }
})
process.on('disconnect', () => process.exit(0))
process.send({ ready: true })
