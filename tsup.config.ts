import { readFileSync } from 'node:fs'
import { defineConfig } from 'tsup'

/**
 * Entry points beyond `src/index.ts`, by package: each becomes a subpath export (`dist/<name>.*`),
 * listed in that package's `exports` as well.
 */
const SUBPATHS: Record<string, string[]> = {
  '@rewind/core': ['src/frame.ts', 'src/adapter.ts'],
  '@rewind/ai-sdk': ['src/client.ts'],
}

const { name } = JSON.parse(readFileSync('package.json', 'utf8')) as { name: string }

export default defineConfig({
  entry: ['src/index.ts', ...(SUBPATHS[name] ?? [])],
  format: ['esm', 'cjs'],
  // Entry points share their modules through chunks in both formats: a CommonJS bundle per entry
  // would give `@rewind/core/adapter` its own copy of the Hub class and of RewindError, and
  // `instanceof` would fail across them.
  splitting: true,
  dts: true,
  sourcemap: true,
  clean: true,
  target: 'node20',
  platform: 'node',
})
