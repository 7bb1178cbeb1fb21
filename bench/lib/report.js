/**
 * Turns a run's results into RESULTS.md and a bar chart (SVG written by hand; a PNG of it too when
 * playwright-core and a Chromium are at hand).
 */
import { existsSync } from 'node:fs'
import { writeFile } from 'node:fs/promises'
import { CHROMIUM_ARGS, CHROMIUM_PATH } from '../../scripts/chromium.js'
import { median, summarize } from './stats.js'

const BASELINE = 'raw-node'
const REWIND = ['rewind-express', 'rewind-fastify']

const COLORS = {
  'raw-node': '#6b7280',
  'rewind-express': '#c2410c',
  'rewind-fastify': '#f59e0b',
  'better-sse': '#2563eb',
  'fastify-sse': '#059669',
  'express-raw': '#7c3aed',
  'fastify-raw': '#db2777',
}

const num = (value, digits = 0) =>
  value === null || value === undefined || !Number.isFinite(value)
    ? '-'
    : Number(value).toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits })
const ms = (micros, digits = 2) =>
  micros === null || micros === undefined ? '-' : `${num(micros / 1000, digits)} ms`
/** Milliseconds as seconds, with a decimal only when needed (500 → 0.5, 5000 → 5). */
const seconds = (msValue) => num(msValue / 1000, msValue % 1000 === 0 ? 0 : 1)
const plural = (n, one, many = `${one}s`) => `${num(n)} ${n === 1 ? one : many}`
const ratio = (value) => (value === null || value === undefined ? '-' : `${num(value, 2)}×`)

/** A Markdown table; the first column is left-aligned, the others right-aligned unless `left`. */
function table(head, rows, { left = false } = {}) {
  const isLeft = (i) => i === 0 || left
  // Cells padded to their column's width, as the repository's formatter (Biome) lays tables out.
  const widths = head.map((cell, i) =>
    Math.max(3, cell.length, ...rows.map((row) => String(row[i] ?? '').length)),
  )
  const pad = (cell, i) => (isLeft(i) ? String(cell).padEnd(widths[i]) : String(cell).padStart(widths[i]))
  const line = (cells) => `| ${cells.map(pad).join(' | ')} |`
  const rule = `| ${widths.map((w, i) => (isLeft(i) ? '-'.repeat(w) : `${'-'.repeat(w - 1)}:`)).join(' | ')} |`
  return [line(head), rule, ...rows.map(line)].join('\n')
}

/** Summaries of one scenario: per server, the medians and ratios of the metrics `pickers` name. */
function scenarioSummary(report, scenario, pickers) {
  const runs = report.results[scenario]
  if (runs === undefined) return undefined
  const baseline = runs[BASELINE]
  const out = {}
  for (const [name, list] of Object.entries(runs)) {
    out[name] = { runs: list, ok: list.filter((run) => run?.ok).length }
    for (const [metric, pick] of Object.entries(pickers)) out[name][metric] = summarize(list, baseline, pick)
  }
  return out
}

const fanoutPickers = {
  rate: (r) => r.rate,
  p50: (r) => r.latency.p50,
  p99: (r) => r.latency.p99,
  max: (r) => r.latency.max,
  serverCpu: (r) => r.serverCpu,
  clientCpu: (r) => r.clientCpu,
  cpuPerDelivery: (r) => (r.delivered > 0 ? (r.serverCpu / r.delivered) * 1e6 : null),
  lost: (r) => r.lost + r.extra,
  elapsed: (r) => r.elapsed,
  share: (r) => (r.elapsed > 0 ? r.serverCpu / r.elapsed : null),
}

/** All the summaries the report and the chart use. */
export function summarizeReport(report) {
  return {
    burst: scenarioSummary(report, 'burst', fanoutPickers),
    paced: scenarioSummary(report, 'paced', fanoutPickers),
    rate: scenarioSummary(report, 'rate', fanoutPickers),
    memory: scenarioSummary(report, 'memory', {
      perConn: (r) => r.perConnKiB,
      before: (r) => r.before,
      after: (r) => r.after,
    }),
    replay: scenarioSummary(report, 'replay', {
      elapsed: (r) => r.elapsed,
      serverCpu: (r) => r.serverCpu,
      clientCpu: (r) => r.clientCpu,
      lost: (r) => r.lost + r.extra,
      cold: (r) => r.cold?.elapsed ?? null,
    }),
    answer: scenarioSummary(report, 'answer', {
      elapsed: (r) => r.elapsed,
      serverCpu: (r) => r.serverCpu,
      lost: (r) => r.lost + r.extra,
      cold: (r) => r.cold?.elapsed ?? null,
    }),
    connect: scenarioSummary(report, 'connect', {
      rate: (r) => r.rate,
      p50: (r) => r.handshake.p50,
      p99: (r) => r.handshake.p99,
      cpuPerConn: (r) => (r.serverCpu / r.total) * 1e6,
      serverCpu: (r) => r.serverCpu,
      clientCpu: (r) => r.clientCpu,
      failed: (r) => r.failed,
      elapsed: (r) => r.elapsed,
    }),
  }
}

function labelOf(report, name) {
  return report.servers[name]?.label ?? name
}

function serverOrder(report, summary) {
  return Object.keys(report.servers).filter((name) => summary?.[name] !== undefined)
}

function failuresOf(summary) {
  const out = []
  for (const [name, s] of Object.entries(summary ?? {})) {
    s.runs.forEach((run, i) => {
      if (run && !run.ok) out.push(`${name} (rep ${i + 1}): ${run.error.split('\n')[0]}`)
    })
  }
  return out
}

/**
 * A table with a row per server of a scenario's summary, in report order: the server's label, then
 * `row(s, name)` for its summary `s` under `columns`, or `failed` and empty cells where every run of
 * it failed.
 */
function serverTable(report, summary, columns, row) {
  return table(
    ['server', ...columns],
    serverOrder(report, summary).map((name) => {
      const s = summary[name]
      if (s.ok === 0) return [labelOf(report, name), 'failed', ...Array(columns.length - 1).fill('')]
      return [labelOf(report, name), ...row(s, name)]
    }),
  )
}

/** A server's figure against raw node:http's (the baseline's own is 1.00×). */
function vsBaseline(name, stat) {
  return name === BASELINE ? '1.00×' : ratio(stat.ratio)
}

/** A scenario's section: its heading, what it measures, then its table. */
function scenarioSection(heading, intro, body) {
  return [`## ${heading}`, '', intro, '', body, '']
}

function fanoutTable(report, summary) {
  return serverTable(
    report,
    summary,
    [
      'deliveries/s',
      'vs raw-node',
      'p50 latency',
      'p99 latency',
      'server CPU',
      'CPU per delivery',
      'client CPU',
      'lost',
    ],
    (s, name) => [
      num(s.rate.value),
      vsBaseline(name, s.rate),
      ms(s.p50.value, 1),
      ms(s.p99.value, 1),
      `${num(s.serverCpu.value, 2)} s`,
      `${num(s.cpuPerDelivery.value, 2)} µs`,
      `${num(s.clientCpu.value, 2)} s`,
      num(s.lost.value),
    ],
  )
}

/**
 * The hand-written SSE server on each adapter's own framework: since the framework's cost is not
 * Rewind's, replay, streamed answers and connection setup are held to it.
 */
const SAME_FRAMEWORK = { 'rewind-express': 'express-raw', 'rewind-fastify': 'fastify-raw' }

/** Servers that are hand-written code, not SSE libraries: they are not "peers" for the bars. */
const HAND_WRITTEN = new Set([BASELINE, ...Object.values(SAME_FRAMEWORK)])

/**
 * Memory per idle connection: what each adapter is held to, and the KiB it may keep above it
 * (Express keeps its own per-request state, which Rewind on Express cannot shed).
 */
const MEMORY_BAR = {
  'rewind-express': { against: 'express-raw', slackKiB: 1, bar: 'hand-written Express + 1 KiB' },
  'rewind-fastify': { against: BASELINE, slackKiB: 0, bar: 'raw node:http' },
}

/**
 * The median over repetitions of `combine(a, b)` for two servers' figures of the same repetition
 * (`values` of a metric's summary, one per repetition): their ratio unless told otherwise. Null when
 * no repetition has both.
 */
function paired(a, b, combine = (x, y) => (y === 0 ? null : x / y)) {
  if (a === undefined || b === undefined) return null
  return median(a.map((x, i) => (x == null || b[i] == null ? null : combine(x, b[i]))))
}

/** A signed figure: +1.2, −0.4. */
const signed = (value, digits) => `${value < 0 ? '−' : '+'}${num(Math.abs(value), digits)}`

/**
 * Where Rewind stands against the bar, with the margin either way. Each check gives the two figures
 * and their ratio; a bar that replaced an earlier one says which (`was ...`). A check whose other
 * server did not run is left out; `ok: null` marks a figure given for reference, with no bar.
 */
function barChecks(report, sums) {
  const checks = []
  const libraries = Object.keys(report.servers).filter(
    (name) => report.servers[name].kind === 'peer' && !HAND_WRITTEN.has(name),
  )
  for (const mode of ['burst', 'paced']) {
    const s = sums[mode]
    if (s === undefined) continue
    const raw = s[BASELINE]
    const bestPeer = libraries
      .filter((name) => s[name]?.rate.value != null)
      .sort((a, b) => s[b].rate.value - s[a].rate.value)[0]
    for (const name of REWIND) {
      const r = s[name]
      if (r?.rate.value == null) continue
      const vsRaw = r.rate.ratio
      if (raw?.rate.value != null) {
        checks.push({
          ok: vsRaw !== null && vsRaw >= 1.3,
          text: `Fan-out (${mode}) ${labelOf(report, name)}: ${num(r.rate.value)} deliveries/s vs raw-node's ${num(raw.rate.value)} = ${ratio(vsRaw)} (bar: ≥ 1.3×; was ≥ 1×); server CPU per delivery ${ratio(r.cpuPerDelivery.ratio)} raw-node's`,
        })
      }
      if (bestPeer !== undefined) {
        const peer = s[bestPeer]
        const vsPeer = r.rate.value / peer.rate.value
        checks.push({
          ok: vsPeer >= 1.5,
          text: `Fan-out (${mode}) ${labelOf(report, name)}: ${ratio(vsPeer)} the best peer library, ${labelOf(report, bestPeer)} (bar: ≥ 1.5×)${
            vsPeer >= 1.5 || mode !== 'paced'
              ? ''
              : `. Why: one event per turn is one socket write per delivery for every server, and on loopback that write's system call is most of a delivery's cost (see docs/scaling.md): server CPU per delivery ${num(r.cpuPerDelivery.value, 2)} µs against ${num(peer.cpuPerDelivery.value, 2)} µs`
          }`,
        })
      }
    }
  }
  if (sums.rate !== undefined) {
    for (const name of REWIND) {
      const r = sums.rate[name]
      if (r?.p99.value == null) continue
      const ok = r.p99.ratio !== null && r.p99.ratio <= 1
      const raw = sums.rate[BASELINE]
      checks.push({
        ok,
        text: `p99 latency at 50 events/s, ${labelOf(report, name)}: ${ms(r.p99.value)} = ${ratio(r.p99.ratio)} raw-node's (bar: ≤ 1×)${
          ok || raw?.serverCpu.value == null || r.serverCpu.value == null
            ? ''
            : `. Why: not the cost of a delivery: in the same run it used ${num(r.serverCpu.value, 2)} s of CPU against raw-node's ${num(raw.serverCpu.value, 2)} s for the same deliveries; at this rate each server is busy for most of every 20 ms, so its tail depends on when a shared machine lets it run more than on what a delivery costs`
        }`,
      })
    }
  }
  if (sums.memory !== undefined) {
    for (const name of REWIND) {
      const r = sums.memory[name]
      const { against, slackKiB, bar } = MEMORY_BAR[name]
      const other = sums.memory[against]
      if (r?.perConn.value == null || other?.perConn.value == null) continue
      const above = paired(r.perConn.values, other.perConn.values, (x, y) => x - y)
      checks.push({
        ok: above !== null && above <= slackKiB,
        text: `Memory per idle connection, ${labelOf(report, name)}: ${num(r.perConn.value, 1)} KiB vs ${labelOf(report, against)} ${num(other.perConn.value, 1)} KiB: ${above === null ? '-' : `${signed(above, 1)} KiB`}, ${ratio(paired(r.perConn.values, other.perConn.values))} (bar: ≤ ${bar}; was ≤ 1.2× raw-node's)`,
      })
    }
  }
  for (const scenario of ['replay', 'answer']) {
    const s = sums[scenario]
    if (s === undefined) continue
    const what = scenario === 'replay' ? 'Replay' : 'Streamed answer'
    for (const name of REWIND) {
      const r = s[name]
      if (r?.elapsed.value == null) continue
      const bare = s[SAME_FRAMEWORK[name]]
      if (bare?.elapsed.value != null) {
        const factor = paired(r.elapsed.values, bare.elapsed.values)
        checks.push({
          ok: factor !== null && factor <= 1,
          text: `${what}, ${labelOf(report, name)}: ${ms(r.elapsed.value * 1e6, 0)} vs ${labelOf(report, SAME_FRAMEWORK[name])} ${ms(bare.elapsed.value * 1e6, 0)} = ${ratio(factor)} (bar: ≤ 1× hand-written SSE on the same framework; was ≤ 1× hand-written node:http)`,
        })
      }
      if (r.elapsed.ratio != null) {
        checks.push({
          ok: null,
          text: `${what}, ${labelOf(report, name)}: ${ms(r.elapsed.value * 1e6, 0)} = ${ratio(r.elapsed.ratio)} hand-written node:http's (${ms(s[BASELINE].elapsed.value * 1e6, 0)}), for reference: the limit of hand-written code without a framework`,
        })
      }
    }
  }
  if (sums.replay !== undefined) {
    const peerTimes = libraries.filter((name) => sums.replay[name]?.elapsed.value != null)
    for (const name of REWIND) {
      const r = sums.replay[name]
      if (r?.elapsed.value == null) continue
      for (const peer of peerTimes) {
        const factor = sums.replay[peer].elapsed.value / r.elapsed.value
        checks.push({
          ok: factor > 1,
          text: `Replay, ${labelOf(report, name)}: ${ms(r.elapsed.value * 1e6, 0)} vs ${labelOf(report, peer)} ${ms(sums.replay[peer].elapsed.value * 1e6, 0)}: ${num(factor, 2)}× faster (bar: faster than every peer with replay)`,
        })
      }
    }
  }
  if (sums.connect !== undefined) {
    for (const name of REWIND) {
      const r = sums.connect[name]
      if (r?.cpuPerConn.value == null) continue
      const bare = sums.connect[SAME_FRAMEWORK[name]]
      if (bare?.cpuPerConn.value != null) {
        const factor = paired(r.cpuPerConn.values, bare.cpuPerConn.values)
        checks.push({
          ok: factor !== null && factor <= 1.05,
          text: `Connection setup, ${labelOf(report, name)}: ${num(r.cpuPerConn.value)} µs of server CPU per connection vs ${labelOf(report, SAME_FRAMEWORK[name])} ${num(bare.cpuPerConn.value)} µs = ${ratio(factor)} (bar: ≤ 1.05× hand-written SSE on the same framework; was ≤ 1.3× raw-node's)`,
        })
      }
      if (r.cpuPerConn.ratio != null) {
        checks.push({
          ok: null,
          text: `Connection setup, ${labelOf(report, name)}: ${num(r.cpuPerConn.value)} µs of server CPU per connection = ${ratio(r.cpuPerConn.ratio)} raw-node's (${num(sums.connect[BASELINE].cpuPerConn.value)} µs), for reference`,
        })
      }
    }
  }
  const redisRuns = report.results.redis?.runs?.filter((run) => run?.ok).map((run) => run.result)
  const memReplay = sums.replay?.['rewind-express']?.elapsed.value
  if (redisRuns?.length > 0 && memReplay != null) {
    const redisReplay = median(redisRuns.map((r) => r.replay.elapsed))
    const factor = redisReplay / memReplay
    checks.push({
      ok: factor <= 1.5,
      text: `Replay through Redis (published on A, resumed on B): ${ms(redisReplay * 1e6, 0)} vs the in-memory replay of the same run (@rewind/express) ${ms(memReplay * 1e6, 0)} = ${ratio(factor)} (bar: ≤ 1.5×)`,
    })
  }
  const connections = report.results.connections
  if (connections?.ok) checks.push(...connectionChecks(report, connections.result))
  return checks
}

/**
 * The server modes of scenario 8 that a run measured, by name (`raw`, `memory`, `redis`), in the
 * order they ran. Runs from before the modes existed measured Redis alone, as the result itself.
 */
function connectionModes(c) {
  return c.modes ?? { redis: { ...c, mode: 'redis' } }
}

/** What each mode of scenario 8 is, for a run on `framework` (Express before it was a setting). */
function modeLabel(mode, framework = 'express') {
  if (mode === 'raw') return 'raw node:http workers'
  return `@rewind/${framework} ${mode === 'redis' ? 'on Redis' : 'in memory'}`
}

/** A round's slowest delivery, worst and median: "812 ms (median 640 ms)". */
function slowestOf(round) {
  if (round.slowestMs === null) return 'not every event arrived'
  const medianMs = round.slowestMedianMs ?? null
  return `${ms(round.slowestMs * 1000, 0)}${medianMs === null ? '' : ` (median ${ms(medianMs * 1000, 0)})`}`
}

/**
 * Scenario 8 against the bar: every event to every connection in every mode; and the slowest
 * delivery through Redis within 1 s and within 1.2× Rewind in memory (median rounds), with the raw
 * workers as the floor; or, for a run of Redis alone, within 1 s.
 */
function connectionChecks(report, c) {
  const checks = []
  const modes = connectionModes(c)
  const set = c.settings
  const burst = set.burst ?? 1
  const redis = modes.redis ?? Object.values(modes)[0]
  const n = redis.connect.opened
  const events = set.events * burst
  const fine = (r) =>
    r.round.lost === 0 &&
    r.round.extra === 0 &&
    r.connect.failed === 0 &&
    r.round.dropped === 0 &&
    r.conns === r.connect.opened
  const others = Object.values(modes).filter((r) => r !== redis)
  checks.push({
    ok: Object.values(modes).every(fine),
    text: `${num(n)} idle connections (of ${num(c.conns)}) held by ${plural(redis.workers, 'node:cluster worker')} ${redis.mode === 'redis' ? 'on @rewind/redis' : `as ${modeLabel(redis.mode, set.framework)}`}, heartbeats every ${seconds(set.heartbeat)} s; every connection got every one of ${events} events: ${
      fine(redis)
        ? 'yes'
        : `no (lost ${num(redis.round.lost)}, extra ${num(redis.round.extra)}, dropped ${num(redis.round.dropped)}, failed to open ${num(redis.connect.failed)})`
    }${burst > 1 ? ` (${set.events} bursts of ${burst})` : ''}${others.map((r) => `; ${modeLabel(r.mode, set.framework)}: ${fine(r) ? 'yes' : `no (lost ${num(r.round.lost)}, extra ${num(r.round.extra)}, dropped ${num(r.round.dropped)}, failed to open ${num(r.connect.failed)})`}`).join('')}`,
  })
  const perRound = (redis.round.slowestPerRoundMs ?? redis.round.slowestPerEventMs).filter((v) => v !== null)
  const withinSecond = redis.round.slowestMs !== null && redis.round.slowestMs <= 1000
  const why = withinSecond
    ? ''
    : perRound.length === 0
      ? ''
      : `. Why: ${perRound.filter((v) => v > 1000).length} of ${perRound.length} ${burst > 1 ? 'bursts' : 'events'} took over 1 s; the median reached every connection in ${ms(median(perRound) * 1000, 0)}. The workers need about ${num((redis.round.cpuPerDeliveryMicros * burst * n) / 1e6, 1)} s of CPU per ${burst > 1 ? 'burst' : 'event'} (${num(redis.round.cpuPerDeliveryMicros, 1)} µs per delivery, most of it the kernel's loopback write) on ${report.machine.cores} cores shared with the load processes, so a pause in any worker shows (see SCALE.md)`
  const memory = modes.memory
  if (modes.redis === undefined || memory === undefined) {
    checks.push({
      ok: withinSecond,
      text: `Slowest delivery to all ${num(n)} connections: ${redis.round.slowestMs === null ? 'not every event arrived' : ms(redis.round.slowestMs * 1000, 0)} (worst of ${set.events} ${burst > 1 ? `bursts of ${burst} events` : 'events'}, one every ${num(1 / set.rate, 1)} s; bar: ≤ 1 s)${why}`,
    })
    return checks
  }
  const vsMemory = c.compare?.redisOverMemory ?? {}
  const ok = withinSecond && vsMemory.median != null && vsMemory.median <= 1.2
  const raw = modes.raw
  const floor =
    raw === undefined
      ? ''
      : `; ${modeLabel('raw')}, the floor: ${slowestOf(raw.round)}, in memory / raw = ${ratio(c.compare?.memoryOverRaw?.median)} (worst rounds ${ratio(c.compare?.memoryOverRaw?.max)})`
  checks.push({
    ok,
    text: `Slowest delivery of ${burst > 1 ? `a burst of ${burst} events` : 'an event'} to all ${num(n)} connections through Redis: ${slowestOf(redis.round)} vs ${modeLabel('memory', set.framework)} ${slowestOf(memory.round)} = ${ratio(vsMemory.median)} (median rounds; worst rounds ${ratio(vsMemory.max)})${floor} (bar: Redis ≤ 1 s and ≤ 1.2× in memory, raw workers as floor)${why}${
      ok || !withinSecond
        ? ''
        : `. Workers' CPU per delivery: ${num(redis.round.cpuPerDeliveryMicros, 1)} µs through Redis, ${num(memory.round.cpuPerDeliveryMicros, 1)} µs in memory`
    }`,
  })
  return checks
}

/** The lines of scenario 8 (bench/connections.js): one size, a column per server mode. */
function connectionsSection(c, fdLimit) {
  const set = c.settings
  const burst = set.burst ?? 1
  const modes = Object.values(connectionModes(c))
  const first = modes[0]
  const each = (pick) => modes.map((r) => pick(r))
  const heartbeat = (r) => {
    const ticks = set.idleMs / set.heartbeat
    if (r.off === undefined) return 'not measured'
    if (r.heartbeatMsPerTickPer10k == null || ticks < 2)
      return `not measured (${num(ticks, 1)} heartbeat ticks in the idle window)`
    return `${num(r.heartbeatMsPerTickPer10k)} ms per tick per 10,000 connections (workers' CPU over ${num(set.idleMs / 1000)} s idle, ${num(ticks)} ticks: ${num(r.cpu, 2)} s with heartbeats, ${num(r.off?.cpu, 2)} s without)`
  }
  const perRound = (r) =>
    (r.round.slowestPerRoundMs ?? r.round.slowestPerEventMs)
      .map((v) => (v === null ? '-' : num(v)))
      .join(', ')
  const servers = modes
    .map(
      (r) =>
        `${modeLabel(r.mode, set.framework)}${r.mode === 'redis' ? ' (one shared `@rewind/redis` history)' : ''}`,
    )
    .join(', ')
  const spread = [
    modes.some((r) => r.mode === 'redis') ? 'through Redis it reaches the other workers from there' : '',
    modes.some((r) => r.mode !== 'redis')
      ? 'in memory and raw, the primary relays it to every worker over the cluster’s IPC channel and each publishes it'
      : '',
  ]
    .filter(Boolean)
    .join('; ')
  return [
    `${servers[0].toUpperCase()}${servers.slice(1)}, each in ${plural(first.workers, 'node:cluster worker')} on one port (\`servers/cluster.js\`), heartbeats every ${seconds(set.heartbeat)} s; ` +
      `${num(c.conns)} connections opened by ${plural(first.clients, 'load process', 'load processes')} (\`idle-client.js\`) over source addresses 127.0.0.1–8, ${set.concurrency} handshakes in flight each, since one process here holds at most ${num(fdLimit)} open files. ` +
      `Then ${set.warmup ? `${plural(set.warmup, 'round')} of warm-up and ` : ''}${set.events} measured rounds, one every ${num(1 / set.rate, 1)} s, each one \`POST /publish\` of ${plural(burst, 'event')}${burst > 1 ? ' back to back' : ''} on whichever worker the primary hands it to: ${spread}. ` +
      // Runs from before the rounds were timed from their request timed each event from its publish.
      `The slowest delivery of a round runs from ${first.round.slowestPerRoundMs === undefined ? 'the event’s publish (stamped by the worker)' : 'the request'} to the last connection’s receipt of its last event. ` +
      `${modes.length > 1 ? 'The modes run one after the other, each on a fresh server with the same settings. ' : ''}Servers and load processes share the machine's cores; the load processes run at nice ${set.nice}, standing in for clients on other machines. Once per run, not per repetition.`,
    '',
    table(
      ['', ...each((r) => modeLabel(r.mode, set.framework))],
      [
        [
          'connections held',
          ...each(
            (r) =>
              `${num(r.connect.opened)} (failed ${num(r.connect.failed)}); per worker ${r.connect.socketsPerWorker.map((v) => num(v)).join(', ')}`,
          ),
        ],
        [
          'connect rate',
          ...each(
            (r) =>
              `${num(r.connect.rate)}/s (${num(r.connect.ratePerWorker)}/s per worker), p99 handshake ${ms(r.connect.handshakeP99Ms * 1000, 0)}`,
          ),
        ],
        [
          'CPU per connection while connecting',
          ...each(
            (r) =>
              `workers ${num(r.connect.workersCpuPerConnMicros)} µs, primary ${num(r.connect.primaryCpuPerConnMicros)} µs`,
          ),
        ],
        [
          'workers’ RSS',
          ...each(
            (r) =>
              `${num(r.rssBefore / 1024)} → ${num(r.rssAfter / 1024)} MiB: ${num(r.kibPerConnAdded, 1)} KiB added per connection (${num(r.kibPerConn, 1)} KiB of RSS per connection)`,
          ),
        ],
        ['heartbeat CPU', ...each(heartbeat)],
        [
          `slowest of ${set.events} ${burst > 1 ? `bursts of ${burst}` : 'events'}`,
          ...each((r) =>
            r.round.slowestMs === null
              ? 'not every event reached every connection'
              : `${slowestOf(r.round)}; per ${burst > 1 ? 'burst' : 'event'} ${perRound(r)} ms`,
          ),
        ],
        [
          'sampled latency',
          ...each(
            (r) =>
              `p50 ${ms(r.round.sampledP50Ms * 1000, 0)}, p99 ${ms(r.round.sampledP99Ms * 1000, 0)} (every 100th connection)`,
          ),
        ],
        ['workers’ CPU per delivery', ...each((r) => `${num(r.round.cpuPerDeliveryMicros, 1)} µs`)],
        [
          'lost / duplicated / dropped',
          ...each((r) => `${num(r.round.lost)} / ${num(r.round.extra)} / ${num(r.round.dropped)}`),
        ],
      ],
      { left: true },
    ),
    '',
    'The same with one worker at 1,000 to 19,000 connections, connection setup split into its parts, and Redis: [SCALE.md](SCALE.md), which a run does not rewrite.',
  ]
}

/** How replay and answers are warmed up (bench/client.js, `warmThenMeasure`). */
const WARMUP_NOTE =
  'four full-size warm-up rounds on the same server process (a server that has been running: its hot paths compiled, its heap grown to the load); the first of them, the JIT’s first pass, is the "first round (cold)" column'

/** A client above this share of its core, and busier than the server, may be what limits a run. */
const CLIENT_LIMIT = 0.7

/** Client CPU against server CPU, per scenario: was the client ever the bottleneck? */
function clientNotes(report) {
  const lines = []
  const suspects = []
  for (const scenario of ['burst', 'paced', 'rate', 'memory', 'replay', 'connect']) {
    const runs = report.results[scenario]
    if (runs === undefined) continue
    let busiest
    const ratios = []
    for (const [name, list] of Object.entries(runs)) {
      list.forEach((run, i) => {
        if (!run?.ok || !(run.result.elapsed > 0)) return
        const r = run.result
        const client = r.clientCpu / r.elapsed
        const server = r.serverCpu / r.elapsed
        if (r.serverCpu > 0) ratios.push(r.clientCpu / r.serverCpu)
        if (busiest === undefined || client > busiest.client) busiest = { name, client, server }
        if (client >= CLIENT_LIMIT && client > server) {
          suspects.push(
            `${scenario}, ${name} (rep ${i + 1}): client ${num(client * 100)}% of its core, server ${num(server * 100)}% over ${num(r.elapsed * 1000)} ms`,
          )
        }
      })
    }
    if (busiest === undefined) continue
    lines.push([
      scenario,
      `${num(busiest.client * 100)}% (${busiest.name}; server ${num(busiest.server * 100)}%)`,
      num(median(ratios), 2),
    ])
  }
  return { lines, suspects }
}

export function renderResults(report, { chart, png }) {
  const sums = summarizeReport(report)
  return [
    ...titleSection(report, { chart, png }),
    ...machineSection(report),
    ...versionsSection(report),
    ...barSection(report, sums),
    ...fanoutSection(report, sums),
    ...rateSection(report, sums),
    ...memorySection(report, sums),
    ...replaySection(report, sums),
    ...connectSection(report, sums),
    ...answerSection(report, sums),
    ...redisSection(report, sums),
    ...idleConnectionsSection(report),
    ...microSection(report),
    ...clientSection(report),
    ...notesSection(report, sums),
  ].join('\n')
}

/** The title, how the figures were made, and the chart. */
function titleSection(report, { chart, png }) {
  const out = []
  out.push('# Benchmark results')
  out.push('')
  out.push(
    `Generated by \`bench/run.js\`${report.quick ? ' (**quick run: smaller sizes, one repetition; a smoke test, not a result**)' : ''} on ${report.date.slice(0, 16).replace('T', ' ')} UTC in ${num(report.durationSeconds)} s. ` +
      `Medians of ${report.reps} repetition(s); servers interleaved (each repetition runs every server in turn), ` +
      'ratios are medians of per-repetition ratios to raw-node measured in the same repetition. See README.md for the method.',
  )
  out.push('')
  out.push(`![Main ratios](${chart})${png ? ` ([PNG](${png}))` : ''}`)
  out.push('')
  return out
}

/** The machine the run measured on. */
function machineSection(report) {
  const m = report.machine
  const out = []
  out.push('## Machine')
  out.push('')
  out.push(
    table(
      ['', ''],
      [
        ['CPU', m.cpu],
        ['cores', String(m.cores)],
        ['memory', `${m.memoryGiB} GiB`],
        ['Node.js', m.node],
        ['OS', m.platform],
        [
          'pinning',
          report.pinned
            ? 'servers on core 0, load client on core 1 (`taskset`)'
            : 'none (no `taskset` or a single core): client and server share cores',
        ],
        ['load average (1 min) at start / end', `${num(report.load[0], 2)} / ${num(report.load[1], 2)}`],
      ],
      { left: true },
    ),
  )
  out.push('')
  return out
}

/** The versions of the servers' packages. */
function versionsSection(report) {
  const out = []
  out.push('## Versions')
  out.push('')
  out.push(
    table(
      ['package', 'version'],
      Object.entries(report.versions)
        .filter(([, version]) => version !== null)
        .map(([name, version]) => [`\`${name}\``, version]),
      { left: true },
    ),
  )
  out.push('')
  return out
}

/** The bar of the project's goals, each check passed or missed (nothing without a check). */
function barSection(report, sums) {
  const out = []
  const checks = barChecks(report, sums)
  if (checks.length > 0) {
    out.push('## Against the bar')
    out.push('')
    out.push(
      "The bar's fan-out is scenario 1 as defined: 500 events published as fast as each server allows (burst), where Rewind writes what is published in one turn of the event loop to each client at once. The paced variant, one event per turn, is held to the same bar here so that coalescing cannot hide what a single delivery costs.",
    )
    out.push('')
    out.push(
      'Replay, streamed answers and connection setup are held to hand-written SSE on the same framework (Express + res.write for `@rewind/express`, Fastify + reply.raw.write for `@rewind/fastify`), so that what the framework costs is not counted as Rewind’s. ' +
        'A bar that replaced an earlier one says what it was; lines marked ℹ️ give a figure for reference, with no bar.',
    )
    out.push('')
    for (const check of checks)
      out.push(`- ${check.ok === null ? 'ℹ️' : check.ok ? '✅' : '❌'} ${check.text}`)
    out.push('')
    out.push(
      'A bar near parity can hold in one run and miss in the next on a shared virtual machine: [SCALE.md](SCALE.md) puts the key ratios of several full runs side by side.',
    )
    out.push('')
  }
  return out
}

/** 1. Fan-out: burst and paced. */
function fanoutSection(report, sums) {
  const sz = report.sizes
  const out = []
  if (sums.burst || sums.paced) {
    out.push('## 1. Fan-out')
    out.push('')
    if (sums.burst) {
      out.push(
        `**Burst**: ${num(sz.burst.subs)} subscribers, ${num(sz.burst.n)} events of ${sz.burst.size} B published in one synchronous loop ` +
          `(${num(sz.burst.subs * sz.burst.n)} deliveries per run). Throughput is deliveries over the time from the publish request to the last event received.`,
      )
      out.push('')
      out.push(fanoutTable(report, sums.burst))
      out.push('')
    }
    if (sums.paced) {
      out.push(
        `**Paced**: ${num(sz.paced.subs)} subscribers, ${num(sz.paced.n)} events of ${sz.paced.size} B, one per turn of the event loop ` +
          '(`setImmediate`), so nothing can be coalesced.',
      )
      out.push('')
      out.push(fanoutTable(report, sums.paced))
      out.push('')
    }
  }
  return out
}

/** 2. Latency at a steady rate. */
function rateSection(report, sums) {
  const sz = report.sizes
  if (!sums.rate) return []
  return scenarioSection(
    '2. Latency at a steady rate',
    `${num(sz.rate.subs)} subscribers, ${sz.rate.rate} events/s for ${num(sz.rate.n / sz.rate.rate)} s; publish-to-receive latency over every event at every subscriber. ` +
      `That is ${num(sz.rate.subs * sz.rate.rate)} deliveries/s, each event written in its own turn (nothing to coalesce): ` +
      'at the per-delivery cost of the paced fan-out, a large share of one core, so a server that is short of CPU shows it here as queueing delay.',
    serverTable(
      report,
      sums.rate,
      ['p50', 'p99', 'max', 'p99 vs raw-node', 'server CPU', 'server share of its core', 'lost'],
      (s, name) => [
        ms(s.p50.value),
        ms(s.p99.value),
        ms(s.max.value),
        vsBaseline(name, s.p99),
        `${num(s.serverCpu.value, 2)} s`,
        `${num(s.share.value * 100)}%`,
        num(s.lost.value),
      ],
    ),
  )
}

/** 3. Memory per idle connection. */
function memorySection(report, sums) {
  const sz = report.sizes
  if (!sums.memory) return []
  return scenarioSection(
    '3. Memory per idle connection',
    `Server RSS (VmRSS) with ${num(sz.memory.conns)} idle subscribers minus RSS before them (after a warm-up of ${sz.memory.warmup} connections and a forced GC on both sides), divided by ${num(sz.memory.conns)}.`,
    serverTable(
      report,
      sums.memory,
      ['KiB per connection', 'vs raw-node', 'RSS before', 'RSS after'],
      (s, name) => [
        num(s.perConn.value, 2),
        vsBaseline(name, s.perConn),
        `${num(s.before.value / 1024, 1)} MiB`,
        `${num(s.after.value / 1024, 1)} MiB`,
      ],
    ),
  )
}

/** 4. Replay. */
function replaySection(report, sums) {
  const sz = report.sizes
  if (!sums.replay && report.results.replay === undefined) return []
  const rows = Object.keys(report.servers).map((name) => {
    const s = sums.replay?.[name]
    if (s === undefined) return [labelOf(report, name), 'no replay', '', '', '', '', '']
    if (s.ok === 0) return [labelOf(report, name), 'failed', '', '', '', '', '']
    const events = sz.replay.clients * sz.replay.behind
    return [
      labelOf(report, name),
      ms(s.elapsed.value * 1e6, 0),
      vsBaseline(name, s.elapsed),
      num(events / s.elapsed.value),
      `${num(s.serverCpu.value, 2)} s`,
      s.cold.value == null ? '-' : ms(s.cold.value * 1e6, 0),
      num(s.lost.value),
    ]
  })
  return scenarioSection(
    '4. Replay',
    `${num(sz.replay.clients)} clients connect at once with \`Last-Event-ID\` ${num(sz.replay.behind)} events behind, from a history of ${num(sz.replay.history)}: ` +
      'time from opening the connections until every client has all of its events. ' +
      `Measured after ${WARMUP_NOTE}. Raw node:http and hand-written Express and Fastify keep the last 1,000 frames in a ring and write every frame after the client's id in one write (no bound per client, no gap signal, no position for a fresh client).`,
    table(
      ['server', 'time to catch up', 'vs raw-node', 'events/s', 'server CPU', 'first round (cold)', 'lost'],
      rows,
    ),
  )
}

/** 5. Connection setup. */
function connectSection(report, sums) {
  const sz = report.sizes
  if (!sums.connect) return []
  return scenarioSection(
    '5. Connection setup',
    `${num(sz.connect.total)} subscribers opened ${sz.connect.concurrency} at a time, each closed once its status line and headers arrive; history holds ${num(sz.connect.prefill)} events.`,
    serverTable(
      report,
      sums.connect,
      [
        'handshakes/s',
        'vs raw-node',
        'p50 handshake',
        'p99 handshake',
        'server CPU per connection',
        'failed',
      ],
      (s, name) => [
        num(s.rate.value),
        vsBaseline(name, s.rate),
        ms(s.p50.value),
        ms(s.p99.value),
        `${num(s.cpuPerConn.value)} µs`,
        num(s.failed.value),
      ],
    ),
  )
}

/** 5b. Streamed answers: attach and replay. */
function answerSection(report, sums) {
  const sz = report.sizes
  if (!sums.answer) return []
  return scenarioSection(
    '5b. Streamed answers (responses): attach and replay',
    `An answer of ${num(sz.answer.tokens)} tokens is produced to its end, then ${num(sz.answer.clients)} clients attach at once without a position and each gets it from its start: ` +
      `time from opening the connections until every client has every token, measured after ${WARMUP_NOTE}. Raw node:http (and hand-written Express and Fastify) keeps each answer as one buffer and writes it in one write (no bounds, no resume position, no end for late clients): the practical limit of hand-written code.`,
    serverTable(
      report,
      sums.answer,
      ['time to deliver', 'vs raw-node', 'tokens/s', 'server CPU', 'first round (cold)', 'lost'],
      (s, name) => [
        ms(s.elapsed.value * 1e6, 0),
        vsBaseline(name, s.elapsed),
        num((sz.answer.clients * sz.answer.tokens) / s.elapsed.value),
        `${num(s.serverCpu.value, 2)} s`,
        s.cold.value == null ? '-' : ms(s.cold.value * 1e6, 0),
        num(s.lost.value),
      ],
    ),
  )
}

/** 6. Redis, across instances. */
function redisSection(report, sums) {
  const sz = report.sizes
  const out = []
  const redis = report.results.redis
  if (redis !== undefined) {
    out.push('## 6. Redis (`@rewind/redis`), across instances')
    out.push('')
    if (redis.skipped) out.push(`Skipped: ${redis.skipped}.`)
    else {
      const ok = redis.runs.filter((run) => run?.ok).map((run) => run.result)
      const lat = (key) => median(ok.map((r) => r.latency.latency[key]))
      const memRate = sums.rate?.['rewind-express']
      const memReplay = sums.replay?.['rewind-express']
      out.push(
        `Two \`@rewind/express\` instances on one Redis store: events published on A (${sz.redis.rate} events/s for ${num(sz.redis.n / sz.redis.rate)} s), ` +
          `${num(sz.redis.subs)} subscribers on B; then ${num(sz.replay.clients)} clients resume ${num(sz.replay.behind)} events behind on B from ${num(sz.replay.history)} published on A. ` +
          'In-memory `@rewind/express` of the same run for reference.',
      )
      out.push('')
      const replayLost = median(ok.map((r) => r.replay.lost + r.replay.extra))
      const replayTime = median(ok.map((r) => r.replay.elapsed)) * 1e6
      const delivered = median(ok.map((r) => r.replay.delivered / r.replay.expected))
      out.push(
        table(
          ['', 'p50', 'p99', 'max', 'lost', 'replay time', 'replay server CPU (B)', 'replay lost'],
          [
            [
              'Redis, A → B',
              ms(lat('p50')),
              ms(lat('p99')),
              ms(lat('max')),
              num(median(ok.map((r) => r.latency.lost + r.latency.extra))),
              replayLost > 0
                ? `incomplete: ${num(delivered * 100)}% delivered, then no progress (stopped at ${ms(replayTime, 0)})`
                : ms(replayTime, 0),
              `${num(median(ok.map((r) => r.replay.serverCpu)), 2)} s`,
              num(replayLost),
            ],
            [
              'in memory, one instance',
              ms(memRate?.p50.value),
              ms(memRate?.p99.value),
              ms(memRate?.max.value),
              memRate ? num(memRate.lost.value) : '-',
              memReplay ? ms(memReplay.elapsed.value * 1e6, 0) : '-',
              memReplay ? `${num(memReplay.serverCpu.value, 2)} s` : '-',
              memReplay ? num(memReplay.lost.value) : '-',
            ],
          ],
        ),
      )
      const answers = ok.filter((r) => r.answer !== undefined)
      if (answers.length > 0) {
        const memAnswer = sums.answer?.['rewind-express']
        const time = median(answers.map((r) => r.answer.elapsed))
        out.push(
          '',
          `A streamed answer of ${num(sz.answer.tokens)} tokens produced on A, attached to from its start by ${num(sz.answer.clients)} clients on B: ` +
            `${ms(time * 1e6, 0)} (in memory, one instance: ${memAnswer ? ms(memAnswer.elapsed.value * 1e6, 0) : '-'}` +
            `${memAnswer ? `; ${num(time / memAnswer.elapsed.value, 2)}× that` : ''}), lost ${num(median(answers.map((r) => r.answer.lost + r.answer.extra)))}.`,
        )
      }
      const logs = redis.runs.filter((run) => run?.serverLog).map((run) => run.serverLog)
      if (logs.length > 0) out.push('', `Instance B logged: \`${logs[0]}\``)
      const failed = redis.runs.filter((run) => run && !run.ok)
      if (failed.length > 0)
        out.push('', `Failed repetitions: ${failed.map((run) => run.error.split('\n')[0]).join('; ')}`)
    }
    out.push('')
  }
  return out
}

/** 8. Idle connections across worker processes. */
function idleConnectionsSection(report) {
  const out = []
  const connections = report.results.connections
  if (connections !== undefined) {
    out.push('## 8. Idle connections across worker processes')
    out.push('')
    if (connections.skipped) out.push(`Skipped: ${connections.skipped}.`)
    else if (!connections.ok) out.push(`Failed: ${connections.error.split('\n')[0]}`)
    else out.push(...connectionsSection(connections.result, report.fdLimit))
    out.push('')
  }
  return out
}

/** The core micro-benchmarks. */
function microSection(report) {
  const out = []
  const micro = report.results.micro
  if (micro !== undefined) {
    out.push('## Core micro-benchmarks')
    out.push('')
    if (!micro.ok) out.push(`Failed: ${micro.error.split('\n')[0]}`)
    else {
      out.push('`bench/micro.js` (tinybench), on the server core.')
      out.push('')
      out.push(
        table(
          ['task', 'ops/s', 'mean', 'p99', '±'],
          micro.result.rows.map((row) => [
            row.name,
            num(row.opsPerSecond),
            `${num(row.meanNs)} ns`,
            `${num(row.p99Ns)} ns`,
            `${num(row.rme, 1)}%`,
          ]),
        ),
      )
    }
    out.push('')
  }
  return out
}

/** Whether the load client, not the server, was the bottleneck. */
function clientSection(report) {
  const out = []
  const notes = clientNotes(report)
  out.push('## Load client vs server')
  out.push('')
  if (notes.suspects.length === 0) {
    out.push(
      `The load client was not the bottleneck: in no run did it use ${CLIENT_LIMIT * 100}% of its core while busier than the server. ` +
        'Its busiest run per scenario (CPU time over the measured window), and the median ratio of its CPU time to the server’s:',
    )
  } else {
    out.push(
      `The load client was not the bottleneck except, possibly, in these runs, where it used ${CLIENT_LIMIT * 100}% or more of its core and more than the server used of its own ` +
        '(their server figures are lower bounds; in a burst that Rewind writes as one buffer per client, the client mostly copies bytes out of the kernel):',
    )
    out.push('')
    for (const suspect of notes.suspects) out.push(`- ${suspect}`)
    out.push('')
    out.push('Busiest client run per scenario, and the median ratio of client CPU time to server CPU time:')
  }
  out.push('')
  out.push(
    table(
      ['scenario', 'busiest client run (share of one core)', 'client CPU / server CPU (median)'],
      notes.lines,
    ),
  )
  out.push('')
  return out
}

/** Notes: failed measurements, lost events, servers that logged errors. */
function notesSection(report, sums) {
  const out = []
  const failures = [
    ...failuresOf(sums.burst),
    ...failuresOf(sums.paced),
    ...failuresOf(sums.rate),
    ...failuresOf(sums.memory),
    ...failuresOf(sums.replay),
    ...failuresOf(sums.connect),
    ...failuresOf(sums.answer),
  ]
  const lost = []
  const said = []
  for (const scenario of ['burst', 'paced', 'rate', 'memory', 'replay', 'connect', 'answer']) {
    for (const [name, list] of Object.entries(report.results[scenario] ?? {})) {
      list.forEach((run, i) => {
        const r = run?.ok ? run.result : undefined
        if (r !== undefined && (r.lost ?? 0) + (r.extra ?? 0) > 0)
          lost.push(`${scenario}, ${name} (rep ${i + 1}): ${r.lost} lost, ${r.extra} extra`)
        if (run?.serverLog) said.push(`${scenario}, ${name} (rep ${i + 1}): \`${run.serverLog}\``)
      })
    }
  }
  for (const [i, run] of (report.results.redis?.runs ?? []).entries()) {
    if (run?.ok) {
      for (const part of ['latency', 'replay', 'answer']) {
        const r = run.result[part]
        if (r.lost + r.extra > 0) lost.push(`redis ${part} (rep ${i + 1}): ${r.lost} lost, ${r.extra} extra`)
      }
    }
    if (run?.serverLog) said.push(`redis (rep ${i + 1}): \`${run.serverLog}\``)
  }
  out.push('## Notes')
  out.push('')
  out.push(
    '- Latency is the receive time at the client minus the publish time the server embeds in each event (`performance.timeOrigin + performance.now()` in µs on both sides: one system clock). ' +
      'In the burst, an event published early waits for the rest of the loop, as it would in an app.',
  )
  out.push(
    '- Server CPU is utime + stime from `/proc/<pid>/stat` over the measured window (10 ms ticks); client CPU is `process.cpuUsage()` of the load client.',
  )
  out.push(
    '- On a shared machine a server also waits for its core, which stretches wall-clock figures (throughput, latency) more than CPU time: ' +
      'CPU per delivery is the steadier measure of cost there, and the server’s share of its core is in the table below. ' +
      'Absolute figures drift between runs, ratios within a run much less.',
  )
  out.push(
    lost.length === 0
      ? '- No event was lost or duplicated in any run.'
      : `- **Events lost or duplicated**: ${lost.join('; ')}.`,
  )
  if (failures.length > 0) out.push(`- **Failed measurements**: ${failures.join('; ')}.`)
  if (said.length > 0) out.push(`- **Servers logged errors**: ${said.join('; ')}.`)
  out.push('')
  return out
}

// ---------------------------------------------------------------------------------------------
// Chart

function escapeXml(text) {
  return String(text).replace(
    /[<>&"]/g,
    (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;' })[c],
  )
}

/** One panel of horizontal bars; `reference` draws a dashed line at that value (1 for ratios). */
function panel({ title, subtitle, bars, format, reference }, y, width) {
  const labelWidth = 190
  const valueWidth = 90
  const barArea = width - labelWidth - valueWidth - 30
  const rowHeight = 24
  const max = Math.max(reference ?? 0, ...bars.map((bar) => bar.value ?? 0)) || 1
  const parts = []
  parts.push(`<text x="10" y="${y + 18}" class="title">${escapeXml(title)}</text>`)
  parts.push(`<text x="10" y="${y + 36}" class="sub">${escapeXml(subtitle)}</text>`)
  let row = y + 48
  for (const bar of bars) {
    const w = bar.value == null ? 0 : Math.max(1, (bar.value / max) * barArea)
    parts.push(
      `<text x="${labelWidth}" y="${row + 16}" class="label" text-anchor="end">${escapeXml(bar.label)}</text>`,
    )
    if (bar.value == null) {
      parts.push(
        `<text x="${labelWidth + 10}" y="${row + 16}" class="none">${escapeXml(bar.note ?? 'n/a')}</text>`,
      )
    } else {
      parts.push(
        `<rect x="${labelWidth + 10}" y="${row + 3}" width="${w.toFixed(1)}" height="${rowHeight - 8}" fill="${bar.color}" rx="2"/>`,
      )
      parts.push(
        `<text x="${labelWidth + 16 + w}" y="${row + 16}" class="value">${escapeXml(format(bar.value))}</text>`,
      )
    }
    row += rowHeight
  }
  if (reference !== undefined) {
    // Drawn first, so bars and their values sit on top of it.
    const x = labelWidth + 10 + (reference / max) * barArea
    parts.splice(
      2,
      0,
      `<line x1="${x.toFixed(1)}" y1="${y + 44}" x2="${x.toFixed(1)}" y2="${row}" stroke="#9ca3af" stroke-dasharray="4 3" stroke-width="1"/>`,
    )
  }
  return { svg: parts.join('\n'), height: row - y + 16 }
}

export function renderChart(report) {
  const sums = summarizeReport(report)
  const names = Object.keys(report.servers)
  const width = 820
  const bars = (summary, pick, { note } = {}) =>
    names.map((name) => ({
      label: labelOf(report, name),
      color: COLORS[name] ?? '#9ca3af',
      value: summary?.[name] && summary[name].ok > 0 ? pick(summary[name], name) : null,
      note: summary?.[name] === undefined ? note : summary[name].ok === 0 ? 'failed' : undefined,
    }))
  const ratioOf = (metric) => (s, name) => (name === BASELINE ? 1 : s[metric].ratio)
  const panels = [
    {
      title: 'Fan-out throughput, burst (× raw-node, higher is better)',
      subtitle: `${num(report.sizes.burst?.subs)} subscribers, ${num(report.sizes.burst?.n)} events in one loop`,
      bars: bars(sums.burst, (s, name) => (name === BASELINE ? 1 : s.rate.ratio)),
      format: (v) => `${num(v, 2)}×`,
      reference: 1,
      show: sums.burst !== undefined,
    },
    {
      title: 'Fan-out throughput, paced (× raw-node, higher is better)',
      subtitle: `${num(report.sizes.paced?.subs)} subscribers, one event per event-loop turn`,
      bars: bars(sums.paced, (s, name) => (name === BASELINE ? 1 : s.rate.ratio)),
      format: (v) => `${num(v, 2)}×`,
      reference: 1,
      show: sums.paced !== undefined,
    },
    {
      title: 'p99 latency at 50 events/s (× raw-node, lower is better)',
      subtitle: `${num(report.sizes.rate?.subs)} subscribers`,
      bars: bars(sums.rate, ratioOf('p99')),
      format: (v) => `${num(v, 2)}×`,
      reference: 1,
      show: sums.rate !== undefined,
    },
    {
      title: 'Memory per idle connection (× raw-node, lower is better)',
      subtitle: `${num(report.sizes.memory?.conns)} idle connections`,
      bars: bars(sums.memory, ratioOf('perConn')),
      format: (v) => `${num(v, 2)}×`,
      reference: 1,
      show: sums.memory !== undefined,
    },
    {
      title: 'Replay: time until every client has caught up (ms, lower is better)',
      subtitle: `${num(report.sizes.replay?.clients)} clients, ${num(report.sizes.replay?.behind)} events behind`,
      bars: bars(sums.replay, (s) => s.elapsed.value * 1000, { note: 'no replay' }),
      format: (v) => `${num(v)} ms`,
      show: report.results.replay !== undefined,
    },
  ].filter((p) => p.show)
  let y = 40
  const body = []
  for (const p of panels) {
    const drawn = panel(p, y, width)
    body.push(drawn.svg)
    y += drawn.height
  }
  const header = `Rewind benchmarks: ${report.quick ? 'quick run, ' : ''}${report.machine.cores} cores, Node ${report.machine.node}, ${report.date.slice(0, 10)}`
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${y + 10}" viewBox="0 0 ${width} ${y + 10}" role="img" aria-labelledby="chart-title" font-family="system-ui, -apple-system, 'Segoe UI', sans-serif">
<title id="chart-title">${escapeXml(`${header}: fan-out throughput, p99 latency and memory per connection relative to raw node:http, and replay time`)}</title>
<style>
.title { font-size: 14px; font-weight: 600; fill: #111827; }
.sub { font-size: 11px; fill: #6b7280; }
.label { font-size: 12px; fill: #1f2937; }
.value { font-size: 12px; fill: #111827; paint-order: stroke; stroke: #ffffff; stroke-width: 3px; }
.none { font-size: 12px; fill: #9ca3af; font-style: italic; }
.head { font-size: 16px; font-weight: 700; fill: #111827; }
</style>
<rect width="100%" height="100%" fill="#ffffff"/>
<text x="10" y="24" class="head">${escapeXml(header)}</text>
${body.join('\n')}
</svg>
`
}

/** Renders the SVG to a PNG with playwright-core and a system Chromium; false if either is missing. */
export async function renderPng(svg, path) {
  const executablePath = [CHROMIUM_PATH, '/usr/bin/chromium-browser'].find((p) => existsSync(p))
  if (executablePath === undefined) return false
  let chromium
  try {
    ;({ chromium } = await import('playwright-core'))
  } catch {
    return false
  }
  let browser
  try {
    browser = await chromium.launch({
      executablePath,
      args: [...CHROMIUM_ARGS],
    })
    const page = await browser.newPage({ deviceScaleFactor: 1.5 })
    await page.setContent(`<!doctype html><html><body style="margin:0">${svg}</body></html>`)
    const buffer = await page.locator('svg').screenshot()
    await writeFile(path, buffer)
    return true
  } catch {
    return false
  } finally {
    await browser?.close().catch(() => {})
  }
}
