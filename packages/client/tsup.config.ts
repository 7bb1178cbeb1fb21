import { defineConfig } from 'tsup'

export default defineConfig([
  {
    // The package itself: ESM and CommonJS for Node and bundlers, eventsource-parser as a dependency.
    entry: ['src/index.ts'],
    format: ['esm', 'cjs'],
    dts: true,
    sourcemap: true,
    target: 'node20',
    platform: 'node',
  },
  {
    // `@rewind/client/browser`: one self-contained, minified ES module for pages without a bundler
    // (`<script type="module">` or an import map), eventsource-parser included.
    entry: { browser: 'src/index.ts' },
    format: ['esm'],
    dts: false,
    sourcemap: true,
    minify: true,
    target: 'es2022',
    platform: 'browser',
    noExternal: ['eventsource-parser'],
  },
])
