import { defineConfig } from 'vitest/config'

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
