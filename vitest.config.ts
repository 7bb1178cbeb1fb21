import { fileURLToPath } from 'node:url'
import { defineConfig } from 'vitest/config'

/**
 * `@rewind/core` and its subpaths, resolved to the TypeScript source: a suite that imports core by
 * name then tests an edit to `src` without a rebuild. An alias rather than a `source` export
 * condition: a condition would ship in the published `exports`, pointing at files the tarball does
 * not contain, and break any consumer whose bundler or tsconfig also asks for `source`.
 */
const coreSource = Object.fromEntries(
  ['', '/frame', '/adapter'].map((subpath) => [
    `@rewind/core${subpath}`,
    fileURLToPath(
      new URL(`./packages/core/src/${subpath === '' ? 'index' : subpath.slice(1)}.ts`, import.meta.url),
    ),
  ]),
)

const shared = {
  exclude: ['**/node_modules/**', '**/dist/**'],
  testTimeout: 30_000,
  hookTimeout: 30_000,
  pool: 'forks',
} as const

export default defineConfig({
  test: {
    // Two cores: more workers only add contention to the socket tests.
    maxWorkers: 2,
    projects: [
      {
        test: {
          ...shared,
          name: 'unit',
          include: ['packages/*/test/**/*.test.ts', 'examples/*/test/**/*.test.ts', 'test/**/*.test.ts'],
          exclude: [...shared.exclude, 'test/torture/**', 'test/faults/**'],
        },
      },
      {
        // The reliability suite measures time and memory under load: its files run one at a time,
        // and only after every other test has finished (a higher group order runs later).
        test: {
          ...shared,
          name: 'torture',
          // Core from source; the adapters' built files import it by name too, so it is one module
          // (and `RewindError` one class) for the test and the in-process apps.
          alias: Object.entries(coreSource).map(([find, replacement]) => ({
            find: new RegExp(`^${find}$`),
            replacement,
          })),
          include: ['test/torture/**/*.test.ts'],
          fileParallelism: false,
          sequence: { groupOrder: 1 },
          testTimeout: 120_000,
          hookTimeout: 60_000,
        },
      },
      {
        // The fault-injection suite stops, kills and freezes Redis servers of its own and bounds how
        // soon every reader ends: its files run one at a time, after everything else.
        test: {
          ...shared,
          name: 'faults',
          include: ['test/faults/**/*.test.ts'],
          fileParallelism: false,
          sequence: { groupOrder: 2 },
          testTimeout: 60_000,
          hookTimeout: 60_000,
        },
      },
    ],
  },
})
