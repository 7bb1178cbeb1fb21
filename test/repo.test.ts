/** Guards on the repository itself: what the README promises is what CI runs. */
import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'

const read = (path: string) => readFileSync(new URL(`../${path}`, import.meta.url), 'utf8')
const pnpmVersion = (JSON.parse(read('package.json')) as { packageManager: string }).packageManager

describe('repository', () => {
  it('runs in CI exactly the test command the README gives newcomers', () => {
    const ci = read('.ci/run')
    const testCommand = ci.split('\n').find((line) => line.startsWith('npx ') && line.endsWith(' test'))
    expect(testCommand, '.ci/run has no line running the tests').toBeDefined()
    expect(read('README.md')).toContain(testCommand)
  })

  it('pins the same pnpm everywhere', () => {
    expect(pnpmVersion).toMatch(/^pnpm@\d+\.\d+\.\d+$/)
    for (const file of ['README.md', '.ci/run']) {
      const used = read(file).match(/pnpm@\d+\.\d+\.\d+/g) ?? []
      expect(used.length, `${file} names no pinned pnpm`).toBeGreaterThan(0)
      for (const version of used) expect(version, file).toBe(pnpmVersion)
    }
  })
})
