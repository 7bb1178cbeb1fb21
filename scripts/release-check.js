/**
 * Checks that every package would publish: packs them (scripts/pack-all.js), refuses a tarball whose
 * package.json still has a `workspace:` range or that lacks its dist/, and runs `npm publish
 * --dry-run` on each tarball. Exits 1 on the first problem. The test suite runs it (test/install.test.ts).
 *
 *   pnpm release:check            # packs into a temporary folder
 *   node scripts/release-check.js packed   # checks tarballs packed already
 *
 * `--offline`: the dry run needs nothing from the registry, and the check must not depend on the
 * network. Scoped packages publish as restricted unless told otherwise, hence `--access public`.
 */
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { packAll } from './pack-all.js'

/**
 * @param {string} tarball
 * @returns {{ name: string, version: string, files: string[] }} what npm would publish
 */
export function checkTarball(tarball) {
  const files = execFileSync('tar', ['-tzf', tarball], { encoding: 'utf8' }).trim().split('\n')
  const manifest = JSON.parse(
    execFileSync('tar', ['-xOzf', tarball, 'package/package.json'], { encoding: 'utf8' }),
  )
  const problems = []
  for (const field of ['dependencies', 'peerDependencies', 'optionalDependencies']) {
    for (const [name, range] of Object.entries(manifest[field] ?? {})) {
      if (String(range).startsWith('workspace:')) problems.push(`${field}.${name} is "${range}"`)
    }
  }
  if (!files.some((file) => file.startsWith('package/dist/'))) problems.push('no dist/: run pnpm build first')
  if (problems.length > 0) throw new Error(`${tarball} cannot be published: ${problems.join('; ')}`)
  // --json: npm's summary of what it would publish, on stdout; its notices go to stderr.
  const output = execFileSync(
    'npm',
    ['publish', '--dry-run', '--offline', '--access', 'public', '--json', resolve(tarball)],
    { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], cwd: tmpdir() },
  )
  const summary = JSON.parse(output)
  const published = summary[manifest.name] ?? summary
  if (published.name !== manifest.name || published.version !== manifest.version) {
    throw new Error(`npm publish --dry-run of ${tarball} reported ${output}`)
  }
  return { name: manifest.name, version: manifest.version, files: published.files.map((file) => file.path) }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const given = process.argv[2]
  const folder = given === undefined ? mkdtempSync(join(tmpdir(), 'rewind-release-')) : resolve(given)
  try {
    const tarballs =
      given === undefined
        ? packAll(folder)
        : readdirSync(folder)
            .filter((name) => /^rewind-.+\.tgz$/.test(name))
            .map((name) => join(folder, name))
    if (tarballs.length === 0) throw new Error(`no rewind-*.tgz in ${folder}`)
    for (const tarball of tarballs) {
      const { name, version, files } = checkTarball(tarball)
      console.log(`release-check: ${name}@${version} would publish (${files.length} files)`)
    }
  } catch (error) {
    console.error(`release-check: ${error.message}`)
    process.exitCode = 1
  } finally {
    if (given === undefined) rmSync(folder, { recursive: true, force: true })
  }
}
