/**
 * Where a server spends its time during fan-out: runs it under `node --cpu-prof` through the burst
 * and paced fan-out of run.js (several rounds, so connection setup weighs little), then lists the
 * functions with the most self time. Profiles go to results/raw/profiles/ (open them in Chrome
 * DevTools or speedscope for the full picture).
 *
 * Modes `replay` and `answer` profile scenarios 4 and 7 of run.js, twice each (each time with its four
 * warm-up rounds, so ten rounds in all).
 *
 * Mode `connect` profiles connection setup instead (scenario 5 of run.js, more connections), and
 * also sums self time by package, so that framework, Rewind and Node's own HTTP layer can be told
 * apart; `rewind-node` (the hub on plain node:http) separates Rewind's part from Express's.
 *
 *   node profile.js [--servers=rewind-express,raw-node] [--modes=burst,paced] [--top=20]
 *   node profile.js --modes=connect --servers=raw-node,rewind-node,express-raw,rewind-express
 */
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join, relative } from 'node:path'
import { readArgs } from './lib/args.js'
import { BENCH_DIR, pinSelf, startClient, startServer } from './lib/harness.js'
import { ticksPerSecond } from './lib/proc.js'

const args = readArgs()
const servers = (args.servers ?? 'rewind-express,raw-node').split(',')
const modes = (args.modes ?? 'burst,paced').split(',')
const top = Number(args.top ?? 20)

const PLANS = {
  burst: { subs: 1000, n: 500, size: 128, mode: 'burst', rate: 50, sampleEvery: 50, warmup: 50, repeat: 30 },
  paced: { subs: 1000, n: 300, size: 128, mode: 'paced', rate: 50, sampleEvery: 50, warmup: 20, repeat: 2 },
  connect: { command: 'connect', total: 6000, concurrency: 50, prefill: 1000, warmup: 500 },
  replay: { command: 'replay', clients: 500, history: 1000, behind: 500, rounds: 2 },
  answer: { command: 'answer', clients: 500, tokens: 2000, rounds: 2 },
}

/** Self time summed by where the code lives: a package, @rewind/*, Node's internals, or V8 (GC...). */
export function byPackage(summary) {
  const groups = new Map()
  for (const row of summary.rows) {
    if (row.name === '(idle)') continue
    let group
    if (row.where === '')
      group = row.name // (garbage collector), (program)
    else if (row.where.startsWith('node:')) group = `node:${row.where.slice(5).split('/')[0].split(':')[0]}`
    else if (row.where.startsWith('@rewind/')) group = row.where.split('/').slice(0, 2).join('/')
    else if (row.where.startsWith('servers/')) group = 'bench server file'
    else
      group = row.where.startsWith('@') ? row.where.split('/').slice(0, 2).join('/') : row.where.split('/')[0]
    groups.set(group, (groups.get(group) ?? 0) + row.micros)
  }
  const lines = ['| self ms | % of busy | where |', '| ---: | ---: | --- |']
  for (const [group, micros] of [...groups].sort((a, b) => b[1] - a[1]).slice(0, 12)) {
    lines.push(
      `| ${(micros / 1000).toFixed(1)} | ${((micros / summary.busy) * 100).toFixed(1)}% | ${group} |`,
    )
  }
  return lines.join('\n')
}

/** Self time per function (name, file, line) of a .cpuprofile, largest first. */
export function selfTimes(profile) {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]))
  const self = new Map()
  let total = 0
  for (let i = 0; i < profile.samples.length; i++) {
    const node = byId.get(profile.samples[i])
    const dt = profile.timeDeltas[i] ?? 0
    if (node === undefined || dt < 0) continue
    total += dt
    self.set(node.id, (self.get(node.id) ?? 0) + dt)
  }
  const byFunction = new Map()
  for (const [id, micros] of self) {
    const { functionName, url, lineNumber } = byId.get(id).callFrame
    const file = shorten(url)
    const key = `${functionName || '(anonymous)'}\u0000${file}\u0000${lineNumber}`
    byFunction.set(key, (byFunction.get(key) ?? 0) + micros)
  }
  const idle = [...byFunction].filter(([key]) => key.startsWith('(idle)')).reduce((sum, [, v]) => sum + v, 0)
  const rows = [...byFunction]
    .map(([key, micros]) => {
      const [name, file, line] = key.split('\u0000')
      return { name, where: file === '' ? '' : `${file}:${Number(line) + 1}`, micros }
    })
    .sort((a, b) => b.micros - a.micros)
  return { total, idle, busy: total - idle, rows }
}

function shorten(url) {
  if (!url) return ''
  const path = url.replace(/^file:\/\//, '')
  const pkg = /node_modules\/(?:\.pnpm\/[^/]+\/node_modules\/)?((?:@[^/]+\/)?[^/]+)\/(.*)$/.exec(path)
  if (pkg) return `${pkg[1]}/${pkg[2]}`
  const rewind = /packages\/([^/]+)\/(.*)$/.exec(path)
  if (rewind) return `@rewind/${rewind[1]}/${rewind[2]}`
  return path.startsWith(BENCH_DIR) ? relative(BENCH_DIR, path) : path
}

function format(summary, limit) {
  const lines = [
    `busy ${(summary.busy / 1000).toFixed(0)} ms of ${(summary.total / 1000).toFixed(0)} ms sampled (idle ${(summary.idle / 1000).toFixed(0)} ms)`,
    '',
    '| self ms | % of busy | function | where |',
    '| ---: | ---: | --- | --- |',
  ]
  for (const row of summary.rows.filter((r) => r.name !== '(idle)').slice(0, limit)) {
    lines.push(
      `| ${(row.micros / 1000).toFixed(1)} | ${((row.micros / summary.busy) * 100).toFixed(1)}% | \`${row.name}\` | ${row.where} |`,
    )
  }
  return lines.join('\n')
}

async function main() {
  pinSelf()
  const outDir = join(BENCH_DIR, 'results', 'raw', 'profiles')
  mkdirSync(outDir, { recursive: true })
  const client = await startClient({ ticks: ticksPerSecond() })
  const report = ['# CPU profiles', '']
  try {
    for (const mode of modes) {
      for (const name of servers) {
        const dir = join(outDir, `${name}-${mode}-${Date.now()}`)
        mkdirSync(dir, { recursive: true })
        const server = await startServer(name, { nodeFlags: ['--cpu-prof', `--cpu-prof-dir=${dir}`] })
        let result
        try {
          const { command = 'fanout', rounds = 1, ...plan } = PLANS[mode]
          // A replay or answer call runs its warm-up rounds and a measured one; two calls, so most
          // of the profile is the steady state.
          for (let round = 0; round < rounds; round++)
            result = await client.call(
              command,
              { port: server.port, timeoutMs: 300_000, ...plan },
              server.pid,
            )
        } finally {
          await server.stop()
        }
        const file = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'))
        if (file === undefined) throw new Error(`no profile written for ${name} (${mode})`)
        const summary = selfTimes(JSON.parse(readFileSync(join(dir, file), 'utf8')))
        const figure =
          mode === 'replay' || mode === 'answer'
            ? `Last round: ${(result.elapsed * 1000).toFixed(1)} ms, ${(result.serverCpu * 1000).toFixed(0)} ms server CPU`
            : mode === 'connect'
              ? `${Math.round(result.rate).toLocaleString('en-US')} handshakes/s, ${((result.serverCpu / result.total) * 1e6).toFixed(0)} µs server CPU per connection (p50 handshake ${(result.handshake.p50 / 1000).toFixed(1)} ms)`
              : `Last round: ${Math.round(result.rate).toLocaleString('en-US')} deliveries/s, ${((result.serverCpu / result.delivered) * 1e6).toFixed(2)} µs server CPU per delivery`
        const section = [
          `## ${name}, ${mode}`,
          '',
          `${figure}. Profile: ${relative(BENCH_DIR, join(dir, file))}`,
          '',
          byPackage(summary),
          '',
          format(summary, top),
          '',
        ].join('\n')
        report.push(section)
        process.stdout.write(`${section}\n`)
      }
    }
  } finally {
    await client.stop()
  }
  const path = join(outDir, 'summary.md')
  writeFileSync(path, `${report.join('\n')}\n`)
  process.stderr.write(`profile: wrote ${relative(process.cwd(), path)}\n`)
}

main().catch((error) => {
  process.stderr.write(`${error?.stack ?? error}\n`)
  process.exitCode = 1
})
