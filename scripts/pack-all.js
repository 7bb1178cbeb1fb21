/**
 * Packs every package under packages/ into a folder, as the registry would receive them: `pnpm pack`
 * replaces the `workspace:` ranges with real versions, so the tarballs install with plain npm.
 *
 *   pnpm pack:all             # into ./packed
 *   pnpm pack:all -- /tmp/x   # into /tmp/x
 *   npm install ./packed/rewind-core-0.1.0.tgz ./packed/rewind-express-0.1.0.tgz express
 *
 * Run `pnpm build` first: the tarballs hold each package's dist/.
 */
import { execFileSync } from 'node:child_process'
import { mkdirSync, readdirSync, readFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const ROOT = fileURLToPath(new URL('..', import.meta.url))

/** The pinned pnpm, run through npx, so this works with or without pnpm on PATH. */
export function pnpm(args, options = {}) {
  const { packageManager } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'))
  return execFileSync('npx', ['-y', packageManager, ...args], { cwd: ROOT, encoding: 'utf8', ...options })
}

/**
 * Packs each package into `destination` (created if needed).
 *
 * @param {string} destination
 * @returns {string[]} the tarballs' paths, by file name
 */
export function packAll(destination) {
  mkdirSync(destination, { recursive: true })
  pnpm(['-r', '--filter', './packages/*', 'pack', '--pack-destination', destination], { stdio: 'pipe' })
  return readdirSync(destination)
    .filter((name) => /^rewind-.+\.tgz$/.test(name))
    .sort()
    .map((name) => join(destination, name))
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const destination = resolve(process.argv[2] ?? join(ROOT, 'packed'))
  for (const tarball of packAll(destination)) console.log(tarball)
}
