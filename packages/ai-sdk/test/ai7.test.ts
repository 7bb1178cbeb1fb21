/**
 * The same tests against `ai` 7, which needs Node 22 or later: this file runs the package's other
 * test files again in a Node 22 process (npm's `node` package, fetched by `npx` on the first run)
 * with `REWIND_AI_SDK=ai7`, so the transport and the server are checked against both majors of the
 * peer range in one `vitest run`. Node 22 missing (no registry) skips loudly outside CI, fails in it.
 */
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'

const env = process.env as { REWIND_AI_SDK?: string; CI?: string }
const ROOT = fileURLToPath(new URL('../../../', import.meta.url))
const FILES = ['drop', 'wire', 'instances'].map((name) => `packages/ai-sdk/test/${name}.test.ts`)
const NODE_22 = ['-y', 'node@22']

/** Node 22 from npm (cached after the first run), or why not. */
function node22(): { ok: true } | { ok: false; why: string } {
  const probe = spawnSync('npx', [...NODE_22, '--version'], { encoding: 'utf8', timeout: 120_000 })
  if (probe.status === 0 && /^v2[2-9]\./.test(probe.stdout.trim())) return { ok: true }
  return { ok: false, why: `npx -y node@22 failed: ${probe.stderr || probe.stdout || probe.error}` }
}

// The inner run sets REWIND_AI_SDK: it must not start itself again.
const outer = env.REWIND_AI_SDK === undefined
const found = outer ? node22() : { ok: false as const, why: 'inner run' }
if (outer && !found.ok) {
  const message = `ai 7 tests need Node 22: ${found.why}`
  if (env.CI) throw new Error(`${message}. CI is set, so this is a failure, not a skip.`)
  console.warn(`\n${'!'.repeat(78)}\n!! SKIPPED: ${message}\n${'!'.repeat(78)}\n`)
}

describe.runIf(outer && found.ok)('ai 7 on Node 22', () => {
  it('passes the drop, wire and instance tests', () => {
    const run = spawnSync(
      'npx',
      [...NODE_22, 'node_modules/vitest/vitest.mjs', 'run', ...FILES, '--reporter=verbose'],
      {
        cwd: ROOT,
        encoding: 'utf8',
        env: { ...process.env, REWIND_AI_SDK: 'ai7' },
        timeout: 150_000,
      },
    )
    const output = `${run.stdout}\n${run.stderr}`
    expect(run.status, output).toBe(0)
    // Each suite names the SDK it loaded; none was skipped.
    for (const suite of ['drop mid-answer (ai7)', 'UI message stream on the wire (ai7)']) {
      expect(output).toContain(suite)
    }
    expect(output).not.toMatch(/\bskipped\b/)
  }, 180_000)
})
