/** The built package loads from ESM and CommonJS, with the same exports, and works from CommonJS. */
import { execFile, execFileSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { listen, openStream } from './support/server.js'

const cwd = fileURLToPath(new URL('..', import.meta.url))

describe('packaging', () => {
  it('exposes the same names to import and require', () => {
    const names = (args: string[]) =>
      JSON.parse(execFileSync(process.execPath, args, { cwd, encoding: 'utf8' })) as string[]
    const esm = names([
      '--input-type=module',
      '-e',
      "const m = await import('@rewind/client'); console.log(JSON.stringify(Object.keys(m).sort()))",
    ])
    const cjs = names(['-e', "console.log(JSON.stringify(Object.keys(require('@rewind/client')).sort()))"])
    expect(esm).toEqual(cjs)
    expect(esm).toEqual(
      expect.arrayContaining(['createEventSource', 'RewindEventSource', 'RewindClientError']),
    )
  })

  it('receives a stream from CommonJS end to end', async () => {
    const server = await listen((_req, res) => {
      openStream(res)
      res.end('id: 1\ndata: from cjs\n\nevent: rewind-end\ndata: done\n\n')
    })
    const script = `const { createEventSource } = require('@rewind/client')
      const source = createEventSource(${JSON.stringify(server.url())})
      const seen = []
      source.onmessage = (event) => seen.push(event.data)
      source.onend = (event) => console.log(JSON.stringify({ seen, reason: event.reason }))`
    const output = await new Promise<string>((resolve, reject) => {
      execFile(process.execPath, ['-e', script], { cwd, timeout: 10_000 }, (error, stdout) =>
        error ? reject(error) : resolve(stdout),
      )
    })
    expect(JSON.parse(output)).toEqual({ seen: ['from cjs'], reason: 'done' })
  })
})
