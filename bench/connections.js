/**
 * The connections scenario: many idle SSE connections held by node:cluster workers on one port
 * (servers/cluster.js), with the load spread over several client processes (idle-client.js) and
 * source addresses, since one process here may hold only as many sockets as its open-file limit.
 * The workers are @rewind/express sharing one @rewind/redis history (mode `redis`), or Rewind in
 * memory (`memory`) or hand-written node:http (`raw`), each worker publishing every event itself.
 * See README.md ("Connections").
 *
 *   node connections.js [--conns=80000] [--modes=redis] [--framework=express] [--workers=N]
 *                       [--heartbeat=5000] [--idle=15000] [--events=20] [--burst=1] [--warmup=3]
 *                       [--rate=0.5] [--concurrency=100] [--nice=10] [--no-off] [--out=FILE]
 *                       [--cpu-prof=DIR] [--server-flags=--trace-gc,...]
 *   node connections.js --conns=1000,5000,19000      (a series, one line each)
 *   node connections.js --modes=raw,memory,redis --burst=5   (the modes side by side, with ratios)
 *
 * For each size and mode, with heartbeats on: open every connection (connect rate), read RSS (after
 * a GC), measure the workers' CPU over an idle window, publish `warmup` rounds, then `events`
 * rounds at `rate` per second, each one `POST /publish` of `burst` events back to back, and wait
 * until every connection has every event (slowest delivery: from the request to the last
 * connection's receipt of the round's last event). Then, unless --no-off, the same server with
 * heartbeats off (for one mode: Redis if it runs): open, idle window, CPU; the difference is what
 * heartbeats cost.
 */
import { mkdirSync, readdirSync, readlinkSync, writeFileSync } from 'node:fs'
import http from 'node:http'
import os from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { pathToFileURL } from 'node:url'
import { BENCH_DIR, fdLimit, startClient, startServer } from './lib/harness.js'
import { readCpuTicks, readRssKiB, ticksPerSecond } from './lib/proc.js'
import { deletePrefixed } from './lib/redis.js'
import { median } from './lib/stats.js'

/** What a measurement can be told; `measure` takes these, the command line overrides the defaults. */
export const DEFAULT_SETTINGS = {
  /**
   * The server's workers (servers/cluster.js): `redis`, Rewind on one shared @rewind/redis history,
   * published on one worker; `memory`, Rewind in memory, every worker publishing; `raw`,
   * hand-written node:http, every worker publishing. `measure` runs each in turn.
   */
  modes: ['redis'],
  /** The framework of Rewind's workers: `express` or `fastify`. */
  framework: 'express',
  /** Heartbeat interval of the workers, ms. */
  heartbeat: 5000,
  /** Idle window over which the workers' CPU is read, ms. */
  idleMs: 15_000,
  /** Rounds measured: each one request that publishes `burst` events. */
  events: 20,
  /** Events a round publishes back to back (one `POST /publish?n=<burst>`). */
  burst: 1,
  /** Rounds before the measured ones, at the same rate, not measured. */
  warmup: 3,
  /**
   * Rounds per second. One every two seconds: at 80,000 connections one event costs about 1.5 s
   * of CPU here (worker writes and the load clients' reads on the same 2 cores), so at 2/s every
   * event would queue behind the last and the round would measure the queue.
   */
  rate: 0.5,
  /** Handshakes in flight per load client. */
  concurrency: 100,
  /**
   * Also measure with heartbeats off (the difference is what heartbeats cost): for one mode only,
   * Redis if it runs (the heartbeat is Rewind's, whatever the history), else the first.
   */
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
export const MODES = ['raw', 'memory', 'redis']
/** Most events a load client follows at once, warm-up or measured (idle-client.js preallocates them). */
const MAX_EVENTS = 1000

const log = (...parts) => process.stderr.write(`${parts.join(' ')}\n`)
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
/** Wall-clock µs on the clock the load clients and servers stamp with. */
const nowMicros = () => (performance.timeOrigin + performance.now()) * 1000
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

/** Starts the cluster server (as `mode`) and the load clients, runs `body`, and stops them all. */
async function withSetup(conns, heartbeat, mode, settings, body) {
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
      BENCH_CLUSTER_MODE: mode,
      BENCH_CLUSTER_FRAMEWORK: settings.framework,
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
    if (mode === 'redis')
      await deletePrefixed(REDIS_URL, prefix).catch((error) =>
        log(`  could not delete the Redis keys ${prefix}*: ${error.message}`),
      )
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

/**
 * Publishes `rounds` bursts at `rate` per second, each one `POST /publish` of `burst` events, on a
 * timer against absolute times (no drift, and a slow request does not delay the next). Resolves
 * with each load process's record of the events and when each request was sent (µs).
 */
async function publishAndWait({ server, clients }, rounds, { burst, rate }) {
  await Promise.all(clients.map((client) => client.call('reset', {})))
  const n = rounds * burst
  const timeoutMs = 60_000 + (rounds / rate) * 1000
  const waiting = Promise.all(clients.map((client) => client.call('wait', { n, timeoutMs })))
  const sentAt = []
  const requests = []
  const start = performance.now()
  for (let j = 0; j < rounds; j++) {
    const delay = start + (j * 1000) / rate - performance.now()
    if (delay > 0) await sleep(delay)
    sentAt.push(nowMicros())
    // Caught now: a request that fails while the next waits its turn must not be left unhandled.
    requests.push(
      post(server.port, `/publish?n=${burst}&size=128`).then(
        () => undefined,
        (error) => error,
      ),
    )
  }
  const failed = (await Promise.all(requests)).find((error) => error !== undefined)
  const records = await waiting
  if (failed !== undefined) throw failed
  return { records, sentAt }
}

/**
 * Publishes `warmup`, then `events` rounds of `burst` events at `rate` per second, and waits for
 * every connection to have each. The slowest delivery of a round runs from its request to the last
 * connection's receipt of its last event (a connection gets the events in order).
 */
async function publishRound(setup, conns, settings) {
  const { events: ROUNDS, burst: BURST, warmup } = settings
  const { pids } = setup
  const EVENTS = ROUNDS * BURST
  // A warm-up round on the same connections first, as the fan-out scenarios of run.js have: the first
  // events after a long idle window are not what a stream that is in use delivers (in two runs
  // without it, the first events of the round took 0.98 s and 2.7 s, the rest 0.7-1.0 s both times).
  if (warmup > 0) await publishAndWait(setup, warmup, settings)
  const cpuBefore = cpuSeconds(pids)
  const { records, sentAt } = await publishAndWait(setup, ROUNDS, settings)
  // Includes heartbeat ticks that fall in the round (they skip connections that just got an event).
  const workersCpu = cpuSeconds(pids) - cpuBefore
  // Publish time of each event: every sampled socket reads the same one; take any that saw it.
  const publishedAt = Array.from({ length: EVENTS }, (_, k) => {
    const seen = records.map((r) => r.publishedAt[k]).filter((t) => t > 0)
    return seen.length === 0 ? null : Math.min(...seen)
  })
  /** When the last connection got event k (µs), null if some connection never did. */
  const doneAt = Array.from({ length: EVENTS }, (_, k) => {
    const done = records.map((r) => r.completeAt[k])
    return done.some((t) => t === 0) ? null : Math.max(...done)
  })
  const slowestPerEvent = doneAt.map((done, k) =>
    done === null || publishedAt[k] === null ? null : (done - publishedAt[k]) / 1000,
  )
  const slowestPerRound = sentAt.map((sent, j) => {
    const last = doneAt.slice(j * BURST, (j + 1) * BURST)
    return last.some((t) => t === null) ? null : (Math.max(...last) - sent) / 1000
  })
  const complete = slowestPerRound.filter((v) => v !== null)
  const allRounds = complete.length === ROUNDS
  return {
    connections: sum(records.map((r) => r.live)),
    expected: conns * EVENTS,
    lost: sum(records.map((r) => r.lost)),
    extra: sum(records.map((r) => r.extra)),
    dropped: sum(records.map((r) => r.dropped)),
    workersCpu,
    cpuPerDeliveryMicros: (workersCpu / Math.max(1, conns * EVENTS)) * 1e6,
    // Worst and median round, from the request; null unless every round reached every connection.
    slowestMs: allRounds ? Math.max(...complete) : null,
    slowestMedianMs: allRounds ? median(complete) : null,
    slowestPerRoundMs: slowestPerRound,
    // From each event's own publish time, stamped by the worker that made it.
    slowestPerEventMs: slowestPerEvent,
    // From the request being sent to the worker stamping the round's first event.
    requestToPublishMs: median(
      sentAt.map((sent, j) =>
        publishedAt[j * BURST] === null ? null : (publishedAt[j * BURST] - sent) / 1000,
      ),
    ),
    sampledP50Ms: Math.max(...records.map((r) => r.latency.p50 ?? 0)) / 1000,
    sampledP99Ms: Math.max(...records.map((r) => r.latency.p99 ?? 0)) / 1000,
  }
}

/** The settings with `overrides`, checked: a mistake should fail before minutes of connecting. */
function checkedSettings(overrides) {
  const settings = { ...DEFAULT_SETTINGS, ...overrides }
  for (const key of ['heartbeat', 'idleMs', 'events', 'warmup', 'rate', 'concurrency', 'nice']) {
    if (!Number.isFinite(settings[key])) throw new Error(`connections: ${key} must be a number`)
  }
  if (settings.workers !== undefined && !(Number.isInteger(settings.workers) && settings.workers > 0))
    throw new Error('connections: workers must be a positive integer')
  if (!(Number.isInteger(settings.burst) && settings.burst > 0))
    throw new Error('connections: burst must be a positive integer')
  if (Math.max(settings.events, settings.warmup) * settings.burst > MAX_EVENTS)
    throw new Error(`connections: at most ${MAX_EVENTS} events (rounds × burst) are followed at once`)
  const { modes } = settings
  if (modes.length === 0 || new Set(modes).size !== modes.length || modes.some((m) => !MODES.includes(m)))
    throw new Error(`connections: modes must be distinct, of ${MODES.join(', ')}`)
  if (!['express', 'fastify'].includes(settings.framework))
    throw new Error('connections: framework must be express or fastify')
  return settings
}

/**
 * Measures `conns` idle connections for each of `settings.modes` in turn (same size, same
 * settings), and compares their slowest deliveries: `modes[mode]` is {@link measureMode}'s result,
 * `compare` the ratios Redis / memory and memory / raw (of the median round and of the worst).
 */
export async function measure(conns, overrides = {}) {
  const settings = checkedSettings(overrides)
  // Heartbeats off once: what a tick costs is Rewind's, whatever holds the history.
  const offMode = settings.modes.includes('redis') ? 'redis' : settings.modes[0]
  const modes = {}
  for (const mode of settings.modes)
    modes[mode] = await measureMode(conns, mode, { ...settings, off: settings.off && mode === offMode })
  return { conns, settings, modes, compare: compareModes(modes) }
}

/** Ratios of the slowest deliveries, median round and worst round: null where a mode is missing. */
function compareModes(modes) {
  const ratioOf = (a, b, stat) => {
    const x = modes[a]?.round[stat]
    const y = modes[b]?.round[stat]
    return x == null || y == null || y === 0 ? null : x / y
  }
  return {
    redisOverMemory: {
      median: ratioOf('redis', 'memory', 'slowestMedianMs'),
      max: ratioOf('redis', 'memory', 'slowestMs'),
    },
    memoryOverRaw: {
      median: ratioOf('memory', 'raw', 'slowestMedianMs'),
      max: ratioOf('memory', 'raw', 'slowestMs'),
    },
  }
}

/**
 * Measures `conns` idle connections on the server as `mode`: opened with heartbeats on (connect
 * rate, RSS, idle CPU, a round of deliveries), then, if `settings.off`, again with heartbeats off
 * (idle CPU).
 */
async function measureMode(conns, mode, settings) {
  const { heartbeat: HEARTBEAT, idleMs: IDLE_MS, events: ROUNDS, burst: BURST, rate: RATE } = settings
  log(`[connections ${conns}, ${mode}] heartbeats every ${HEARTBEAT} ms`)
  const on = await withSetup(conns, HEARTBEAT, mode, settings, async (setup) => {
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
      `  ${ROUNDS} × ${BURST} event(s) at ${RATE}/s to ${round.connections}: slowest ${round.slowestMs?.toFixed(0) ?? '-'} ms (median ${round.slowestMedianMs?.toFixed(0) ?? '-'} ms), lost ${round.lost}, extra ${round.extra}, dropped ${round.dropped}; workers ${round.workersCpu.toFixed(2)} s CPU (${round.cpuPerDeliveryMicros.toFixed(1)} µs per delivery)`,
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
    off = await withSetup(conns, 0, mode, settings, async (setup) => {
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
    mode,
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

/** One row per size and mode; under it, per size, the modes' ratios. */
function table(results) {
  const { events, burst } = results[0]?.settings ?? {}
  const what = burst > 1 ? `${events} rounds of ${burst} events` : `${events} events`
  const lines = [
    `| connections | mode | workers | load clients | connect rate | per worker | KiB/conn (RSS / conns) | KiB/conn (added) | heartbeat CPU per tick per 10k | slowest of ${what} (median) | sampled p99 | lost |`,
    '| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ]
  const notes = []
  for (const { modes, compare } of results) {
    for (const r of Object.values(modes)) {
      lines.push(
        `| ${r.connect.opened.toLocaleString('en-US')} | ${r.mode} | ${r.workers} | ${r.clients} | ${fmt(r.connect.rate, 0)}/s | ${fmt(r.connect.ratePerWorker, 0)}/s | ${fmt(r.kibPerConn)} | ${fmt(r.kibPerConnAdded)} | ${fmt(r.heartbeatMsPerTickPer10k)} ms | ${fmt(r.round.slowestMs, 0)} ms (${fmt(r.round.slowestMedianMs, 0)} ms) | ${fmt(r.round.sampledP99Ms, 0)} ms | ${r.round.lost} |`,
      )
    }
    const pair = ({ median: m, max }) => `${fmt(m, 2)}× (median round), ${fmt(max, 2)}× (worst)`
    if (modes.redis && modes.memory) notes.push(`redis / memory: ${pair(compare.redisOverMemory)}`)
    if (modes.memory && modes.raw) notes.push(`memory / raw: ${pair(compare.memoryOverRaw)}`)
  }
  return [...lines, ...(notes.length > 0 ? ['', ...notes] : [])].join('\n')
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
    burst: 'burst',
  }
  const settings = {}
  for (const [setting, flag] of Object.entries(numeric)) {
    if (args[flag] !== undefined) settings[setting] = Number(args[flag])
  }
  if (args['no-off'] !== undefined) settings.off = false
  if (args.modes !== undefined) settings.modes = args.modes.split(',')
  if (args.framework !== undefined) settings.framework = args.framework
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
  const runs = results.flatMap((r) => Object.values(r.modes))
  if (runs.some((r) => r.round.lost > 0 || r.round.extra > 0 || r.connect.failed > 0)) process.exitCode = 1
}

// Run from the command line; run.js imports `measure` for its connections scenario.
if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  main().catch((error) => {
    log(error?.stack ?? String(error))
    process.exitCode = 1
  })
}
