/** The built package loads from ESM and CommonJS, with the same exports. */
import { execFileSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'

const cwd = fileURLToPath(new URL('..', import.meta.url))
const run = (args: string[]) =>
  JSON.parse(execFileSync(process.execPath, args, { cwd, encoding: 'utf8' })) as string[]

describe('packaging', () => {
  it('exposes the same names to import and require', () => {
    const esm = run([
      '--input-type=module',
      '-e',
      "const m = await import('@rewind/core'); console.log(JSON.stringify(Object.keys(m).sort()))",
    ])
    const cjs = run(['-e', "console.log(JSON.stringify(Object.keys(require('@rewind/core')).sort()))"])
    expect(esm).toEqual(cjs)
    expect(esm).toEqual(
      expect.arrayContaining(['createHub', 'RewindError', 'encodeEvent', 'createMemoryStore']),
    )
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
