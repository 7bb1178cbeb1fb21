/**
 * Where a server spends its time during fan-out: runs it under `node --cpu-prof` through the burst
 * and paced fan-out of run.js (several rounds, so connection setup weighs little), then lists the
 * functions with the most self time. Profiles go to results/raw/profiles/ (open them in Chrome
 * DevTools or speedscope for the full picture).
 *
 *   node profile.js [--servers=rewind-express,raw-node] [--modes=burst,paced] [--top=20]
 */
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join, relative } from 'node:path'
import { BENCH_DIR, pinSelf, startClient, startServer } from './lib/harness.js'
import { ticksPerSecond } from './lib/proc.js'

const args = Object.fromEntries(
  process.argv.slice(2).map((arg) => {
    const [key, value] = arg.replace(/^--/, '').split('=')
    return [key, value ?? 'true']
  }),
)
const servers = (args.servers ?? 'rewind-express,raw-node').split(',')
const modes = (args.modes ?? 'burst,paced').split(',')
const top = Number(args.top ?? 20)

const PLANS = {
  burst: { subs: 1000, n: 500, size: 128, mode: 'burst', rate: 50, sampleEvery: 50, warmup: 50, repeat: 30 },
  paced: { subs: 1000, n: 300, size: 128, mode: 'paced', rate: 50, sampleEvery: 50, warmup: 20, repeat: 2 },
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
  const report = ['# CPU profiles of fan-out', '']
  try {
    for (const mode of modes) {
      for (const name of servers) {
        const dir = join(outDir, `${name}-${mode}-${Date.now()}`)
        mkdirSync(dir, { recursive: true })
        const server = await startServer(name, { nodeFlags: ['--cpu-prof', `--cpu-prof-dir=${dir}`] })
        let result
        try {
          result = await client.call(
            'fanout',
            { port: server.port, timeoutMs: 300_000, ...PLANS[mode] },
            server.pid,
          )
        } finally {
          await server.stop()
        }
        const file = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'))
        if (file === undefined) throw new Error(`no profile written for ${name} (${mode})`)
        const summary = selfTimes(JSON.parse(readFileSync(join(dir, file), 'utf8')))
        const perDelivery = (result.serverCpu / result.delivered) * 1e6
        const section = [
          `## ${name}, ${mode}`,
          '',
          `Last round: ${Math.round(result.rate).toLocaleString('en-US')} deliveries/s, ${perDelivery.toFixed(2)} µs server CPU per delivery. Profile: ${relative(BENCH_DIR, join(dir, file))}`,
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
