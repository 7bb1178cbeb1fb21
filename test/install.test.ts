/**
 * The README's install path, as a user takes it: pack every package (scripts/pack-all.js), check
 * each tarball publishes (scripts/release-check.js: `npm publish --dry-run`), install the tarballs
 * into an empty project with plain npm, and run the README's Express and Fastify snippets there,
 * driven by a real `eventsource` client. The packages must be built (`pnpm build`).
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { basename, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { EventSource } from 'eventsource'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { packAll } from '../scripts/pack-all.js'
import { freePort } from './support/ports.js'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const README = readFileSync(join(ROOT, 'README.md'), 'utf8')
const WAIT = { timeout: 15_000, interval: 50 }

/** The first ```js block of the README that imports `module`. */
function snippet(module: string): string {
  const blocks = [...README.matchAll(/```js\n([\s\S]*?)```/g)].map((match) => match[1]!)
  const found = blocks.find((block) => block.includes(`from '${module}'`))
  if (found === undefined) throw new Error(`the README has no snippet importing ${module}`)
  return found
}

const work = mkdtempSync(join(tmpdir(), 'rewind-install-'))
const packed = join(work, 'packed')
const project = join(work, 'project')
const children: ChildProcess[] = []
const sources: EventSource[] = []

afterAll(() => {
  for (const source of sources) source.close()
  for (const child of children) if (child.exitCode === null) child.kill('SIGKILL')
  rmSync(work, { recursive: true, force: true })
})

describe('installing from the tarballs', () => {
  let tarballs: string[]

  beforeAll(() => {
    tarballs = packAll(packed)
  }, 60_000)

  it('packs every package, and each passes npm publish --dry-run', () => {
    expect(tarballs.map((tarball) => basename(tarball))).toEqual(
      readdirSync(join(ROOT, 'packages'))
        .map((name) => JSON.parse(readFileSync(join(ROOT, 'packages', name, 'package.json'), 'utf8')))
        .map(({ name, version }) => `${name.replace('@', '').replace('/', '-')}-${version}.tgz`)
        .sort(),
    )
    const output = execFileSync(process.execPath, [join(ROOT, 'scripts/release-check.js'), packed], {
      encoding: 'utf8',
    })
    for (const tarball of tarballs) {
      const [, name, version] = /^rewind-(.+)-(\d+\.\d+\.\d+)\.tgz$/.exec(basename(tarball))!
      expect(output).toContain(`release-check: @rewind/${name}@${version} would publish`)
    }
  }, 60_000)

  describe('the README snippets, installed with npm', () => {
    beforeAll(() => {
      execFileSync('mkdir', [project])
      writeFileSync(join(project, 'package.json'), JSON.stringify({ private: true, type: 'module' }))
      // The README's line, with Fastify's tarball and framework too. Frameworks come from npm's cache
      // when they are in it.
      execFileSync(
        'npm',
        [
          'install',
          '--prefer-offline',
          '--no-audit',
          '--no-fund',
          ...tarballs.filter((tarball) => /rewind-(core|express|fastify)-/.test(tarball)),
          'express',
          'fastify',
        ],
        { cwd: project, stdio: 'pipe' },
      )
    }, 180_000)

    /** Runs a README snippet on a free port and checks a published event reaches a client. */
    async function runSnippet(module: string): Promise<void> {
      const port = await freePort()
      const code = snippet(module).replace(/\b3000\b/, String(port))
      const file = join(project, `${module.replace(/\W/g, '-')}.js`)
      writeFileSync(file, code)
      let output = ''
      const child = spawn(process.execPath, [file], { cwd: project, stdio: ['ignore', 'pipe', 'pipe'] })
      children.push(child)
      child.stdout!.on('data', (chunk) => (output += chunk))
      child.stderr!.on('data', (chunk) => (output += chunk))
      const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
      const base = `http://127.0.0.1:${port}`
      await vi.waitFor(async () => {
        if (child.exitCode !== null) throw new Error(`the snippet exited:\n${output}`)
        await fetch(`${base}/nothing-here`)
      }, WAIT)

      const received: { id: string; data: string }[] = []
      const source = new EventSource(`${base}/events`)
      sources.push(source)
      source.addEventListener('headline', (event) =>
        received.push({ id: event.lastEventId, data: event.data }),
      )
      await new Promise((resolve) => source.addEventListener('open', resolve, { once: true }))
      const response = await fetch(`${base}/news`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ title: 'hello from the README' }),
      })
      expect(response.status).toBe(201)
      const { id } = (await response.json()) as { id: string }
      await vi.waitFor(() => expect(received).toHaveLength(1), WAIT)
      expect(received).toEqual([{ id, data: JSON.stringify({ title: 'hello from the README' }) }])
      source.close()

      // Both snippets end their streams and exit on SIGTERM.
      child.kill('SIGTERM')
      expect(await exited, output).toBe(0)
    }

    it("runs the README's Express snippet", () => runSnippet('@rewind/express'), 30_000)
    it("runs the README's Fastify snippet", () => runSnippet('@rewind/fastify'), 30_000)
  })
})
