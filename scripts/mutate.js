/**
 * Mutation testing with StrykerJS (stryker.config.mjs, vitest.stryker.config.ts): plants small
 * faults in the named modules, one at a time, and runs the tests that reach each one. A fault no
 * test notices is a "survivor"; docs/reliability.md keeps the scores by module. Not part of
 * `pnpm test`: a whole package takes tens of minutes to hours on two cores.
 *
 *   pnpm mutate                          # every module of every package (hours on 2 cores)
 *   pnpm mutate frame memory-history     # core modules by name
 *   pnpm mutate redis/responses client   # a module of another package, a whole package
 *   pnpm mutate packages/core/src/fan-out.ts
 *   pnpm mutate --list redis             # only print what would run
 *
 * One Stryker run per package, each with that package's tests. Core's runs add the Redis tests
 * for the code only a shared store reaches (the lease and remote-cancel paths of responses.ts).
 * Runs under `nice -n 15` with 2 test processes (`MUTATE_CONCURRENCY` to change it). The Redis
 * tests need the Redis that `pnpm test` needs (`REDIS_URL`, or a redis-server on the PATH).
 * Reports: reports/mutation/<package>.json and .html (ignored by git).
 */
import { spawnSync } from 'node:child_process'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { basename, dirname, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('..', import.meta.url))
const PACKAGES = ['core', 'redis', 'client', 'express', 'fastify', 'fetch', 'postgres', 'ai-sdk']

/**
 * The tests of each package that reach its sources. Tests of the built package (dist: packaging,
 * bundle size, the browser bundle, a child process on dist) cannot see a mutant and are left out
 * by vitest.stryker.config.ts.
 */
const TESTS = {
  core: ['packages/core/test/**/*.test.ts'],
  redis: ['packages/redis/test/**/*.test.ts'],
  client: ['packages/client/test/**/*.test.ts'],
  express: ['packages/express/test/**/*.test.ts'],
  fastify: ['packages/fastify/test/**/*.test.ts'],
  fetch: ['packages/fetch/test/**/*.test.ts'],
  postgres: ['packages/postgres/test/**/*.test.ts'],
  // ai7.test.ts runs the built package under Node 22 in a child process: no mutant reaches it.
  'ai-sdk': ['packages/ai-sdk/test/**/*.test.ts'],
}

/** Core modules that code in another package reaches further than core's own tests can. */
const REDIS_RESPONSES = [
  'packages/redis/test/responses.test.ts',
  'packages/redis/test/responses-faults.test.ts',
  'packages/redis/test/responses-lease.test.ts',
]
const EXTRA_TESTS = {
  'packages/core/src/responses.ts': REDIS_RESPONSES,
  'packages/core/src/response-producer.ts': REDIS_RESPONSES,
  // The helpers shared stores build on: only the Redis and Postgres stores run them.
  'packages/core/src/shared-store.ts': [
    ...REDIS_RESPONSES,
    'packages/redis/test/store.test.ts',
    'packages/postgres/test/**/*.test.ts',
  ],
  // Serving on a sink other than a node:http response: what @rewind/fetch does.
  'packages/core/src/sink-serve.ts': ['packages/fetch/test/**/*.test.ts'],
}

/**
 * @param {string} pkg
 * @returns {string[]} every source module of a package; its index only where it holds code (an
 * adapter's, such as @rewind/fetch's), not where it is a list of names
 */
function modulesOf(pkg) {
  const dir = resolve(root, 'packages', pkg, 'src')
  return readdirSync(dir)
    .filter((name) => name.endsWith('.ts'))
    .filter(
      (name) => name !== 'index.ts' || /=>|function |class /.test(readFileSync(resolve(dir, name), 'utf8')),
    )
    .map((name) => `packages/${pkg}/src/${name}`)
}

/** @param {string} arg a package, `pkg/module`, a module of core, or a path @returns {string[]} */
function resolveArg(arg) {
  if (PACKAGES.includes(arg)) return modulesOf(arg)
  const candidates = [
    arg,
    `packages/${arg.replace(/\.ts$/, '').replace('/', '/src/')}.ts`,
    `packages/core/src/${arg.replace(/\.ts$/, '')}.ts`,
  ]
  for (const candidate of candidates) {
    const path = relative(root, resolve(root, candidate))
    if (/^packages\/[^/]+\/src\/.+\.ts$/.test(path) && existsSync(resolve(root, path))) return [path]
  }
  throw new Error(
    `No module "${arg}": name a package (${PACKAGES.join(', ')}), a core module (frame), pkg/module (redis/responses) or a path`,
  )
}

const list = process.argv.includes('--list')
const args = process.argv.slice(2).filter((arg) => arg !== '--list')
const files = [...new Set((args.length > 0 ? args : PACKAGES).flatMap(resolveArg))]
const byPackage = new Map()
for (const file of files) {
  const pkg = file.split('/')[1]
  if (!PACKAGES.includes(pkg)) throw new Error(`${file}: pnpm mutate covers ${PACKAGES.join(', ')}`)
  byPackage.set(pkg, [...(byPackage.get(pkg) ?? []), file])
}

// The package exports no bin path: find its directory from its package.json.
const stryker = resolve(
  dirname(createRequire(import.meta.url).resolve('@stryker-mutator/core/package.json')),
  'bin/stryker.js',
)
const summaries = []
let failed = false
for (const [pkg, mutate] of byPackage) {
  const tests = [...new Set([...TESTS[pkg], ...mutate.flatMap((file) => EXTRA_TESTS[file] ?? [])])]
  const report =
    args.length > 0 ? `${pkg}-${mutate.map((f) => basename(f, '.ts')).join('+')}`.slice(0, 120) : pkg
  console.log(`\n# ${pkg}: ${mutate.join(' ')}\n# tests: ${tests.join(' ')}\n`)
  if (list) continue
  // Other work shares the CPU: the whole run, and every test process it starts, is niced.
  const run = spawnSync('nice', ['-n', '15', process.execPath, stryker, 'run', 'stryker.config.mjs'], {
    cwd: root,
    stdio: 'inherit',
    env: { ...process.env, MUTATE: mutate.join(','), MUTATE_TESTS: tests.join(','), MUTATE_REPORT: report },
  })
  if (run.status !== 0) failed = true
  const json = resolve(root, 'reports/mutation', `${report}.json`)
  if (existsSync(json)) summaries.push(...summarize(JSON.parse(readFileSync(json, 'utf8'))))
}

/**
 * Per module: killed and timed-out mutants count as caught; mutants disabled with a reasoned
 * `// Stryker disable` comment (judged equivalent) are left out of the score.
 * @param {{ files: Record<string, { mutants: { status: string }[] }> }} result
 */
function summarize(result) {
  return Object.entries(result.files).map(([file, { mutants }]) => {
    const count = (status) => mutants.filter((m) => m.status === status).length
    const excluded = count('Ignored')
    const caught = count('Killed') + count('Timeout')
    const valid = mutants.length - excluded - count('CompileError') - count('RuntimeError')
    return {
      module: relative(root, resolve(root, file)),
      mutants: valid,
      killed: count('Killed'),
      timeout: count('Timeout'),
      survived: count('Survived'),
      'no coverage': count('NoCoverage'),
      excluded,
      score: valid === 0 ? '-' : `${((100 * caught) / valid).toFixed(1)} %`,
    }
  })
}

if (summaries.length > 0) console.table(summaries)
process.exit(failed ? 1 : 0)
