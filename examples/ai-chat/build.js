/**
 * Bundles the page (`page.jsx`: React, `useChat` from `@ai-sdk/react`, the Rewind transport) into
 * `dist/page.js`, which the app serves. `node build.js`, or `buildPage()` from a test.
 */
import { fileURLToPath } from 'node:url'
import { build } from 'esbuild'
import { PAGE_SCRIPT } from './app.js'

export async function buildPage() {
  await build({
    entryPoints: [fileURLToPath(new URL('./page.jsx', import.meta.url))],
    outfile: fileURLToPath(PAGE_SCRIPT),
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    jsx: 'automatic',
    minify: true,
    define: { 'process.env.NODE_ENV': '"production"' },
    logLevel: 'warning',
  })
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await buildPage()
