/**
 * The size budget stated in the README: the package as a browser bundler ships it (ESM, minified,
 * eventsource-parser included), gzipped at level 9. A change that grows it past the budget fails here.
 */
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { gzipSync } from 'node:zlib'
import { build } from 'esbuild'
import { describe, expect, it } from 'vitest'

/** The budget, in bytes, minified and gzipped; the README states it. */
const BUDGET = 7.5 * 1024

const root = fileURLToPath(new URL('..', import.meta.url))

async function bundledSize(contents: string): Promise<{ minified: number; gzipped: number }> {
  const result = await build({
    stdin: { contents, resolveDir: root, loader: 'ts' },
    bundle: true,
    minify: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    write: false,
  })
  const bytes = result.outputFiles[0]!.contents
  return { minified: bytes.length, gzipped: gzipSync(bytes, { level: 9 }).length }
}

describe('size', () => {
  it(`stays under ${BUDGET / 1024} KB minified and gzipped, as the README says`, async () => {
    const whole = await bundledSize("export * from './src/index.ts'")
    const parser = await bundledSize("export { createParser } from 'eventsource-parser'")
    console.info(
      `[client] size: ${whole.minified} B minified, ${whole.gzipped} B gzipped (eventsource-parser: ${parser.gzipped} B gzipped)`,
    )
    expect(whole.gzipped).toBeLessThan(BUDGET)
    expect(readFileSync(`${root}README.md`, 'utf8')).toContain(`under ${BUDGET / 1024} KB`)
  })
})
