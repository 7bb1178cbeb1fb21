/**
 * What every published package's manifest promises: one shared copy of `@rewind/core`, ranges that
 * let the app's package manager dedupe, and the license text in the tarball.
 */
import { readdirSync, readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const PACKAGES = readdirSync(`${ROOT}packages`)

interface Manifest {
  name: string
  files?: string[]
  dependencies?: Record<string, string>
  peerDependencies?: Record<string, string>
  devDependencies?: Record<string, string>
}

const manifest = (dir: string): Manifest =>
  JSON.parse(readFileSync(`${ROOT}packages/${dir}/package.json`, 'utf8')) as Manifest

describe('package manifests', () => {
  it.each(PACKAGES)('%s ships the root LICENSE', (dir) => {
    expect(manifest(dir).files).toContain('LICENSE')
    expect(readFileSync(`${ROOT}packages/${dir}/LICENSE`, 'utf8')).toBe(
      readFileSync(`${ROOT}LICENSE`, 'utf8'),
    )
  })

  // The client speaks plain SSE over HTTP and never loads core; every other package builds on it.
  it.each(PACKAGES.filter((dir) => dir !== 'core' && dir !== 'client'))(
    '%s takes @rewind/core as a peer',
    (dir) => {
      // A plain dependency would let the app end up with two copies, and a hub from one is not an
      // instance of the other's Hub class.
      const pkg = manifest(dir)
      expect(pkg.peerDependencies?.['@rewind/core']).toBe('workspace:^')
      expect(pkg.devDependencies?.['@rewind/core']).toBe('workspace:*')
      expect(pkg.dependencies?.['@rewind/core']).toBeUndefined()
    },
  )

  it.each(PACKAGES)('%s depends on ranges, not exact pins', (dir) => {
    // An exact pin in a library stops the app from deduping it with its own copy.
    const ranges = { ...manifest(dir).dependencies, ...manifest(dir).peerDependencies }
    for (const [name, range] of Object.entries(ranges)) {
      expect({ name, range }).toEqual({ name, range: expect.stringMatching(/^(\^|workspace:\^)/) })
    }
  })

  it.each(PACKAGES)('%s has no empty dependency lists', (dir) => {
    const pkg = manifest(dir)
    for (const key of ['dependencies', 'peerDependencies', 'devDependencies'] as const) {
      if (pkg[key] !== undefined) expect(Object.keys(pkg[key]), `${pkg.name} ${key}`).not.toEqual([])
    }
  })
})
