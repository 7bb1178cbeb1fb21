/**
 * The example's browser tests on `ai` 7 (run by ai7.test.ts under Node 22): `ai` and `ai/test`
 * resolve to the `ai7` alias, in the app and the test alike; the page is bundled with `ai` 7 and
 * `@ai-sdk/react` 4 (`buildPage({ sdk: 'ai7' })`).
 */
import { defineConfig } from 'vitest/config'

export default defineConfig({
  resolve: {
    alias: [
      { find: /^ai$/, replacement: 'ai7' },
      { find: /^ai\/test$/, replacement: 'ai7/test' },
    ],
  },
  test: {
    include: ['examples/ai-chat/test/ai-chat.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
  },
})
