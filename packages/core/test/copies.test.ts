/**
 * Two copies of `@rewind/core` in one app (two versions side by side, or one package loaded through
 * both `import` and `require`) each have their own `Hub` class, so `instanceof Hub` fails for a hub
 * made by the other copy. The adapters must then say so and how to fix it, not "not a hub".
 */
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { thrownBy } from '../../../test/support/throws.js'
import { hubFromOptions } from '../src/adapter.js'
import { RewindError } from '../src/errors.js'
import { createHub } from '../src/index.js'
import { CORE_VERSION } from '../src/version.js'

const PACKAGE_DIR = fileURLToPath(new URL('..', import.meta.url))

describe('a hub from another copy of @rewind/core', () => {
  it('is refused with both versions named and the fix', () => {
    // What another copy's hub looks like from here: not an instance of this Hub, but branded.
    const foreign = Object.create(null) as Record<symbol, unknown>
    foreign[Symbol.for('rewind.hub')] = '0.0.9'
    const caught = thrownBy(() => hubFromOptions({ hub: foreign as never }))
    expect(caught).toBeInstanceOf(RewindError)
    expect(caught).toMatchObject({ code: 'ERR_INVALID_ARGUMENT', field: 'hub' })
    expect((caught as Error).message).toContain(
      `two copies of @rewind/core are installed (${CORE_VERSION} and 0.0.9): dedupe them`,
    )
  })

  it('is refused when one copy is loaded with import and the other with require', () => {
    // The built package, loaded by Node itself: ESM and CommonJS builds are two copies in one process.
    const out = execFileSync(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `import { createRequire } from 'node:module'
         const esm = await import('@rewind/core')
         const cjs = createRequire(process.cwd() + '/')('@rewind/core/adapter')
         const hub = esm.createHub()
         try { cjs.hubFromOptions({ hub }); console.log(JSON.stringify('accepted')) }
         catch (error) { console.log(JSON.stringify(error.message)) }
         finally { await hub.close() }`,
      ],
      { cwd: PACKAGE_DIR, encoding: 'utf8' },
    )
    const message = JSON.parse(out) as string
    expect(message).toContain(
      `two copies of @rewind/core are installed (${CORE_VERSION} and ${CORE_VERSION})`,
    )
    expect(message).toContain('import')
  })

  it('is still told apart from a value that is no hub at all', () => {
    expect(() => hubFromOptions({ hub: {} as never })).toThrow('hub must be a hub made by createHub()')
  })

  it('does not trip on a hub of this copy', async () => {
    const hub = createHub()
    expect(hubFromOptions({ hub })).toBe(hub)
    await hub.close()
  })
})

describe('CORE_VERSION', () => {
  it("is the package's version, so the error above names the right one", () => {
    const pkg = JSON.parse(readFileSync(`${PACKAGE_DIR}/package.json`, 'utf8')) as { version: string }
    expect(CORE_VERSION).toBe(pkg.version)
  })
})
