/**
 * The example on `ai` 7, which needs Node 22 or later: ai-chat.test.ts runs again in a Node 22
 * process (npm's `node` package, fetched by `npx` on the first run) with the SDK aliased to 7
 * (vitest.ai7.config.ts) and the page bundled with `@ai-sdk/react` 4. Node 22 missing (no registry)
 * skips loudly outside CI, fails in it.
 */
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'

const env = process.env as { AI_CHAT_SDK?: string; CI?: string }
const ROOT = fileURLToPath(new URL('../../../', import.meta.url))
const NODE_22 = ['-y', 'node@22']

function node22(): string | undefined {
  const probe = spawnSync('npx', [...NODE_22, '--version'], { encoding: 'utf8', timeout: 120_000 })
  if (probe.status === 0 && /^v2[2-9]\./.test(probe.stdout.trim())) return undefined
  return `npx -y node@22 failed: ${probe.stderr || probe.stdout || probe.error}`
}

const outer = env.AI_CHAT_SDK === undefined
const missing = outer ? node22() : 'inner run'
if (outer && missing !== undefined) {
  const message = `the ai-chat example on ai 7 needs Node 22: ${missing}`
  if (env.CI) throw new Error(`${message}. CI is set, so this is a failure, not a skip.`)
  console.warn(`\n${'!'.repeat(78)}\n!! SKIPPED: ${message}\n${'!'.repeat(78)}\n`)
}

describe.runIf(outer && missing === undefined)('the example on ai 7, Node 22', () => {
  it('passes the browser tests', () => {
    const run = spawnSync(
      'npx',
      [
        ...NODE_22,
        'node_modules/vitest/vitest.mjs',
        'run',
        '--config',
        'examples/ai-chat/test/vitest.ai7.config.ts',
        '--reporter=verbose',
      ],
      { cwd: ROOT, encoding: 'utf8', env: { ...process.env, AI_CHAT_SDK: 'ai7' }, timeout: 170_000 },
    )
    const output = `${run.stdout}\n${run.stderr}`
    // A failure the inner run retried past still shows here, with its seed and the page's log.
    const retried = output.indexOf('ai-chat drops (ai7) failed:')
    if (retried !== -1) console.warn(output.slice(retried, retried + 20_000))
    expect(run.status, output).toBe(0)
    expect(output).toContain('the page in Chromium: reload mid-answer (ai7)')
    expect(output).toContain('the SDK the app runs on (ai7)')
  }, 200_000)
})
