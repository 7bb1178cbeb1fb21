/** Guards on the repository itself: what the README promises is what CI runs. */
import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'

const read = (path: string) => readFileSync(new URL(`../${path}`, import.meta.url), 'utf8')
const rootPackage = JSON.parse(read('package.json')) as {
  packageManager: string
  scripts: Record<string, string>
}
const pnpmVersion = rootPackage.packageManager

/** Lines of a shell script that do something: no shebang, comments or blank lines. */
function commands(script: string): string[] {
  return script
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'))
}

/** A root script's steps (`a && b`), with `pnpm <script>` steps expanded into theirs. */
function steps(name: string): string[] {
  return rootPackage.scripts[name]!.split(' && ').flatMap((step) => {
    const nested = /^pnpm (\w[\w:-]*)$/.exec(step)?.[1]
    return nested !== undefined && rootPackage.scripts[nested] !== undefined ? steps(nested) : [step]
  })
}

describe('repository', () => {
  it("runs in CI exactly the README's test command, and nothing else", () => {
    const testCommand = `npx -y ${pnpmVersion} install --frozen-lockfile && npx -y ${pnpmVersion} test`
    expect(read('README.md')).toContain(`\n${testCommand}\n`)
    // Besides that line, .ci/run may only set the shell's options, move to the root and set CI.
    expect(commands(read('.ci/run'))).toEqual([
      'set -euo pipefail',
      'cd "$(dirname "$0")/.."',
      // biome-ignore lint/suspicious/noTemplateCurlyInString: a shell parameter expansion, not a template
      'export CI="${CI:-true}"',
      testCommand,
    ])
  })

  it('makes `pnpm test` do the set-up and every check, then the tests', () => {
    expect(steps('test')).toEqual([
      'bash scripts/provision.sh',
      'pnpm -r --filter "./packages/*" run build',
      'biome check .',
      ...steps('typecheck'),
      ...steps('publint'),
      'vitest run',
    ])
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
