/**
 * Every way to load the BUILT package works: ESM default and named imports, and CommonJS require of
 * both names. Each runs in a child `node` from the package folder, so resolution goes through the
 * package's own `exports` map, as it does for users.
 */
import { execFile } from 'node:child_process'
import { existsSync, statSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { beforeAll, describe, expect, it } from 'vitest'

const run = promisify(execFile)
const packageDir = fileURLToPath(new URL('..', import.meta.url))
const built = ['dist/index.js', 'dist/index.cjs', 'dist/index.d.ts', 'dist/index.d.cts']

/** Builds the package unless dist is complete and newer than the source. */
beforeAll(async () => {
  const source = statSync(new URL('../src/index.ts', import.meta.url)).mtimeMs
  const fresh = built.every((file) => {
    const path = new URL(`../${file}`, import.meta.url)
    return existsSync(path) && statSync(path).mtimeMs >= source
  })
  if (!fresh) await run('pnpm', ['run', 'build'], { cwd: packageDir, timeout: 120_000 })
}, 130_000)

/**
 * A script body that registers `plugin` on a new app, serves a finite iterable through `reply.sse`
 * (so `inject` resolves), and prints what it saw as JSON.
 */
const exercise = (plugin: string) => `
  const app = Fastify()
  await app.register(${plugin})
  app.get('/events', (request, reply) => reply.sse((async function* () { yield 'hi' })()))
  const response = await app.inject({ url: '/events' })
  const result = {
    hub: typeof app.sse.publish === 'function',
    status: response.statusCode,
    type: response.headers['content-type'],
    body: response.body.includes('data: hi\\n\\n'),
  }
  await app.close()
  return result
`

const expected = { hub: true, status: 200, type: 'text/event-stream; charset=utf-8', body: true }

async function node(args: string[]): Promise<unknown> {
  const { stdout } = await run(process.execPath, args, { cwd: packageDir, timeout: 20_000 })
  return JSON.parse(stdout)
}

describe('the built package', () => {
  it('ESM: default import', async () => {
    const script = `
      import Fastify from 'fastify'
      import ssePlugin from '@rewind/fastify'
      const check = async () => { ${exercise('ssePlugin')} }
      console.log(JSON.stringify(await check()))
    `
    expect(await node(['--input-type=module', '-e', script])).toEqual(expected)
  })

  it('ESM: named imports, including the re-exported RewindError (the same class as the core one)', async () => {
    const script = `
      import Fastify from 'fastify'
      import { RewindError as CoreError } from '@rewind/core'
      import ssePlugin, { ssePlugin as named, RewindError } from '@rewind/fastify'
      const check = async () => { ${exercise('named')} }
      console.log(JSON.stringify({
        ...(await check()),
        same: named === ssePlugin,
        sameError: RewindError === CoreError,
        error: new RewindError('ERR_CLOSED', 'x').code,
      }))
    `
    expect(await node(['--input-type=module', '-e', script])).toEqual({
      ...expected,
      same: true,
      sameError: true,
      error: 'ERR_CLOSED',
    })
  })

  it('CommonJS: require(), through .default and .ssePlugin', async () => {
    const script = `
      const Fastify = require('fastify')
      const rewind = require('@rewind/fastify')
      const check = async (plugin) => { ${exercise('plugin')} }
      ;(async () => {
        console.log(JSON.stringify({
          viaDefault: await check(rewind.default),
          viaNamed: await check(rewind.ssePlugin),
          same: rewind.default === rewind.ssePlugin,
          error: typeof rewind.RewindError,
        }))
      })()
    `
    expect(await node(['-e', script])).toEqual({
      viaDefault: expected,
      viaNamed: expected,
      same: true,
      error: 'function',
    })
  })

  it('carries the fastify-plugin metadata (name and Fastify version range)', async () => {
    const script = `
      import ssePlugin from '@rewind/fastify'
      console.log(JSON.stringify(ssePlugin[Symbol.for('plugin-meta')]))
    `
    expect(await node(['--input-type=module', '-e', script])).toMatchObject({
      name: '@rewind/fastify',
      fastify: '5.x',
    })
  })
})
