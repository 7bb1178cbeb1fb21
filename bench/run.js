/**
 * Runs the benchmark scenarios against every server, interleaved (for each repetition, each
 * server in turn), and writes RESULTS.md and results/chart.svg. See README.md.
 *
 *   node run.js [--quick] [--only=burst,paced,rate,memory,replay,connect,answer,redis,connections,micro]
 *               [--servers=raw-node,rewind-express,...] [--reps=N] [--out=DIR]
 *   node run.js --report=results/raw/results-<date>.json [--out=DIR]   (render a saved run again)
 */
import { execFileSync } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import { join, relative } from 'node:path'
import { performance } from 'node:perf_hooks'
import { measure as measureConnections } from './connections.js'
import { BENCH_DIR, fdLimit, pinning, pinSelf, startClient, startServer } from './lib/harness.js'
import { ticksPerSecond } from './lib/proc.js'
import { deletePrefixed, redisCommand } from './lib/redis.js'
import { renderChart, renderPng, renderResults } from './lib/report.js'

/** The servers, in the order they run within a repetition. */
const SERVERS = {
  'raw-node': { label: 'raw node:http', kind: 'baseline', replay: true, answers: true, packages: [] },
  'rewind-express': {
    label: '@rewind/express',
    kind: 'rewind',
    replay: true,
    answers: true,
    packages: ['@rewind/express', '@rewind/core', 'express'],
  },
  'rewind-fastify': {
    label: '@rewind/fastify',
    kind: 'rewind',
    replay: true,
    answers: true,
    packages: ['@rewind/fastify', '@rewind/core', 'fastify'],
  },
  'rewind-fetch': {
    label: '@rewind/fetch (Hono, Node)',
    kind: 'rewind',
    replay: true,
    answers: true,
    packages: ['@rewind/fetch', '@rewind/core', 'hono', '@hono/node-server'],
  },
  'better-sse': {
    label: 'better-sse (Channel)',
    kind: 'peer',
    replay: false,
    packages: ['better-sse', 'express'],
  },
  'fastify-sse': { label: '@fastify/sse', kind: 'peer', replay: true, packages: ['@fastify/sse', 'fastify'] },
  'hono-sse': {
    label: 'Hono streamSSE',
    kind: 'peer',
    replay: false,
    packages: ['hono', '@hono/node-server'],
  },
  'express-raw': {
    label: 'Express + res.write',
    kind: 'peer',
    replay: true,
    answers: true,
    packages: ['express'],
  },
  'fastify-raw': {
    label: 'Fastify + reply.raw.write',
    kind: 'peer',
    replay: true,
    answers: true,
    packages: ['fastify'],
  },
}

const FULL = {
  burst: { subs: 1000, n: 500, size: 128, sampleEvery: 10, warmup: 50, timeoutMs: 120_000 },
  paced: { subs: 1000, n: 200, size: 128, sampleEvery: 10, warmup: 20, timeoutMs: 120_000 },
  rate: { subs: 1000, n: 250, size: 128, rate: 50, sampleEvery: 1, warmup: 25, timeoutMs: 60_000 },
  memory: { conns: 5000, warmup: 200, settleMs: 1000 },
  replay: { clients: 500, history: 1000, behind: 500, timeoutMs: 60_000 },
  connect: { total: 2000, concurrency: 50, prefill: 1000, warmup: 200 },
  redis: { subs: 1000, n: 250, size: 128, rate: 50, sampleEvery: 1, warmup: 25, timeoutMs: 60_000 },
  answer: { clients: 500, tokens: 2000, timeoutMs: 60_000 },
  // The goal: a 5-event burst through Redis within 1 s and 1.2× Rewind in memory, over raw workers.
  connections: { conns: 80_000, modes: ['raw', 'memory', 'redis'], burst: 5 },
}

const QUICK = {
  burst: { subs: 200, n: 100, size: 128, sampleEvery: 5, warmup: 10, timeoutMs: 30_000 },
  paced: { subs: 200, n: 50, size: 128, sampleEvery: 5, warmup: 10, timeoutMs: 30_000 },
  rate: { subs: 200, n: 50, size: 128, rate: 50, sampleEvery: 1, warmup: 5, timeoutMs: 30_000 },
  memory: { conns: 1000, warmup: 50, settleMs: 200 },
  replay: { clients: 100, history: 200, behind: 100, timeoutMs: 30_000 },
  connect: { total: 300, concurrency: 50, prefill: 200, warmup: 50 },
  redis: { subs: 200, n: 50, size: 128, rate: 50, sampleEvery: 1, warmup: 5, timeoutMs: 30_000 },
  answer: { clients: 100, tokens: 500, timeoutMs: 30_000 },
  connections: {
    conns: 2000,
    heartbeat: 500,
    idleMs: 2000,
    events: 3,
    warmup: 1,
    rate: 2,
    modes: ['raw', 'memory', 'redis'],
    burst: 5,
  },
}

const SCENARIOS = [
  'burst',
  'paced',
  'rate',
  'memory',
  'replay',
  'connect',
  'answer',
  'redis',
  'connections',
  'micro',
]
const ALIASES = { fanout: ['burst', 'paced'], latency: ['rate'], setup: ['connect'] }

function parseArgs(argv) {
  const options = {
    quick: false,
    only: SCENARIOS,
    servers: Object.keys(SERVERS),
    reps: undefined,
    out: undefined,
  }
  for (const arg of argv) {
    const [key, value] = arg.replace(/^--/, '').split('=')
    if (key === 'quick') options.quick = true
    else if (key === 'only') options.only = value.split(',').flatMap((name) => ALIASES[name] ?? [name])
    else if (key === 'servers') options.servers = value.split(',')
    else if (key === 'reps') options.reps = Math.max(1, Number(value) || 1)
    else if (key === 'out') options.out = value
    else throw new Error(`unknown option ${arg}`)
  }
  for (const name of options.only) if (!SCENARIOS.includes(name)) throw new Error(`unknown scenario ${name}`)
  for (const name of options.servers) if (!(name in SERVERS)) throw new Error(`unknown server ${name}`)
  if (!options.servers.includes('raw-node')) options.servers.unshift('raw-node') // ratios need it
  options.reps ??= options.quick ? 1 : 3
  return options
}

const log = (...parts) => process.stderr.write(`${parts.filter(Boolean).join(' ')}\n`)
const fmt = (value, digits = 1) =>
  value === null || value === undefined ? '-' : Number(value).toFixed(digits)

/** One line of progress per measurement. */
function describe(scenario, result) {
  switch (scenario) {
    case 'burst':
    case 'paced':
      return `${fmt(result.rate / 1000)}k deliveries/s, p99 ${fmt(result.latency.p99 / 1000)} ms, server ${fmt(result.serverCpu, 2)} s CPU, client ${fmt(result.clientCpu, 2)} s, lost ${result.lost}`
    case 'rate':
      return `p50 ${fmt(result.latency.p50 / 1000, 2)} ms, p99 ${fmt(result.latency.p99 / 1000, 2)} ms, max ${fmt(result.latency.max / 1000, 2)} ms, lost ${result.lost}`
    case 'memory':
      return `${fmt(result.perConnKiB, 2)} KiB/connection (RSS ${result.before} -> ${result.after} KiB)`
    case 'replay':
    case 'answer':
      return `${fmt(result.elapsed * 1000)} ms, server ${fmt(result.serverCpu, 2)} s CPU, lost ${result.lost}`
    case 'connect':
      return `${fmt(result.rate, 0)} handshakes/s, p50 ${fmt(result.handshake.p50 / 1000, 2)} ms, failed ${result.failed}`
    default:
      return JSON.stringify(result)
  }
}

/** Runs `body` against a fresh server; failures are recorded, not fatal. */
async function measure(client, serverName, body) {
  let server
  let run
  const t0 = performance.now()
  try {
    server = await startServer(serverName)
    run = { ok: true, result: await body(server) }
  } catch (error) {
    run = { ok: false, error: firstLines(error) }
  } finally {
    await server?.stop()
    lastDuration = (performance.now() - t0) / 1000
  }
  const said = serverMessage(server)
  if (said !== undefined) run.serverLog = said
  return run
}

function firstLines(error) {
  return String(error?.message ?? error)
    .split('\n')
    .slice(0, 6)
    .join('\n')
}

/** The first line a server wrote to stderr that mentions an error (else its first line), if any. */
function serverMessage(server) {
  const text = server?.stderr().trim()
  if (!text) return undefined
  const lines = text.split('\n')
  return (lines.find((line) => /error/i.test(line)) ?? lines[0]).slice(0, 300)
}

/** Wall time of the last measurement, server start to stop (for the progress log). */
let lastDuration = 0

const SCENARIO_BODY = {
  burst: (client, sizes) => (server) =>
    client.call('fanout', { port: server.port, mode: 'burst', rate: 50, ...sizes }, server.pid),
  paced: (client, sizes) => (server) =>
    client.call('fanout', { port: server.port, mode: 'paced', rate: 50, ...sizes }, server.pid),
  rate: (client, sizes) => (server) =>
    client.call('fanout', { port: server.port, mode: 'rate', ...sizes }, server.pid),
  memory: (client, sizes) => (server) => client.call('memory', { port: server.port, ...sizes }, server.pid),
  replay: (client, sizes) => (server) => client.call('replay', { port: server.port, ...sizes }, server.pid),
  connect: (client, sizes) => (server) => client.call('connect', { port: server.port, ...sizes }, server.pid),
  answer: (client, sizes) => (server) => client.call('answer', { port: server.port, ...sizes }, server.pid),
}

/** Scenarios 1 to 5: for each repetition, each server (rotating who goes first). */
async function runServerScenario(scenario, options, sizes, ctx) {
  const servers = options.servers.filter(
    (name) =>
      (scenario !== 'replay' || SERVERS[name].replay) && (scenario !== 'answer' || SERVERS[name].answers),
  )
  const runs = Object.fromEntries(servers.map((name) => [name, []]))
  const client = await startClient(ctx)
  try {
    for (let rep = 0; rep < options.reps; rep++) {
      const order = servers.map((_, i) => servers[(i + rep) % servers.length])
      for (const name of order) {
        const run = await measure(client, name, SCENARIO_BODY[scenario](client, sizes))
        runs[name][rep] = run
        log(
          `[${scenario}] rep ${rep + 1}/${options.reps} ${name.padEnd(15)}`,
          run.ok ? describe(scenario, run.result) : `FAILED: ${run.error}`,
          `[${lastDuration.toFixed(1)} s]`,
          run.serverLog ? `\n    server said: ${run.serverLog}` : '',
        )
      }
    }
  } finally {
    await client.stop()
  }
  return runs
}

/**
 * Scenario 8: many idle connections across node:cluster workers, the load spread over several
 * processes and source addresses (connections.js): raw node:http workers, Rewind in memory and
 * Rewind sharing @rewind/redis, one after the other. Once, not per repetition: opening 80,000
 * connections takes minutes here.
 */
async function runConnectionsScenario({ conns, ...settings }) {
  // Below this, one process per 20,000 connections would not do: the run would need dozens.
  if (conns > 19_000 && fdLimit < 20_000)
    return {
      skipped: `the open-file limit (${fdLimit}) is too low for ${conns} connections in a few processes`,
    }
  const unavailable = await redisUnavailable()
  if (unavailable !== undefined) return { skipped: unavailable }
  try {
    return { ok: true, result: await measureConnections(conns, settings) }
  } catch (error) {
    log(`[connections] FAILED: ${firstLines(error)}`)
    return { ok: false, error: firstLines(error) }
  }
}

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379'

/** Why the Redis at `url` cannot be used, or undefined if it answers PING. */
async function redisUnavailable(url = REDIS_URL) {
  try {
    const pong = await redisCommand(url, 'PING')
    return pong.startsWith('+PONG') ? undefined : `Redis at ${url} answered ${pong.trim()}`
  } catch (error) {
    return `no Redis at ${url} (${error.message})`
  }
}

/** Scenario 6: two @rewind/redis instances; publish on A, subscribers on B. */
async function runRedisScenario(options, sizes, replaySizes, ctx, answerSizes) {
  const url = REDIS_URL
  try {
    const redis = await import('@rewind/redis')
    if (typeof redis.createRedisStore !== 'function')
      return { skipped: '@rewind/redis has no createRedisStore' }
  } catch (error) {
    return { skipped: `@rewind/redis cannot be loaded (${error.message.split('\n')[0]}); run pnpm build` }
  }
  const unavailable = await redisUnavailable(url)
  if (unavailable !== undefined) return { skipped: unavailable }
  const runs = []
  const client = await startClient(ctx)
  try {
    for (let rep = 0; rep < options.reps; rep++) {
      const prefix = `rewind-bench-${process.pid}-${rep}:`
      const env = { BENCH_REDIS_PREFIX: prefix, REDIS_URL: url }
      let a
      let b
      try {
        a = await startServer('rewind-redis', { env })
        b = await startServer('rewind-redis', { env })
        const latency = await client.call(
          'crossInstance',
          { port: b.port, publishPort: a.port, ...sizes },
          b.pid,
        )
        const replay = await client.call(
          'replay',
          { port: b.port, publishPort: a.port, ...replaySizes },
          b.pid,
        )
        // A streamed answer produced on A, attached to by every client on B from its start.
        const answer = await client.call(
          'answer',
          { port: b.port, publishPort: a.port, ...answerSizes },
          b.pid,
        )
        runs[rep] = { ok: true, result: { latency, replay, answer } }
      } catch (error) {
        runs[rep] = { ok: false, error: firstLines(error) }
      } finally {
        await a?.stop()
        await b?.stop()
        await deletePrefixed(url, prefix).catch((error) =>
          log(`[redis] could not delete the keys ${prefix}*: ${error.message}`),
        )
      }
      const said = serverMessage(b) ?? serverMessage(a)
      if (said !== undefined) runs[rep].serverLog = said
      const run = runs[rep]
      log(
        `[redis] rep ${rep + 1}/${options.reps}`,
        run.ok
          ? `cross-instance ${describe('rate', run.result.latency)}; replay ${describe('replay', run.result.replay)}; answer ${describe('answer', run.result.answer)}`
          : `FAILED: ${run.error}`,
        said ? `\n    server said: ${said}` : '',
      )
    }
  } finally {
    await client.stop()
  }
  return { url, runs }
}

/** The core micro-benchmarks (micro.js), in a child process on the server's core. */
function runMicro(options) {
  const args = ['micro.js', '--json', ...(options.quick ? ['--quick'] : [])]
  const command = pinning ? ['taskset', '-c', '0', process.execPath, ...args] : [process.execPath, ...args]
  try {
    const out = execFileSync(command[0], command.slice(1), {
      cwd: BENCH_DIR,
      encoding: 'utf8',
      timeout: 300_000,
    })
    return { ok: true, result: JSON.parse(out) }
  } catch (error) {
    return { ok: false, error: firstLines(error) }
  }
}

function readVersion(name) {
  try {
    return JSON.parse(readFileSync(join(BENCH_DIR, 'node_modules', name, 'package.json'), 'utf8')).version
  } catch {
    return null
  }
}

function machine() {
  let cpu = os.cpus()[0]?.model ?? 'unknown'
  try {
    const match = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))
    if (match) cpu = match[1].trim()
  } catch {
    // Not Linux: os.cpus() will do.
  }
  return {
    cpu,
    // os.cpus(), not availableParallelism(): this process may be pinned to one core by now.
    cores: os.cpus().length,
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    node: process.version,
    platform: `${os.type()} ${os.release()}`,
  }
}

function assertBuilt() {
  for (const name of ['core', 'express', 'fastify']) {
    if (!existsSync(join(BENCH_DIR, 'node_modules', '@rewind', name, 'dist', 'index.js'))) {
      throw new Error(`@rewind/${name} is not built: run pnpm build at the repository root first`)
    }
  }
}

async function main() {
  const saved = process.argv.find((arg) => arg.startsWith('--report='))
  if (saved !== undefined) {
    const out = process.argv.find((arg) => arg.startsWith('--out='))
    await rerender(saved.slice('--report='.length), out?.slice('--out='.length))
    return
  }
  const options = parseArgs(process.argv.slice(2))
  assertBuilt()
  pinSelf()
  const sizes = options.quick ? QUICK : FULL
  const ctx = { ticks: ticksPerSecond() }
  const started = new Date()
  const load = [os.loadavg()[0]]
  log(
    `bench: ${options.quick ? 'quick' : 'full'} run, ${options.reps} repetition(s), servers ${options.servers.join(', ')}`,
    pinning ? '(servers on core 0, client on core 1)' : '(not pinned: no taskset or one core)',
  )

  const results = {}
  for (const scenario of options.only) {
    if (scenario === 'redis') {
      results.redis = await runRedisScenario(options, sizes.redis, sizes.replay, ctx, sizes.answer)
      if (results.redis.skipped) log(`[redis] skipped: ${results.redis.skipped}`)
    } else if (scenario === 'connections') {
      results.connections = await runConnectionsScenario(sizes.connections)
      if (results.connections.skipped) log(`[connections] skipped: ${results.connections.skipped}`)
    } else if (scenario === 'micro') {
      log('[micro] running micro.js')
      results.micro = runMicro(options)
      if (!results.micro.ok) log(`[micro] FAILED: ${results.micro.error}`)
    } else {
      results[scenario] = await runServerScenario(scenario, options, sizes[scenario], ctx)
    }
  }
  load.push(os.loadavg()[0])

  const packages = [
    '@rewind/core',
    '@rewind/express',
    '@rewind/fastify',
    '@rewind/redis',
    'express',
    'fastify',
    'better-sse',
    '@fastify/sse',
    '@rewind/fetch',
    'hono',
    '@hono/node-server',
    'tinybench',
  ]
  const report = {
    date: started.toISOString(),
    durationSeconds: Math.round((Date.now() - started.getTime()) / 1000),
    quick: options.quick,
    reps: options.reps,
    pinned: pinning,
    fdLimit,
    load,
    machine: machine(),
    versions: Object.fromEntries(packages.map((name) => [name, readVersion(name)])),
    sizes,
    servers: Object.fromEntries(options.servers.map((name) => [name, SERVERS[name]])),
    results,
  }

  mkdirSync(join(BENCH_DIR, 'results', 'raw'), { recursive: true })
  const stamp = started.toISOString().replace(/[:.]/g, '-')
  writeFileSync(
    join(BENCH_DIR, 'results', 'raw', `results-${stamp}.json`),
    `${JSON.stringify(report, null, 2)}\n`,
  )
  const complete =
    !options.quick &&
    options.only.length === SCENARIOS.length &&
    options.servers.length === Object.keys(SERVERS).length
  await writeReport(report, complete, options.out)
  const failed = countFailures(results)
  if (failed > 0) {
    log(`bench: ${failed} measurement(s) failed; see RESULTS.md`)
    process.exitCode = 1
  }
  const lost = countLost(results)
  if (lost > 0) {
    log(`bench: ${lost} event(s) lost or duplicated; see the notes of RESULTS.md`)
    process.exitCode = 1
  }
}

/** Events lost or duplicated across every completed measurement (each must be 0). */
function countLost(results) {
  let lost = 0
  const add = (r) => {
    lost += (r?.lost ?? 0) + (r?.extra ?? 0)
  }
  for (const [scenario, value] of Object.entries(results)) {
    if (scenario === 'micro') continue
    if (scenario === 'connections') {
      // Runs from before the modes existed measured Redis alone, as the result itself.
      for (const mode of value.ok ? Object.values(value.result.modes ?? { redis: value.result }) : []) {
        add(mode.round)
        lost += mode.round.dropped + mode.connect.failed
      }
    } else if (scenario === 'redis') {
      for (const run of value.runs ?? []) if (run?.ok) for (const part of Object.values(run.result)) add(part)
    } else
      for (const runs of Object.values(value))
        for (const run of runs) {
          if (!run?.ok) continue
          add(run.result)
          // A warm-up round of replay or answers must not lose events either.
          add(run.result.cold)
        }
  }
  return lost
}

/**
 * Writes RESULTS.md and the chart: a complete run to bench/ and bench/results/, anything else
 * (quick, partial) under results/raw/, unless `out` is given.
 */
async function writeReport(report, complete, out) {
  const outDir =
    out ?? (complete ? BENCH_DIR : join(BENCH_DIR, 'results', 'raw', report.quick ? 'quick' : 'partial'))
  const chartDir = out ?? (complete ? join(BENCH_DIR, 'results') : outDir)
  mkdirSync(chartDir, { recursive: true })
  const chartPath = join(chartDir, 'chart.svg')
  const svg = renderChart(report)
  writeFileSync(chartPath, svg)
  const png = await renderPng(svg, join(chartDir, 'chart.png'))
  const resultsPath = join(outDir, 'RESULTS.md')
  writeFileSync(
    resultsPath,
    renderResults(report, {
      chart: relative(outDir, chartPath),
      png: png ? relative(outDir, join(chartDir, 'chart.png')) : undefined,
    }),
  )
  log(
    `bench: ${report.durationSeconds} s of measurements; wrote ${relative(process.cwd(), resultsPath)} and ${relative(process.cwd(), chartPath)}${png ? ' (+ chart.png)' : ''}`,
  )
}

/** `--report=<results-*.json>`: renders a saved run again (after a change to the report's format). */
async function rerender(file, out) {
  const report = JSON.parse(readFileSync(file, 'utf8'))
  // Runs from before the connections scenario existed are complete without it.
  const complete =
    !report.quick &&
    SCENARIOS.every((name) => name in report.results || name === 'connections') &&
    Object.keys(report.servers).length === Object.keys(SERVERS).length
  await writeReport(report, complete, out)
}

/** Failed measurements across scenarios (skipped ones do not count). */
function countFailures(results) {
  let failed = 0
  for (const [scenario, value] of Object.entries(results)) {
    if (scenario === 'micro' || scenario === 'connections') failed += value.ok || value.skipped ? 0 : 1
    else if (scenario === 'redis') failed += (value.runs ?? []).filter((run) => !run?.ok).length
    else for (const runs of Object.values(value)) failed += runs.filter((run) => !run?.ok).length
  }
  return failed
}

main().catch((error) => {
  log(error?.stack ?? String(error))
  process.exitCode = 1
})
