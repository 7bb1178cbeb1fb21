/** The built package loads from ESM and CommonJS, with the same exports. */
import { execFileSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'

const cwd = fileURLToPath(new URL('..', import.meta.url))
const run = (args: string[]) =>
  JSON.parse(execFileSync(process.execPath, args, { cwd, encoding: 'utf8' })) as string[]

describe('packaging', () => {
  it.each(['@rewind/core', '@rewind/core/frame', '@rewind/core/adapter'])(
    'exposes the same names to import and require from %s',
    (entry) => {
      const esm = run([
        '--input-type=module',
        '-e',
        `const m = await import('${entry}'); console.log(JSON.stringify(Object.keys(m).sort()))`,
      ])
      const cjs = run(['-e', `console.log(JSON.stringify(Object.keys(require('${entry}')).sort()))`])
      expect(esm).toEqual(cjs)
      expect(esm.length).toBeGreaterThan(0)
    },
  )

  it('shares one copy of each class between the entries, in each format', () => {
    // A bundle per entry would give the adapter entry its own Hub class: hubFromOptions would then
    // refuse every hub made by createHub, and RewindError would not be one class.
    for (const format of ['esm', 'cjs']) {
      const load =
        format === 'esm'
          ? "const root = await import('@rewind/core'); const adapter = await import('@rewind/core/adapter'); const frame = await import('@rewind/core/frame')"
          : "const root = require('@rewind/core'); const adapter = require('@rewind/core/adapter'); const frame = require('@rewind/core/frame')"
      const out = execFileSync(
        process.execPath,
        [
          ...(format === 'esm' ? ['--input-type=module'] : []),
          '-e',
          `${load}
           const hub = root.createHub()
           const same = adapter.hubFromOptions({ hub }) === hub
           let rewind = false
           try { frame.assertFieldValue('event', 'a\\nb') } catch (e) { rewind = e instanceof root.RewindError }
           hub.close().then(() => console.log(JSON.stringify({ same, rewind })))`,
        ],
        { cwd, encoding: 'utf8' },
      )
      expect({ format, ...JSON.parse(out) }).toEqual({ format, same: true, rewind: true })
    }
  })

  it('works from CommonJS end to end', () => {
    const out = execFileSync(
      process.execPath,
      [
        '-e',
        `const { createHub, RewindError } = require('@rewind/core')
         const hub = createHub()
         const id = hub.publish('s', { data: 'x' })
         let code
         try { hub.publish('s', { event: 'a\\nb', data: 1 }) } catch (e) { code = e instanceof RewindError && e.code }
         hub.close().then(() => console.log(JSON.stringify({ id, code })))`,
      ],
      { cwd, encoding: 'utf8' },
    )
    expect(JSON.parse(out)).toEqual({ id: expect.stringMatching(/^[0-9a-z]+-1$/), code: 'ERR_INVALID_FIELD' })
  })
})
