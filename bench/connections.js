/**
 * The connections scenario: many idle SSE connections held by @rewind/express in node:cluster
 * workers on one port, sharing one @rewind/redis history (servers/cluster.js), with the load spread
 * over several client processes (idle-client.js) and source addresses, since one process here may
 * hold only as many sockets as its open-file limit. See README.md ("Connections").
 *
 *   node connections.js [--conns=80000] [--workers=N] [--heartbeat=5000] [--idle=15000]
 *                       [--events=20] [--warmup=3] [--rate=0.5] [--concurrency=100] [--nice=10]
 *                       [--no-off] [--out=FILE] [--cpu-prof=DIR] [--server-flags=--trace-gc,...]
 *   node connections.js --conns=1000,5000,19000      (a series, one line each)
 *
 * For each size, with heartbeats on: open every connection (connect rate), read RSS (after a GC),
 * measure the workers' CPU over an idle window, publish `warmup` events, then publish `events`
 * events at `rate` per second and wait until every connection has every one (slowest delivery).
 * Then, unless --no-off, the same server with heartbeats off: open, idle window, CPU; the
 * difference is what heartbeats cost.
 */
import { mkdirSync, readdirSync, readlinkSync, writeFileSync } from 'node:fs'
import http from 'node:http'
import os from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { pathToFileURL } from 'node:url'
import { BENCH_DIR, fdLimit, startClient, startServer } from './lib/harness.js'
import { readCpuTicks, readRssKiB, ticksPerSecond } from './lib/proc.js'
import { redisCommand } from './lib/redis.js'

/** What a measurement can be told; `measure` takes these, the command line overrides the defaults. */
export const DEFAULT_SETTINGS = {
  /** Heartbeat interval of the workers, ms. */
  heartbeat: 5000,
  /** Idle window over which the workers' CPU is read, ms. */
  idleMs: 15_000,
  /** Events published in the delivery round. */
  events: 20,
  /** Events published, at the same rate, before the measured round. */
  warmup: 3,
  /**
   * Events per second in that round. One every two seconds: at 80,000 connections one event costs
   * about 1.5 s of CPU here (worker writes and the load clients' reads on the same 2 cores), so at
   * 2/s every event would queue behind the last and the round would measure the queue.
   */
  rate: 0.5,
  /** Handshakes in flight per load client. */
  concurrency: 100,
  /** Also measure with heartbeats off (the difference is what heartbeats cost). */
  off: true,
  /** Scheduling priority (nice) of the load clients; 0 runs them at the server's. */
  nice: 10,
  /** Server workers; by default as few as the open-file limit allows. */
  workers: undefined,
  /** With a directory, the primary and every worker write a CPU profile there. */
  profileDir: undefined,
  /** Node.js flags for the primary and the workers (which inherit them), e.g. `--trace-gc`. */
  serverFlags: [],
}

/** Sockets per load-client process: under the open-file limit with room for the process's own. */
const PER_CLIENT = Math.min(16_000, Math.max(1000, fdLimit - 1000))
/** Sockets per server worker, on average; round-robin may hand one worker somewhat more. */
const PER_WORKER = Math.min(16_500, Math.max(1000, fdLimit - 3500))
/** Source addresses 127.0.0.1 to 127.0.0.8: about 28,000 ephemeral ports each. */
const ADDRESSES = Array.from({ length: 8 }, (_, i) => `127.0.0.${i + 1}`)
const TICKS = ticksPerSecond()
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379'

const log = (...parts) => process.stderr.write(`${parts.join(' ')}\n`)
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
const sum = (values) => values.reduce((a, b) => a + b, 0)
const cpuSeconds = (pids) => sum(pids.map((pid) => readCpuTicks(pid))) / TICKS

/** Sockets a process holds, from /proc/<pid>/fd. */
function socketCount(pid) {
  let n = 0
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      if (readlinkSync(`/proc/${pid}/fd/${fd}`).startsWith('socket:')) n++
    } catch {
      // Closed while listing.
    }
  }
  return n
}

/** Sum of the workers' RSS in KiB, after a forced GC in each. */
async function workersRss(pids) {
  for (const pid of pids) process.kill(pid, 'SIGUSR2')
  // Two full collections of heaps that hold thousands of connections, in several workers on 2
  // cores: they must be over before RSS is read, and before an idle window starts.
  await sleep(2000)
  return sum(pids.map(readRssKiB))
}

function post(port, path) {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port, method: 'POST', path, agent: false, headers: { 'content-length': 0 } },
      (res) => {
        let body = ''
        res.setEncoding('utf8')
        res.on('data', (chunk) => {
          body += chunk
        })
        res.on('end', () => (res.statusCode === 200 ? resolve(JSON.parse(body)) : reject(new Error(body))))
      },
    )
    req.on('error', reject)
    req.end()
  })
}

/** Starts the cluster server and `clients` load clients, runs `body`, and stops them all. */
async function withSetup(conns, heartbeat, settings, body) {
  const workers = settings.workers ?? (conns <= 19_000 ? 1 : Math.ceil(conns / PER_WORKER))
  const clientCount = Math.ceil(conns / PER_CLIENT)
  const prefix = `rewind-bench-conns-${process.pid}-${Date.now().toString(36)}:`
  const server = await startServer('cluster', {
    core: null,
    // Workers inherit the flags: each writes its own profile when it exits.
    nodeFlags: [
      ...settings.serverFlags,
      ...(settings.profileDir === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${settings.profileDir}`]),
    ],
    env: {
      BENCH_WORKERS: String(workers),
      BENCH_HEARTBEAT: String(heartbeat),
      BENCH_REDIS_PREFIX: prefix,
      // Above the most a worker is given (19,000 for one worker), under the open-file limit.
      BENCH_MAX_CONNECTIONS: String(Math.max(1000, fdLimit - 400)),
    },
    timeoutMs: 60_000,
  })
  const pids = /workers ([\d,]+)/.exec(server.stdout())[1].split(',').map(Number)
  const clients = []
  try {
    for (let i = 0; i < clientCount; i++) {
      const client = await startClient({}, { script: 'idle-client.js', core: null })
      clients.push(client)
      // The load clients stand in for browsers on other machines: on this box they share the cores
      // with the server, and at equal priority each burst of deliveries wakes them to preempt the
      // workers mid fan-out. Behind the workers, they read what is written once the workers yield.
      if (settings.nice !== 0) os.setPriority(client.pid, settings.nice)
    }
    return await body({ server, pids, clients, workers })
  } finally {
    await Promise.all(clients.map((client) => client.call('close', {}).catch(() => {})))
    await Promise.all(clients.map((client) => client.stop()))
    await server.stop()
    await redisCommand(REDIS_URL, 'DEL', `${prefix}s`).catch(() => {})
    const said = server.stderr().trim()
    if (said) log(`  server said: ${said.split('\n').slice(0, 3).join(' | ')}`)
  }
}

/** Opens `conns` connections spread over the clients; connect rate, and sockets per worker. */
async function openAll({ server, pids, clients }, conns, settings) {
  const share = (i) => Math.floor(conns / clients.length) + (i < conns % clients.length ? 1 : 0)
  const primaryCpu = cpuSeconds([server.pid])
  const workersCpu = cpuSeconds(pids)
  const t0 = performance.now()
  const opened = await Promise.all(
    clients.map((client, i) =>
      client.call('open', {
        port: server.port,
        count: share(i),
        // Each client its own rotation of the addresses, so every address carries an equal share.
        addresses: ADDRESSES.map((_, k) => ADDRESSES[(k + i) % ADDRESSES.length]),
        concurrency: settings.concurrency,
        sampleEvery: 100,
      }),
    ),
  )
  const elapsed = (performance.now() - t0) / 1000
  const ok = sum(opened.map((o) => o.opened))
  const errors = {}
  for (const o of opened)
    for (const [code, n] of Object.entries(o.errors)) errors[code] = (errors[code] ?? 0) + n
  return {
    opened: ok,
    failed: sum(opened.map((o) => o.failed)),
    errors,
    elapsed,
    rate: ok / elapsed,
    ratePerWorker: ok / elapsed / pids.length,
    handshakeP99Ms: Math.max(...opened.map((o) => o.handshake.p99 ?? 0)) / 1000,
    primaryCpuPerConnMicros: ((cpuSeconds([server.pid]) - primaryCpu) / ok) * 1e6,
    workersCpuPerConnMicros: ((cpuSeconds(pids) - workersCpu) / ok) * 1e6,
    socketsPerWorker: pids.map(socketCount),
  }
}

/** Workers' CPU over an idle window, in seconds. */
async function idleCpu(pids, settings) {
  const before = cpuSeconds(pids)
  await sleep(settings.idleMs)
  return cpuSeconds(pids) - before
}

/** Publishes `events` at `rate` per second and waits for every connection to have each. */
async function publishRound({ server, pids, clients }, conns, { events: EVENTS, rate: RATE, warmup }) {
  /** Publishes `n` events at RATE and resolves with each load process's record of them. */
  const publishAndWait = async (n) => {
    await Promise.all(clients.map((client) => client.call('reset', {})))
    const timeoutMs = 60_000 + (n / RATE) * 1000
    const waiting = Promise.all(clients.map((client) => client.call('wait', { n, timeoutMs })))
    await post(server.port, `/publish?n=${n}&size=128&mode=rate&rate=${RATE}`)
    return waiting
  }
  // A warm-up round on the same connections first, as the fan-out scenarios of run.js have: the first
  // events after a long idle window are not what a stream that is in use delivers (in two runs
  // without it, the first events of the round took 0.98 s and 2.7 s, the rest 0.7-1.0 s both times).
  if (warmup > 0) await publishAndWait(warmup)
  const cpuBefore = cpuSeconds(pids)
  const rounds = await publishAndWait(EVENTS)
  // Includes heartbeat ticks that fall in the round (they skip connections that just got an event).
  const workersCpu = cpuSeconds(pids) - cpuBefore
  // Publish time of each event: every sampled socket reads the same one; take any that saw it.
  const publishedAt = Array.from({ length: EVENTS }, (_, k) => {
    const seen = rounds.map((r) => r.publishedAt[k]).filter((t) => t > 0)
    return seen.length === 0 ? null : Math.min(...seen)
  })
  const slowest = Array.from({ length: EVENTS }, (_, k) => {
    const done = rounds.map((r) => r.completeAt[k])
    if (publishedAt[k] === null || done.some((t) => t === 0)) return null
    return (Math.max(...done) - publishedAt[k]) / 1000
  })
  const complete = slowest.filter((ms) => ms !== null)
  return {
    connections: sum(rounds.map((r) => r.live)),
    expected: conns * EVENTS,
    lost: sum(rounds.map((r) => r.lost)),
    extra: sum(rounds.map((r) => r.extra)),
    dropped: sum(rounds.map((r) => r.dropped)),
    workersCpu,
    cpuPerDeliveryMicros: (workersCpu / Math.max(1, conns * EVENTS)) * 1e6,
    slowestMs: complete.length === EVENTS ? Math.max(...complete) : null,
    slowestPerEventMs: slowest,
    sampledP50Ms: Math.max(...rounds.map((r) => r.latency.p50 ?? 0)) / 1000,
    sampledP99Ms: Math.max(...rounds.map((r) => r.latency.p99 ?? 0)) / 1000,
  }
}

/**
 * Measures `conns` idle connections: opened with heartbeats on (connect rate, RSS, idle CPU, a round
 * of deliveries), then, unless `settings.off` is false, again with heartbeats off (idle CPU).
 */
export async function measure(conns, overrides = {}) {
  const settings = { ...DEFAULT_SETTINGS, ...overrides }
  for (const key of ['heartbeat', 'idleMs', 'events', 'warmup', 'rate', 'concurrency', 'nice']) {
    if (!Number.isFinite(settings[key])) throw new Error(`connections: ${key} must be a number`)
  }
  if (settings.workers !== undefined && !(Number.isInteger(settings.workers) && settings.workers > 0))
    throw new Error('connections: workers must be a positive integer')
  const { heartbeat: HEARTBEAT, idleMs: IDLE_MS, events: EVENTS, rate: RATE } = settings
  log(`[connections ${conns}] heartbeats every ${HEARTBEAT} ms`)
  const on = await withSetup(conns, HEARTBEAT, settings, async (setup) => {
    const rssBefore = await workersRss(setup.pids)
    const connect = await openAll(setup, conns, settings)
    log(
      `  opened ${connect.opened} (failed ${connect.failed}${connect.failed ? ` ${JSON.stringify(connect.errors)}` : ''}) in ${connect.elapsed.toFixed(1)} s: ${connect.rate.toFixed(0)}/s, ${setup.pids.length} worker(s) holding ${connect.socketsPerWorker.join(', ')} sockets`,
    )
    await sleep(1000)
    const rssAfter = await workersRss(setup.pids)
    log(`  RSS ${(rssBefore / 1024).toFixed(0)} -> ${(rssAfter / 1024).toFixed(0)} MiB`)
    const cpu = await idleCpu(setup.pids, settings)
    log(`  idle ${IDLE_MS} ms with heartbeats: workers ${cpu.toFixed(2)} s CPU`)
    const round = await publishRound(setup, connect.opened, settings)
    log(
      `  ${EVENTS} events at ${RATE}/s to ${round.connections}: slowest ${round.slowestMs?.toFixed(0) ?? '-'} ms, lost ${round.lost}, extra ${round.extra}, dropped ${round.dropped}; workers ${round.workersCpu.toFixed(2)} s CPU (${round.cpuPerDeliveryMicros.toFixed(1)} µs per delivery)`,
    )
    return {
      workers: setup.pids.length,
      clients: setup.clients.length,
      connect,
      rssBefore,
      rssAfter,
      cpu,
      round,
    }
  })
  let off
  if (settings.off) {
    off = await withSetup(conns, 0, settings, async (setup) => {
      const connect = await openAll(setup, conns, settings)
      await sleep(1000)
      // As with heartbeats on: the same forced GC right before the idle window, so that what the
      // two windows differ by is the heartbeats, not the garbage left from connecting.
      await workersRss(setup.pids)
      const cpu = await idleCpu(setup.pids, settings)
      log(`  heartbeats off: opened ${connect.opened}; idle workers ${cpu.toFixed(2)} s CPU`)
      return { connect, cpu }
    })
  }
  const conn = on.connect.opened
  const ticks = IDLE_MS / HEARTBEAT
  const heartbeatCpu = off === undefined ? null : on.cpu - off.cpu
  return {
    conns,
    settings,
    ...on,
    off,
    kibPerConn: on.rssAfter / conn,
    kibPerConnAdded: (on.rssAfter - on.rssBefore) / conn,
    // CPU of one heartbeat tick per 10,000 connections, and the share of a core at this interval.
    heartbeatMsPerTickPer10k:
      heartbeatCpu === null ? null : ((heartbeatCpu / ticks) * 1000) / (conn / 10_000),
    heartbeatCorePer10k: heartbeatCpu === null ? null : heartbeatCpu / (IDLE_MS / 1000) / (conn / 10_000),
  }
}

const fmt = (v, d = 1) => (v === null || v === undefined ? '-' : Number(v).toFixed(d))

function table(results) {
  const events = results[0]?.settings.events
  const lines = [
    `| connections | workers | load clients | connect rate | per worker | KiB/conn (RSS / conns) | KiB/conn (added) | heartbeat CPU per tick per 10k | slowest of ${events} events | sampled p99 | lost |`,
    '| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ]
  for (const r of results) {
    lines.push(
      `| ${r.connect.opened.toLocaleString('en-US')} | ${r.workers} | ${r.clients} | ${fmt(r.connect.rate, 0)}/s | ${fmt(r.connect.ratePerWorker, 0)}/s | ${fmt(r.kibPerConn)} | ${fmt(r.kibPerConnAdded)} | ${fmt(r.heartbeatMsPerTickPer10k)} ms | ${fmt(r.round.slowestMs, 0)} ms | ${fmt(r.round.sampledP99Ms, 0)} ms | ${r.round.lost} |`,
    )
  }
  return lines.join('\n')
}

/** The command line: `--name=value` pairs over DEFAULT_SETTINGS, sizes from --conns. */
function parseArgs(argv) {
  const args = Object.fromEntries(
    argv.map((arg) => {
      // Split at the first '=' only: a value may hold more (--server-flags=--max-semi-space-size=64).
      const [key, ...value] = arg.replace(/^--/, '').split('=')
      return [key, value.length === 0 ? 'true' : value.join('=')]
    }),
  )
  // Only what was given: `measure` fills in DEFAULT_SETTINGS.
  const numeric = {
    heartbeat: 'heartbeat',
    idleMs: 'idle',
    events: 'events',
    warmup: 'warmup',
    rate: 'rate',
    concurrency: 'concurrency',
    nice: 'nice',
    workers: 'workers',
  }
  const settings = {}
  for (const [setting, flag] of Object.entries(numeric)) {
    if (args[flag] !== undefined) settings[setting] = Number(args[flag])
  }
  if (args['no-off'] !== undefined) settings.off = false
  if (args['cpu-prof'] !== undefined) settings.profileDir = args['cpu-prof']
  if (args['server-flags'] !== undefined) settings.serverFlags = args['server-flags'].split(',')
  return { sizes: (args.conns ?? '80000').split(',').map(Number), out: args.out, settings }
}

async function main() {
  const { sizes, out: outArg, settings } = parseArgs(process.argv.slice(2))
  const started = new Date()
  const results = []
  for (const conns of sizes) results.push(await measure(conns, settings))
  const report = {
    date: started.toISOString(),
    durationSeconds: Math.round((Date.now() - started.getTime()) / 1000),
    machine: {
      cores: os.cpus().length,
      memoryGiB: Math.round(os.totalmem() / 2 ** 30),
      node: process.version,
    },
    fdLimit,
    load: os.loadavg(),
    settings: { ...DEFAULT_SETTINGS, ...settings },
    results,
  }
  const out =
    outArg ??
    join(BENCH_DIR, 'results', 'raw', `connections-${started.toISOString().replace(/[:.]/g, '-')}.json`)
  mkdirSync(join(out, '..'), { recursive: true })
  writeFileSync(out, `${JSON.stringify(report, null, 2)}\n`)
  process.stdout.write(`${table(results)}\n`)
  log(`wrote ${out}`)
  if (results.some((r) => r.round.lost > 0 || r.round.extra > 0 || r.connect.failed > 0)) process.exitCode = 1
}

// Run from the command line; run.js imports `measure` for its connections scenario.
if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  main().catch((error) => {
    log(error?.stack ?? String(error))
    process.exitCode = 1
  })
}
