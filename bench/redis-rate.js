/**
 * Where Redis becomes the limit: the publish rate one process gets through @rewind/redis, what each
 * append and each tail read costs Redis, and how the tails of several instances batch their reads.
 *
 *   node redis-rate.js [--events=20000] [--instances=4] [--inflight=64] [--rate=N]
 *
 * `instances` hubs in this process, each with its own store (own connections, own blocking tail)
 * and one subscriber, stand for as many app instances; the first publishes `events` events of 128 B
 * with at most `inflight` appends outstanding (ioredis pipelines them), or `rate` per second
 * (then each tail read finds one event or few: the costly case for Redis). Redis's own figures come from
 * INFO (commandstats and CPU) read before and after, so other clients of the same Redis add noise.
 */
import { EventEmitter } from 'node:events'
import { performance } from 'node:perf_hooks'
import { createHub } from '@rewind/core'
import { createRedisStore } from '@rewind/redis'
import { readArgs } from './lib/args.js'
import { redisCommand } from './lib/redis.js'

const args = readArgs()
const EVENTS = Number(args.events ?? 20_000)
const INSTANCES = Number(args.instances ?? 4)
const INFLIGHT = Number(args.inflight ?? 64)
const RATE = args.rate === undefined ? undefined : Number(args.rate)
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379'
const prefix = `rewind-bench-rate-${process.pid}:`
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
const FRAME_END = Buffer.from('}\n\n')

/** A subscriber sink that counts data frames (each ends in `}\n\n`; one write holds whole frames). */
class CountingSink extends EventEmitter {
  events = 0
  writableLength = 0
  destroyed = false
  write(chunk) {
    const bytes = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength)
    for (let i = bytes.indexOf(FRAME_END); i !== -1; i = bytes.indexOf(FRAME_END, i + 3)) this.events++
    return true
  }
  end() {
    this.destroyed = true
    this.emit('close')
  }
  destroy() {
    this.end()
  }
}

/** INFO's `name:value` lines, and commandstats as { command: { calls, usec } }. */
async function info() {
  const text = (await redisCommand(REDIS_URL, 'INFO', 'all')).toString()
  const fields = Object.fromEntries(
    text
      .split('\r\n')
      .filter((line) => line.includes(':') && !line.startsWith('#'))
      .map((line) => [line.slice(0, line.indexOf(':')), line.slice(line.indexOf(':') + 1)]),
  )
  const commands = {}
  for (const [key, value] of Object.entries(fields)) {
    if (!key.startsWith('cmdstat_')) continue
    const calls = Number(/calls=(\d+)/.exec(value)?.[1] ?? 0)
    const usec = Number(/usec=(\d+)/.exec(value)?.[1] ?? 0)
    commands[key.slice(8)] = { calls, usec }
  }
  return {
    cpu: Number(fields.used_cpu_user) + Number(fields.used_cpu_sys),
    commands,
    version: fields.redis_version,
  }
}

async function main() {
  const instances = Array.from({ length: INSTANCES }, () => {
    const store = createRedisStore({ redis: REDIS_URL, prefix })
    const hub = createHub({ store, heartbeatInterval: 0 })
    const sink = new CountingSink()
    hub.subscribe('s', sink)
    return { store, hub, sink }
  })
  try {
    // Each tail's first read, and an event through every tail before measuring.
    await instances[0].hub.publish('s', { data: { warm: true } })
    const warm = Date.now()
    while (instances.some((i) => i.sink.events < 1) && Date.now() - warm < 10_000) await sleep(10)
    for (const i of instances) i.sink.events = 0

    const before = await info()
    const data = { t: 0, p: 'x'.repeat(100) }
    const t0 = performance.now()
    let sent = 0
    let acked = 0
    await new Promise((resolve, reject) => {
      const next = () => {
        if (RATE !== undefined) {
          // One at a time on an absolute schedule, so delays do not accumulate.
          if (sent >= EVENTS) return
          const due = t0 + (sent * 1000) / RATE
          sent++
          instances[0].hub.publish('s', { data }).then(() => {
            acked++
            if (acked === EVENTS) resolve()
          }, reject)
          setTimeout(next, Math.max(0, due + 1000 / RATE - performance.now()))
          return
        }
        while (sent < EVENTS && sent - acked < INFLIGHT) {
          sent++
          instances[0].hub.publish('s', { data }).then(() => {
            acked++
            if (acked === EVENTS) resolve()
            else next()
          }, reject)
        }
      }
      next()
    })
    const published = (performance.now() - t0) / 1000
    const deadline = Date.now() + 60_000
    while (instances.some((i) => i.sink.events < EVENTS) && Date.now() < deadline) await sleep(5)
    const delivered = (performance.now() - t0) / 1000
    const after = await info()

    const delta = (name) => {
      const a = after.commands[name] ?? { calls: 0, usec: 0 }
      const b = before.commands[name] ?? { calls: 0, usec: 0 }
      return { calls: a.calls - b.calls, usec: a.usec - b.usec }
    }
    const xread = delta('xread')
    const appends = delta('evalsha').calls + delta('eval').calls
    const appendUsec = delta('evalsha').usec + delta('eval').usec
    const result = {
      redis: after.version,
      events: EVENTS,
      instances: INSTANCES,
      inflight: INFLIGHT,
      publishPerSecond: EVENTS / published,
      deliveredToAllSeconds: delivered,
      received: instances.map((i) => i.sink.events),
      redisCpuSeconds: after.cpu - before.cpu,
      redisCpuPerEventMicros: ((after.cpu - before.cpu) / EVENTS) * 1e6,
      appendScript: { calls: appends, usecPerCall: appendUsec / Math.max(1, appends) },
      xread: {
        calls: xread.calls,
        perInstancePerSecond: xread.calls / INSTANCES / delivered,
        eventsPerRead: (EVENTS * INSTANCES) / Math.max(1, xread.calls),
        usecPerCall: xread.usec / Math.max(1, xread.calls),
      },
    }
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`)
  } finally {
    await Promise.all(instances.map((i) => i.hub.close().then(() => i.store.close())))
    await redisCommand(REDIS_URL, 'DEL', `${prefix}s`).catch(() => {})
  }
}

main().catch((error) => {
  process.stderr.write(`${error?.stack ?? error}\n`)
  process.exitCode = 1
})
