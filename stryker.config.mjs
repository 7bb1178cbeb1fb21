/**
 * StrykerJS settings for `pnpm mutate` (scripts/mutate.js sets the environment variables):
 * `MUTATE` the files to mutate, `MUTATE_TESTS` the test files that reach them (read by
 * vitest.stryker.config.ts), `MUTATE_REPORT` the report's name, `MUTATE_CONCURRENCY` the number
 * of test processes (2 by default: this is sized for a 2-core machine).
 */
const mutate = (process.env.MUTATE ?? 'packages/core/src/frame.ts').split(',')
const report = process.env.MUTATE_REPORT ?? 'mutation'

/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  packageManager: 'pnpm',
  plugins: ['@stryker-mutator/vitest-runner'],
  testRunner: 'vitest',
  vitest: { configFile: 'vitest.stryker.config.ts', related: true },
  checkers: [],
  // Each mutant runs only the tests that reached its code in the first, unmutated run.
  coverageAnalysis: 'perTest',
  concurrency: Number(process.env.MUTATE_CONCURRENCY ?? 2),
  // A mutant that hangs (an emptied eviction, `i++` turned `i--`) times out: 3 × its tests' time + 15 s.
  timeoutFactor: 3,
  timeoutMS: 15_000,
  dryRunTimeoutMinutes: 15,
  mutate,
  ignoreStatic: false,
  // The sandbox is a copy of the workspace (node_modules linked), so the checkout is never mutated.
  ignorePatterns: ['reports', 'bench/results', '.snippets-*', 'packed', 'examples/*/.next'],
  reporters: ['clear-text', 'progress-append-only', 'json', 'html'],
  jsonReporter: { fileName: `reports/mutation/${report}.json` },
  htmlReporter: { fileName: `reports/mutation/${report}.html` },
  clearTextReporter: { allowColor: false, logTests: false, maxTestsToLog: 0, reportScoreTable: true },
  tempDirName: '.stryker-tmp',
  cleanTempDir: true,
  logLevel: 'info',
  fileLogLevel: 'off',
}
