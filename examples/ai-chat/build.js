/**
 * Bundles the page (`page.jsx`: React, `useChat` from `@ai-sdk/react`, the Rewind transport) into
 * `dist/page.js`, which the app serves. `node build.js`, or `buildPage()` from a test.
 */
import { fileURLToPath } from 'node:url'
import { build } from 'esbuild'
import { PAGE_SCRIPT } from './app.js'

/**
 * Where the page built against `ai` 7 goes (`buildPage({ sdk: 'ai7' })`, for the tests on ai 7):
 * `@ai-sdk/react` 4 and `ai` 7 in place of 3 and 6.
 */
export const PAGE_SCRIPT_AI7 = new URL('./dist/page-ai7.js', import.meta.url)

/** @param {{ sdk?: 'ai' | 'ai7' }} [options] which major of the SDK to bundle (6 by default) */
export async function buildPage({ sdk = 'ai' } = {}) {
  await build({
    entryPoints: [fileURLToPath(new URL('./page.jsx', import.meta.url))],
    outfile: fileURLToPath(sdk === 'ai7' ? PAGE_SCRIPT_AI7 : PAGE_SCRIPT),
    // Aliases resolve from the working directory: the example's, wherever the build is started.
    absWorkingDir: fileURLToPath(new URL('.', import.meta.url)),
    ...(sdk === 'ai7' ? { alias: { ai: 'ai7', '@ai-sdk/react': '@ai-sdk/react4' } } : {}),
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
