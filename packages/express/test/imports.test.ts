/**
 * The built package, as an application loads it: `import` (ESM) and `require` (CommonJS) both work
 * and expose the same names. Run in child processes so Node's own resolution (the `exports` map) is
 * what is tested, not the test runner's.
 */
import { execFile } from 'node:child_process'
import { readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { beforeAll, describe, expect, it } from 'vitest'

const run = promisify(execFile)
const PACKAGE_DIR = fileURLToPath(new URL('..', import.meta.url))
/** The value exports of `@rewind/express`; adding one is a deliberate API decision. */
const EXPORTS = ['RewindError', 'sse']

/**
 * Whether `dist` is newer than everything it is built from. `pnpm test` builds first; rebuilding
 * only when needed keeps this file from emptying `dist` under other tests that load it.
 */
function builtFromCurrentSources(): boolean {
  const outputs = ['dist/index.js', 'dist/index.cjs', 'dist/index.d.ts', 'dist/index.d.cts']
  const inputs = [
    ...readdirSync(join(PACKAGE_DIR, 'src')).map((name) => join('src', name)),
    'package.json',
    join('..', '..', 'tsup.config.ts'),
  ]
  const mtime = (path: string) => statSync(join(PACKAGE_DIR, path), { throwIfNoEntry: false })?.mtimeMs
  const oldestOutput = Math.min(...outputs.map((path) => mtime(path) ?? Number.NEGATIVE_INFINITY))
  return inputs.every((path) => (mtime(path) ?? Number.POSITIVE_INFINITY) < oldestOutput)
}

/** Loads the package in a child process (cwd: the package, so its own name resolves) and reports on it. */
async function probe(kind: 'esm' | 'cjs'): Promise<Record<string, unknown>> {
  const body = `
    const events = m.sse()
    const id = events.publish('news', { data: 'hello' })
    let code
    try { events.publish('news', { event: 'a\\nb', data: '' }) } catch (error) { code = error instanceof m.RewindError && error.code }
    await events.close()
    console.log(JSON.stringify({
      names: Object.keys(m).filter((name) => name !== 'default' && name !== 'module.exports').sort(),
      middleware: typeof events === 'function' && events.name,
      id: typeof id,
      code,
    }))`
  const script =
    kind === 'esm'
      ? `import * as m from '@rewind/express'\nimport { sse } from '@rewind/express'\nif (sse !== m.sse) throw new Error('named import differs')\n${body}`
      : `const m = require('@rewind/express');(async () => {${body}})().catch((error) => { console.error(error); process.exit(1) })`
  const args = kind === 'esm' ? ['--input-type=module', '-e', script] : ['-e', script]
  const { stdout } = await run(process.execPath, args, { cwd: PACKAGE_DIR })
  return JSON.parse(stdout) as Record<string, unknown>
}

describe('import styles of the built package', () => {
  beforeAll(async () => {
    if (!builtFromCurrentSources()) {
      await run('pnpm', ['--filter', '@rewind/express', 'build'], { cwd: PACKAGE_DIR })
    }
  }, 120_000)

  it.each([
    ['ESM import exposes sse and RewindError, and they work', 'esm'],
    ['CommonJS require exposes the same names, and they work', 'cjs'],
  ] as const)('%s', async (_name, kind) => {
    expect(await probe(kind)).toEqual({
      names: EXPORTS,
      middleware: 'rewindSse',
      id: 'string',
      code: 'ERR_INVALID_FIELD',
    })
  })
})
