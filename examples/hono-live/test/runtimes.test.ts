/**
 * The same demo file on Bun and Deno (the registry's `bun` and `deno` packages, put in place by
 * `pnpm install`): the whole smoke test, as on Node.
 */
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { describe } from 'vitest'
import { smokeTest } from '../../shared/test/smoke.js'

// The binaries themselves (a signal sent to a node_modules/.bin launcher would not reach them).
const ROOT = fileURLToPath(new URL('../../../', import.meta.url))
const ENTRY = new URL('../index.js', import.meta.url)
const { CI } = process.env

const RUNTIMES = {
  bun: [`${ROOT}node_modules/bun/bin/bun.exe`],
  deno: [`${ROOT}node_modules/deno/deno`, 'run', '--allow-net', '--allow-env', '--allow-read', '--allow-sys'],
} as const

for (const [name, command] of Object.entries(RUNTIMES)) {
  if (!existsSync(command[0]) && CI !== 'true') {
    describe.skip(`hono-live on ${name}: ${name} is not installed (pnpm install puts it in node_modules/.bin)`, () => {})
    continue
  }
  smokeTest(`hono-live on ${name}`, ENTRY, command)
}
