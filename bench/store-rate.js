/**
 * The shared stores side by side: Redis (@rewind/redis) and Postgres (@rewind/postgres).
 *
 *   node store-rate.js [--events=5000] [--paced=200] [--rate=50] [--stores=redis,postgres,postgres-poll]
 *
 * - Cross-process delivery: a child process watches a stream through its own store; this process
 *   appends `paced` events at `rate` per second, each carrying the time it was sent; the child reports
 *   when its store delivered each one. Both clocks are `performance.timeOrigin + performance.now()`
 *   of one machine. p50 and p99 in milliseconds. `postgres-poll` is Postgres without `LISTEN`
 *   (`listen: false`): the poll alone, every 250 ms; it is measured for delivery only.
 * - Append throughput: `events` appends of 128 B to one stream with 64 in flight, in events per
 *   second: batched (the Postgres store puts the appends waiting for one stream in one transaction;
 *   ioredis pipelines), and unbatched (Postgres with `maxBatch: 1`, one transaction per event;
 *   Redis awaiting each append before the next).
 *
 * REDIS_URL and DATABASE_URL (defaults: the local test services) say where; every run uses its own
 * key prefix and schema, deleted at the end.
 */
import { fork } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { performance } from 'node:perf_hooks'
import { fileURLToPath } from 'node:url'
import { createPostgresStore } from '@rewind/postgres'
import { createRedisStore } from '@rewind/redis'
import pg from 'pg'
import { readArgs } from './lib/args.js'
import { redisCommand } from './lib/redis.js'

const args = readArgs()
const EVENTS = Number(args.events ?? 5000)
const PACED = Number(args.paced ?? 200)
const RATE = Number(args.rate ?? 50)
const STORES = (args.stores ?? 'redis,postgres,postgres-poll').split(',')
const INFLIGHT = 64
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379'
const DATABASE_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test'
const PAYLOAD = 'x'.repeat(128)

const now = () => performance.timeOrigin + performance.now()
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

/** A store of `kind` in the namespace `space` (a Redis key prefix, or a Postgres schema). */
function open(kind, space, options = {}) {
  if (kind === 'redis')
    return createRedisStore({ redis: REDIS_URL, prefix: space, maxLen: 100_000, ...options })
  return createPostgresStore({
    connectionString: DATABASE_URL,
    schema: space,
    maxLen: 100_000,
    ...(kind === 'postgres-poll' ? { listen: false } : {}),
    ...options,
  })
}

const message = (data) => ({ event: undefined, data, value: data })

function percentile(sorted, p) {
  if (sorted.length === 0) return null
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]
}

/** The child: watches `stream` and reports the delivery time of every event. */
async function child() {
  const [, , , kind, space, stream] = process.argv
  const store = open(kind, space)
  store.attach({
    deliver: (_stream, events) => {
      const at = now()
      for (const event of events) process.send({ sent: Number(event.data.split(' ')[0]), at })
    },
    reset: () => process.send({ reset: true }),
  })
  await store.watch(stream)
  if (kind !== 'redis') while (store.mode === 'connecting') await sleep(10)
  process.send({ ready: true, mode: kind === 'redis' ? 'XREAD' : store.mode })
  process.on('message', async (message) => {
    if (message === 'stop') {
      await store.close()
      process.exit(0)
    }
  })
}

async function delivery(kind, space) {
  const stream = 'latency'
  const subscriber = fork(fileURLToPath(import.meta.url), ['--child', kind, space, stream], {
    stdio: 'inherit',
  })
  const latencies = []
  let mode
  let resets = 0
  await new Promise((resolve) => {
    subscriber.on('message', (message) => {
      if (message.ready) {
        mode = message.mode
        resolve()
      } else if (message.reset) resets++
      else latencies.push(message.at - message.sent)
    })
  })
  const store = open(kind, space)
  for (let i = 0; i < PACED; i++) {
    await store.append(stream, message(`${now()} ${PAYLOAD}`))
    await sleep(1000 / RATE)
  }
  const deadline = Date.now() + 5000
  while (latencies.length < PACED && Date.now() < deadline) await sleep(10)
  subscriber.send('stop')
  await new Promise((resolve) => subscriber.once('exit', resolve))
  await store.close()
  const sorted = [...latencies].sort((a, b) => a - b)
  return {
    mode,
    delivered: latencies.length,
    resets,
    p50: percentile(sorted, 50),
    p99: percentile(sorted, 99),
  }
}

async function throughput(kind, space, batched) {
  const store = open(kind, space, kind === 'postgres' && !batched ? { maxBatch: 1 } : {})
  const stream = `rate-${batched ? 'batched' : 'single'}`
  await store.append(stream, message('warm-up'))
  const started = performance.now()
  if (kind === 'redis' && !batched) {
    for (let i = 0; i < EVENTS; i++) await store.append(stream, message(PAYLOAD))
  } else {
    const inflight = new Set()
    for (let i = 0; i < EVENTS; i++) {
      const append = store.append(stream, message(PAYLOAD)).finally(() => inflight.delete(append))
      inflight.add(append)
      if (inflight.size >= INFLIGHT) await Promise.race(inflight)
    }
    await Promise.all(inflight)
  }
  const seconds = (performance.now() - started) / 1000
  await store.close()
  return Math.round(EVENTS / seconds)
}

async function cleanup(kind, space) {
  if (kind === 'redis') {
    for (const key of ['latency', 'rate-batched', 'rate-single']) {
      await redisCommand(REDIS_URL, 'DEL', `${space}{${key}}`).catch(() => {})
    }
    return
  }
  const client = new pg.Client({ connectionString: DATABASE_URL })
  await client.connect()
  await client.query(`DROP SCHEMA IF EXISTS "${space}" CASCADE`)
  await client.end()
}

async function main() {
  const rows = []
  for (const kind of STORES) {
    const space =
      kind === 'redis' ? `rewind-bench-store-${process.pid}:` : `bench_${randomBytes(4).toString('hex')}`
    try {
      const latency = await delivery(kind, space)
      const poll = kind === 'postgres-poll'
      const batched = poll ? null : await throughput(kind, space, true)
      const single = poll ? null : await throughput(kind, space, false)
      rows.push({ store: kind, ...latency, batched, single })
    } finally {
      await cleanup(kind, space)
    }
  }
  console.log(JSON.stringify({ events: EVENTS, paced: PACED, rate: RATE, rows }, null, 2))
  console.log('\n| store | live path | p50 ms | p99 ms | appends/s batched | appends/s one per transaction |')
  console.log('| --- | --- | ---: | ---: | ---: | ---: |')
  for (const row of rows) {
    console.log(
      `| ${row.store} | ${row.mode} | ${row.p50?.toFixed(2)} | ${row.p99?.toFixed(2)} | ${row.batched ?? '–'} | ${row.single ?? '–'} |`,
    )
  }
}

if (process.argv[2] === '--child') await child()
else await main()
