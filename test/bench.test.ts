/**
 * The benchmark harness is not run by CI in full (it takes a quarter of an hour and both cores), so
 * this runs its quick mode on the scenarios whose code is the most involved: replay and streamed
 * answers against the hand-written baselines (warm-up rounds, the cold first round, the bars with
 * their reasons) and idle connections across node:cluster workers (raw node:http, Rewind in memory
 * and Rewind on Redis, in bursts). It checks that a run completes, loses nothing, and that the
 * report says what it measured; not how fast anything is.
 */
import { spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'

const ROOT = join(import.meta.dirname, '..')

function runBench(args: string[]): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['run.js', ...args], {
      cwd: join(ROOT, 'bench'),
      stdio: ['ignore', 'ignore', 'pipe'],
    })
    let stderr = ''
    child.stderr.setEncoding('utf8')
    child.stderr.on('data', (chunk: string) => {
      stderr += chunk
    })
    child.once('error', reject)
    child.once('exit', (code) => resolve({ code, stderr }))
  })
}

describe('pnpm bench (quick mode)', () => {
  const out = mkdtempSync(join(tmpdir(), 'rewind-bench-'))
  afterAll(() => rmSync(out, { recursive: true, force: true }))

  it('measures replay, answers and idle connections against hand-written node:http and reports the bars', async () => {
    const { code, stderr } = await runBench([
      '--quick',
      '--only=replay,answer,connections',
      '--servers=raw-node,rewind-express,express-raw',
      `--out=${out}`,
    ])
    expect(stderr).not.toMatch(/FAILED|lost or duplicated/)
    expect(code).toBe(0)
    const results = readFileSync(join(out, 'RESULTS.md'), 'utf8')
    // The hand-written baseline replays (it used to be listed as "no replay").
    expect(results).toMatch(/\| raw node:http +\| +\d[\d,]* ms \| +1\.00× \|/)
    expect(results).toContain('first round (cold)')
    expect(results).toMatch(/Replay, @rewind\/express: \d+ ms = [\d.]+× hand-written node:http's/)
    expect(results).toMatch(/Streamed answer, @rewind\/express: \d+ ms = [\d.]+× hand-written node:http's/)
    expect(results).toContain('## 8. Idle connections across worker processes')
    expect(results).toMatch(
      /2,000 idle connections \(of 2,000\) held by 1 node:cluster worker .*every one of \d+ events: yes/,
    )
    expect(results).toMatch(
      /\| lost \/ duplicated \/ dropped +\| 0 \/ 0 \/ 0 +\| 0 \/ 0 \/ 0 +\| 0 \/ 0 \/ 0 +\|/,
    )
    // Raw workers, Rewind in memory and Rewind on Redis, side by side, each every event of each burst.
    expect(results).toMatch(
      /every one of 15 events: yes \(3 bursts of 5\); raw node:http workers: yes; @rewind\/express in memory: yes/,
    )
    expect(results).toMatch(
      /Slowest delivery of a burst of 5 events to all 2,000 connections through Redis: \d+ ms \(median \d+ ms\) vs @rewind\/express in memory \d+ ms \(median \d+ ms\) = [\d.]+× \(median rounds; worst rounds [\d.]+×\); raw node:http workers, the floor: \d+ ms \(median \d+ ms\), in memory \/ raw = [\d.]+×/,
    )
  }, 180_000)
})
