/**
 * A torture-test server in a process of its own, so that its memory (RSS, heap) and its handles
 * are measured apart from the test runner and the clients.
 *
 *   node --expose-gc server.mjs '<json config>'      (started by child.ts with an IPC channel)
 *
 * Config: `{ adapter: 'express' | 'fastify', hub?: <hub options>, fastify?: <Fastify options> }`.
 * It serves `GET /events` (see app.mjs), tells the parent `{ type: 'ready', port }`, then answers
 * commands `{ id, cmd, args }` with `{ id, ok, result | error }`. Nothing happens when the IPC
 * channel closes: once the app is closed, the process must then exit by itself (no handle left).
 */
import { performance } from 'node:perf_hooks'
import { startApp } from './app.mjs'

const config = JSON.parse(process.argv[2] ?? '{}')
const app = await startApp(config.adapter, config.hub ?? {}, config.fastify ?? {})
const hub = app.hub

/** Wall-clock milliseconds with sub-millisecond resolution, comparable across processes. */
const now = () => performance.timeOrigin + performance.now()
const pad = (text, size) => (text.length >= size ? text : text + ' '.padEnd(size - text.length, 'x'))
const gc = () => {
  for (let i = 0; i < 4; i++) globalThis.gc?.()
}

let sequence = 0
/** The running background publisher, if any. */
let publisher

const commands = {
  async stats() {
    return {
      hub: hub.stats(),
      connections: await app.connections(),
      memory: process.memoryUsage(),
      resources: process.getActiveResourcesInfo(),
      serverListeners: Object.fromEntries(
        app.server.eventNames().map((name) => [String(name), app.server.listenerCount(name)]),
      ),
    }
  },

  gc() {
    gc()
    return process.memoryUsage()
  },

  /** Publishes `count` events at once; data is `<n>` padded to `size` characters. */
  publish({ stream = 's', count = 1, size = 0 }) {
    const ids = []
    for (let i = 0; i < count; i++) ids.push(hub.publish(stream, { data: pad(String(sequence++), size) }))
    return { first: ids[0], last: ids.at(-1), count: ids.length }
  },

  /**
   * Publishes `total` events, `perTick` every `tickMs`; data is `<n> <publish time>` padded to `size`.
   * Samples the hub's queued bytes at every tick (after the previous tick's flush) and every
   * millisecond in between; with `gcEveryMs`, also the live memory after a full collection.
   */
  async pace({ stream = 's', total, perTick, tickMs, size, gcEveryMs = 0 }) {
    let maxQueuedBytes = 0
    const sample = () => {
      const queued = hub.stats().queuedBytes
      if (queued > maxQueuedBytes) maxQueuedBytes = queued
    }
    const sampler = setInterval(sample, 1)
    // Live memory: what survives a full collection, sampled during the run. Garbage (the frames and
    // batches already sent) otherwise piles up until V8 decides to collect, which says nothing of
    // what the server holds on to.
    let maxLiveBytes = 0
    let maxRssAfterGc = 0
    const collect = () => {
      // Twice: buffers whose memory lives outside the V8 heap are released on the second pass.
      globalThis.gc?.()
      globalThis.gc?.()
      const memory = process.memoryUsage()
      maxLiveBytes = Math.max(maxLiveBytes, memory.heapUsed + memory.external)
      maxRssAfterGc = Math.max(maxRssAfterGc, memory.rss)
    }
    const collector = gcEveryMs > 0 ? setInterval(collect, gcEveryMs) : undefined
    const started = now()
    let first
    let last
    let published = 0
    try {
      while (published < total) {
        sample()
        for (let i = 0; i < perTick && published < total; i++, published++) {
          last = hub.publish(stream, { data: pad(`${published} ${now().toFixed(3)}`, size) })
          first ??= last
        }
        await new Promise((resolve) => setTimeout(resolve, tickMs))
      }
      await new Promise((resolve) => setTimeout(resolve, 50))
      sample()
    } finally {
      clearInterval(sampler)
      clearInterval(collector)
    }
    return { first, last, published, maxQueuedBytes, maxLiveBytes, maxRssAfterGc, elapsedMs: now() - started }
  },

  /**
   * Publishes in the background: every `tickMs`, a burst of `minBurst`..`maxBurst` events whose data
   * is their index. Stops by itself at the first error (after `close()`: `ERR_CLOSED`).
   */
  startPublisher({ stream = 's', tickMs = 10, minBurst = 1, maxBurst = 10, size = 0 }) {
    if (publisher !== undefined) throw new Error('a publisher is already running')
    const state = { ids: [], stoppedBy: undefined, timer: undefined }
    state.timer = setInterval(() => {
      const burst = minBurst + Math.floor(Math.random() * (maxBurst - minBurst + 1))
      try {
        for (let i = 0; i < burst; i++) {
          state.ids.push(hub.publish(stream, { data: pad(String(state.ids.length), size) }))
        }
      } catch (error) {
        state.stoppedBy = error?.code ?? String(error)
        clearInterval(state.timer)
      }
    }, tickMs)
    publisher = state
    return { started: true }
  },

  stopPublisher({ withIds = true } = {}) {
    const state = publisher
    if (state === undefined) throw new Error('no publisher is running')
    publisher = undefined
    clearInterval(state.timer)
    return { published: state.ids.length, ids: withIds ? state.ids : undefined, stoppedBy: state.stoppedBy }
  },

  /** Closes the app the way its users do; resolves with the time it took and what is left afterwards. */
  async close() {
    const started = now()
    // The hub's part (ending every stream), then the app's (which closes the hub again, a no-op, and
    // the server): timed apart.
    let hubMs
    void hub.close().then(() => {
      hubMs = now() - started
    })
    await app.close()
    const ms = now() - started
    // Let the publisher notice ERR_CLOSED (its next tick) before reporting.
    await new Promise((resolve) => setTimeout(resolve, 30))
    const resources = {}
    for (const type of process.getActiveResourcesInfo()) resources[type] = (resources[type] ?? 0) + 1
    return {
      ms,
      hubMs,
      publisherStoppedBy: publisher?.stoppedBy,
      hub: hub.stats(),
      listening: app.server.listening,
      resources,
    }
  },

  /** Drops the publisher's timer reference so that only the IPC channel remains. */
  forgetPublisher() {
    if (publisher !== undefined) clearInterval(publisher.timer)
    publisher = undefined
    return {}
  },
}

process.on('message', async (message) => {
  const { id, cmd, args } = message
  try {
    const command = commands[cmd]
    if (command === undefined) throw new Error(`unknown command ${cmd}`)
    const result = await command(args ?? {})
    process.send?.({ id, ok: true, result })
  } catch (error) {
    process.send?.({
      id,
      ok: false,
      error: error instanceof Error ? (error.stack ?? error.message) : String(error),
    })
  }
})

process.send?.({ type: 'ready', port: app.port, pid: process.pid, execArgv: process.execArgv })
