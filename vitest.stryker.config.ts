import { fileURLToPath } from 'node:url'
import { defineConfig } from 'vitest/config'

/**
 * The tests a mutation run (`pnpm mutate`, scripts/mutate.js) executes: the files in
 * `MUTATE_TESTS` (comma-separated globs), with the workspace "unit" project's timeouts.
 * `@rewind/core` resolves to its sources here, not to its build, so that the Redis tests exercise
 * the mutated core code (the lease and remote-cancel paths of responses.ts only they reach).
 */
const tests = (process.env.MUTATE_TESTS ?? 'packages/core/test/**/*.test.ts').split(',')
const coreSrc = fileURLToPath(new URL('packages/core/src/', import.meta.url))

export default defineConfig({
  resolve: {
    alias: [
      { find: /^@rewind\/core$/, replacement: `${coreSrc}index.ts` },
      { find: /^@rewind\/core\/(frame|adapter)$/, replacement: `${coreSrc}$1.ts` },
    ],
  },
  test: {
    include: tests,
    exclude: [
      '**/node_modules/**',
      '**/dist/**',
      '**/.stryker-tmp/**',
      // These check the built packages (dist), which a mutation run does not rebuild.
      'packages/*/test/package.test.ts',
      'packages/core/test/copies.test.ts',
      'packages/client/test/browser.test.ts',
      'packages/client/test/size.test.ts',
      'packages/client/test/cleanup.test.ts',
    ],
    testTimeout: 30_000,
    hookTimeout: 30_000,
  },
})
