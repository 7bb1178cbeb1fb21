/**
 * Connection setup side by side: scenario 5 of run.js (connections opened `concurrency` at a time,
 * each reset once its headers arrive, with history in the server) for servers that split the cost
 * into its parts: plain node:http, Rewind's hub on node:http, hand-written SSE on Express, and
 * @rewind/express (through its middleware, and through a route handler alone).
 *
 *   node setup.js [--servers=raw-node,rewind-node,...] [--reps=3] [--total=4000] [--concurrency=50]
 *
 * Servers run on one core and the load client on the other (as in run.js), interleaved within each
 * repetition; figures are medians, ratios are to raw-node in the same repetition. Server CPU per
 * connection (from /proc) is the steadier figure on a shared machine.
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import { join } from 'node:path'
import { readArgs } from './lib/args.js'
import { BENCH_DIR, pinSelf, startClient, startServer } from './lib/harness.js'
import { ticksPerSecond } from './lib/proc.js'
import { median } from './lib/stats.js'

const args = readArgs()
const SERVERS = (
  args.servers ?? 'raw-node,rewind-node,express-raw,rewind-express,rewind-express-route,rewind-fastify'
).split(',')
if (!SERVERS.includes('raw-node')) SERVERS.unshift('raw-node')
const REPS = Number(args.reps ?? 3)
const PLAN = {
  total: Number(args.total ?? 4000),
  concurrency: Number(args.concurrency ?? 50),
  prefill: 1000,
  warmup: 300,
}

const log = (line) => process.stderr.write(`${line}\n`)

async function main() {
  pinSelf()
  const runs = Object.fromEntries(SERVERS.map((name) => [name, []]))
  const client = await startClient({ ticks: ticksPerSecond() })
  try {
    for (let rep = 0; rep < REPS; rep++) {
      const order = SERVERS.map((_, i) => SERVERS[(i + rep) % SERVERS.length])
      for (const name of order) {
        const server = await startServer(name)
        try {
          const r = await client.call('connect', { port: server.port, ...PLAN }, server.pid)
          const cpuPerConn = (r.serverCpu / r.total) * 1e6
          runs[name][rep] = { rate: r.rate, cpuPerConn, failed: r.failed, p50: r.handshake.p50 }
          log(
            `rep ${rep + 1} ${name.padEnd(21)} ${r.rate.toFixed(0)}/s, ${cpuPerConn.toFixed(0)} µs CPU/connection`,
          )
        } finally {
          await server.stop()
        }
      }
    }
  } finally {
    await client.stop()
  }
  const rows = [
    '| server | handshakes/s | vs raw-node | server CPU per connection | vs raw-node | failed |',
    '| --- | ---: | ---: | ---: | ---: | ---: |',
  ]
  const summary = {}
  for (const name of SERVERS) {
    const list = runs[name]
    const rateRatio = median(list.map((r, i) => r.rate / runs['raw-node'][i].rate))
    const cpuRatio = median(list.map((r, i) => r.cpuPerConn / runs['raw-node'][i].cpuPerConn))
    summary[name] = {
      rate: median(list.map((r) => r.rate)),
      cpuPerConn: median(list.map((r) => r.cpuPerConn)),
      rateRatio,
      cpuRatio,
      failed: list.reduce((n, r) => n + r.failed, 0),
    }
    const s = summary[name]
    rows.push(
      `| ${name} | ${Math.round(s.rate).toLocaleString('en-US')} | ${rateRatio.toFixed(2)}× | ${s.cpuPerConn.toFixed(0)} µs | ${cpuRatio.toFixed(2)}× | ${s.failed} |`,
    )
  }
  process.stdout.write(`${rows.join('\n')}\n`)
  const dir = join(BENCH_DIR, 'results', 'raw')
  mkdirSync(dir, { recursive: true })
  const file = join(dir, `setup-${new Date().toISOString().replace(/[:.]/g, '-')}.json`)
  writeFileSync(
    file,
    `${JSON.stringify({ plan: PLAN, reps: REPS, load: os.loadavg(), runs, summary }, null, 2)}\n`,
  )
  log(`wrote ${file}`)
}

main().catch((error) => {
  log(error?.stack ?? String(error))
  process.exitCode = 1
})
