/**
 * Every ```js and ```ts block of the READMEs (root and packages) and of docs/ compiles and runs as
 * written, so a snippet that throws or does not compile fails CI instead of the reader.
 *
 * - Every block is type-checked as TypeScript under `strict` (what a reader's project has). A JS
 *   block is checked as if it were TS: it must work when pasted into either.
 * - A block is a program unless the line before it (blank lines aside) is a marker:
 *   - `<!-- snippet: fragment -->`: server code that continues the example above it. It is only
 *     type-checked, with Node's types, against the declarations in test/snippets/preamble.d.ts
 *     (the `app`, `events`, `express`, `fastify` of the surrounding prose and the app functions it
 *     names).
 *   - `<!-- snippet: browser -->`: code for a page. It is only type-checked, with the browser's DOM
 *     types and not Node's (a page has no `process` or `Buffer`), against the declarations in
 *     test/snippets/page.d.ts (the `source` of the surrounding prose and the page functions it
 *     names).
 * - A program runs in its own Node process, written into a temporary folder of the workspace so
 *   that `@rewind/*` resolve as they do in an app (through the root's node_modules only: the
 *   `NODE_PATH` a package manager's script runner sets is removed, or a `require` would find
 *   packages an app does not have). Its `listen(3000)` is moved to a free port of 127.0.0.1
 *   (test/snippets/listen-shim.mjs); once it listens it must answer `GET /events` with an event
 *   stream, and it is then stopped with SIGTERM. A program that does not listen must exit 0.
 * - Every ```ts block of a TSDoc `@example` in packages/*\/src is type-checked too, as a fragment
 *   (a browser block for `@rewind/client` and `@rewind/ai-sdk/client`), with the lines of
 *   test/snippets/examples.ts it needs put above it: its package's exports and the names its TSDoc
 *   takes for granted. An `@example` must hold exactly one ```ts block.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { get } from 'node:http'
import { join, relative } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import ts from 'typescript'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { contextKey, EXAMPLE_CONTEXT } from './snippets/examples.js'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const PREAMBLE = join(ROOT, 'test/snippets/preamble.d.ts')
const PAGE = join(ROOT, 'test/snippets/page.d.ts')
const LISTEN_SHIM = pathToFileURL(join(ROOT, 'test/snippets/listen-shim.mjs')).href
/** `<!-- snippet: fragment -->` or `<!-- snippet: browser -->`, on the line before a block. */
const MARKER = /^<!-- snippet: (fragment|browser) -->$/
/** How long a program may take to listen (or exit), and to stop after SIGTERM. */
const START_TIMEOUT = 20_000
const STOP_TIMEOUT = 10_000
/** How long the event stream of a program must stay open to count as served. */
const OPEN_FOR = 500

interface Snippet {
  /** `path:line` of the opening fence, for the test name and the messages. */
  readonly where: string
  readonly lang: 'js' | 'ts'
  readonly code: string
  /** A program runs; a fragment (server code) and a browser block are only type-checked. */
  readonly kind: 'program' | 'fragment' | 'browser'
  /** A block that uses `require` and no `import` is CommonJS. */
  readonly commonjs: boolean
  /** File name stem in the temporary folder. */
  readonly stem: string
  /** Lines put above the block before it is checked (an `@example`'s context), so 0 for a README's. */
  readonly offset: number
}

function markdownFiles(): string[] {
  const inDir = (dir: string) =>
    readdirSync(join(ROOT, dir))
      .filter((name) => name.endsWith('.md'))
      .map((name) => `${dir}/${name}`)
  const packages = readdirSync(join(ROOT, 'packages')).map((name) => `packages/${name}/README.md`)
  return ['README.md', ...packages, ...inDir('docs')]
}

function extract(path: string): Snippet[] {
  const lines = readFileSync(join(ROOT, path), 'utf8').split('\n')
  const snippets: Snippet[] = []
  for (let i = 0; i < lines.length; i++) {
    const lang = /^```(js|ts)\s*$/.exec(lines[i] ?? '')?.[1] as 'js' | 'ts' | undefined
    if (lang === undefined) {
      if (lines[i]?.startsWith('```')) i = closingFence(lines, i) // skip sh, json, ... blocks whole
      continue
    }
    const end = closingFence(lines, i)
    const code = `${lines.slice(i + 1, end).join('\n')}\n`
    let before = i - 1
    while (before >= 0 && lines[before]?.trim() === '') before--
    snippets.push({
      where: `${path}:${i + 1}`,
      lang,
      code,
      kind:
        (MARKER.exec(lines[before]?.trim() ?? '')?.[1] as 'fragment' | 'browser' | undefined) ?? 'program',
      commonjs: /\brequire\(/.test(code) && !/^import\b/m.test(code),
      stem: `${path.replace(/[^a-z0-9]+/gi, '-')}-${i + 1}`,
      offset: 0,
    })
    i = end
  }
  return snippets
}

function sourceFiles(): string[] {
  return readdirSync(join(ROOT, 'packages')).flatMap((dir) =>
    readdirSync(join(ROOT, 'packages', dir, 'src'))
      .filter((name) => name.endsWith('.ts'))
      .map((name) => `packages/${dir}/src/${name}`),
  )
}

const EXAMPLE_TAG = /^\s*\*\s*@example\b/
/** A TSDoc line without its leading `*` and the one space after it. */
const docLine = (line: string | undefined) => (line ?? '').replace(/^\s*\*( |$)/, '')

/** The ```ts block of each `@example` in `path`, with the context lines it uses put above it. */
function extractExamples(path: string): Snippet[] {
  const [, dir = '', file = ''] = /^packages\/([^/]+)\/src\/(.+)$/.exec(path) ?? []
  const key = contextKey(dir, file)
  const context = EXAMPLE_CONTEXT[key]
  const lines = readFileSync(join(ROOT, path), 'utf8').split('\n')
  const snippets: Snippet[] = []
  for (let i = 0; i < lines.length; i++) {
    if (!EXAMPLE_TAG.test(lines[i] ?? '')) continue
    if (docLine(lines[i + 1]).trim() !== '```ts') {
      throw new Error(`${path}:${i + 1}: an @example must open with a \`\`\`ts fence on the next line`)
    }
    let end = i + 2
    while (end < lines.length && docLine(lines[end]).trim() !== '```') end++
    if (end === lines.length) throw new Error(`${path}:${i + 2}: unclosed code block in an @example`)
    const code = lines
      .slice(i + 2, end)
      .map(docLine)
      .join('\n')
    if (context === undefined)
      throw new Error(`${path}:${i + 1}: no entry for ${key} in test/snippets/examples.ts`)
    const header = /^import\b/m.test(code) ? [] : contextFor(code, context)
    snippets.push({
      where: `${path}:${i + 1}`,
      lang: 'ts',
      code: `${[...header, code].join('\n')}\n`,
      kind: dir === 'client' || key === 'ai-sdk/client' ? 'browser' : 'fragment',
      commonjs: false,
      stem: `${path.replace(/[^a-z0-9]+/gi, '-')}-${i + 1}`,
      offset: header.length,
    })
    i = end
  }
  return snippets
}

/** The context lines of the names `code` uses and does not declare itself. */
function contextFor(code: string, context: Readonly<Record<string, string>>): string[] {
  return Object.entries(context)
    .filter(([name]) => new RegExp(`(?<![.\\w$])${name}\\b`).test(code))
    .filter(
      ([name]) => !new RegExp(`\\b(?:const|let|var|function|class|interface|type)\\s+${name}\\b`).test(code),
    )
    .map(([, line]) => line)
}

function closingFence(lines: string[], open: number): number {
  for (let i = open + 1; i < lines.length; i++) if (lines[i]?.startsWith('```')) return i
  throw new Error(`unclosed code block at line ${open + 1}`)
}

const EXAMPLES = sourceFiles().flatMap(extractExamples)
const SNIPPETS = [...markdownFiles().flatMap(extract), ...EXAMPLES]
const PROGRAMS = SNIPPETS.filter((snippet) => snippet.kind === 'program')

let dir: string
/** Type errors by snippet, from one program over the server blocks and one over the browser blocks. */
const typeErrors = new Map<Snippet, string[]>()

beforeAll(() => {
  // Inside the workspace, so the snippets resolve the packages through the root's node_modules.
  dir = mkdtempSync(join(ROOT, '.snippets-'))
  mkdirSync(join(dir, 'check'))
  const server = SNIPPETS.filter((snippet) => snippet.kind !== 'browser')
  const browser = SNIPPETS.filter((snippet) => snippet.kind === 'browser')
  typeCheck(server, PREAMBLE, { lib: ['lib.es2023.d.ts'], types: ['node'] })
  typeCheck(browser, PAGE, { lib: ['lib.es2023.d.ts', 'lib.dom.d.ts', 'lib.dom.iterable.d.ts'], types: [] })
}, 120_000)

/** Type-checks `snippets` as one program with `declarations`, into {@link typeErrors}. */
function typeCheck(snippets: Snippet[], declarations: string, options: ts.CompilerOptions): void {
  const checked = new Map<string, Snippet>()
  for (const snippet of snippets) {
    const file = join(dir, 'check', `${snippet.stem}.${snippet.commonjs ? 'cts' : 'mts'}`)
    writeFileSync(file, snippet.code)
    checked.set(file, snippet)
    typeErrors.set(snippet, [])
  }
  const program = ts.createProgram([...checked.keys(), declarations], {
    strict: true,
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    moduleDetection: ts.ModuleDetectionKind.Force,
    skipLibCheck: true,
    noEmit: true,
    ...options,
  })
  for (const diagnostic of ts.getPreEmitDiagnostics(program)) {
    const file = diagnostic.file?.fileName
    const snippet = file === undefined ? undefined : checked.get(file)
    const message = ts.flattenDiagnosticMessageText(diagnostic.messageText, '\n')
    if (snippet === undefined) throw new Error(`type error outside the snippets: ${file}: ${message}`)
    const { line } = ts.getLineAndCharacterOfPosition(diagnostic.file!, diagnostic.start ?? 0)
    const where =
      line < snippet.offset
        ? `line ${line + 1} of its added context`
        : `line ${line + 1 - snippet.offset} of the block`
    typeErrors.get(snippet)!.push(`${where}: ${message}`)
  }
}

afterAll(() => {
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true })
})

describe('README snippets', () => {
  it('are found, and the fragments are marked', () => {
    expect(PROGRAMS.length).toBeGreaterThan(0)
    expect(SNIPPETS.length).toBeGreaterThan(PROGRAMS.length)
    expect(SNIPPETS.some((snippet) => snippet.kind === 'browser')).toBe(true)
    // Every package with sources shows at least one: the extraction did not silently miss them.
    const packages = new Set(EXAMPLES.map((example) => example.where.split('/')[1]))
    expect([...packages].sort()).toEqual(
      ['ai-sdk', 'client', 'core', 'express', 'fastify', 'fetch', 'postgres', 'redis'].sort(),
    )
  })

  it.each(SNIPPETS.map((snippet) => [snippet.where, snippet] as const))('%s compiles', (_where, snippet) => {
    expect(typeErrors.get(snippet)).toEqual([])
  })

  it.each(PROGRAMS.map((snippet) => [snippet.where, snippet] as const))(
    '%s runs and answers GET /events',
    async (_where, snippet) => {
      const file = join(dir, `${snippet.stem}.${snippet.commonjs ? 'cjs' : 'mjs'}`)
      const code =
        snippet.lang === 'ts'
          ? ts.transpileModule(snippet.code, {
              compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
            }).outputText
          : snippet.code
      writeFileSync(file, code)
      const result = await runProgram(file)
      if (!result.ok) expect.fail(`${result.why}\n--- output of ${result.file} ---\n${result.output}`)
    },
    START_TIMEOUT + STOP_TIMEOUT + 10_000,
  )
})

type RunResult =
  | { ok: true; listened: boolean }
  | { ok: false; why: string; output: string; file: string; listened?: boolean }

async function runProgram(file: string): Promise<RunResult> {
  const {
    REDIS_URL = 'redis://127.0.0.1:6379',
    DATABASE_URL = 'postgres://postgres@127.0.0.1:5432/test',
    NODE_PATH: _,
    ...env
  } = process.env
  const child = spawn(process.execPath, ['--import', LISTEN_SHIM, file], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    env: { ...env, REDIS_URL, DATABASE_URL },
  })
  let output = ''
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk))
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk))
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  )
  const listening = new Promise<{ address: string; port: number }>((resolve) =>
    child.once('message', (message) => resolve(message as { address: string; port: number })),
  )
  const fail = (why: string, listened?: boolean): RunResult => ({
    ok: false,
    why,
    output: output.slice(-4000),
    file: relative(ROOT, file),
    ...(listened === undefined ? {} : { listened }),
  })
  try {
    const first = await within(START_TIMEOUT, Promise.race([listening, exited]))
    if (first === undefined) return fail(`neither listened nor exited within ${START_TIMEOUT} ms`)
    if ('code' in first) {
      return first.code === 0
        ? { ok: true, listened: false }
        : fail(`exited with ${first.code ?? first.signal}`)
    }
    const answer = await getEvents(first.address, first.port)
    if (answer.status !== 200 || !answer.contentType.startsWith('text/event-stream') || !answer.stayedOpen) {
      const ended = answer.stayedOpen ? '' : ' and ended the stream at once'
      return fail(`GET /events answered ${answer.status} ${answer.contentType}${ended}`, true)
    }
    child.kill('SIGTERM')
    if ((await within(STOP_TIMEOUT, exited)) === undefined) return fail('did not stop after SIGTERM', true)
    return { ok: true, listened: true }
  } finally {
    stop(child)
    await exited
  }
}

function stop(child: ChildProcess): void {
  if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
}

/**
 * `GET /events`: its status and content type, and whether the stream was still open
 * {@link OPEN_FOR} ms later (a hub that refuses the client answers and ends at once); the
 * connection is then dropped.
 */
function getEvents(
  address: string,
  port: number,
): Promise<{ status: number; contentType: string; stayedOpen: boolean }> {
  return new Promise((resolve, reject) => {
    const request = get(
      { host: address, port, path: '/events', headers: { accept: 'text/event-stream' }, timeout: 10_000 },
      (response) => {
        const answer = {
          status: response.statusCode ?? 0,
          contentType: response.headers['content-type'] ?? '',
        }
        response.resume()
        const timer = setTimeout(() => {
          response.off('close', ended)
          resolve({ ...answer, stayedOpen: true })
          response.destroy()
        }, OPEN_FOR)
        const ended = () => {
          clearTimeout(timer)
          resolve({ ...answer, stayedOpen: false })
        }
        response.once('close', ended)
      },
    )
    request.once('timeout', () => request.destroy(new Error('GET /events timed out')))
    request.once('error', reject)
  })
}

/** `promise`'s value, or undefined after `ms`; the timer is cleared either way. */
async function within<T>(ms: number, promise: Promise<T>): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<undefined>((resolve) => {
    timer = setTimeout(resolve, ms, undefined)
  })
  try {
    return await Promise.race([promise, timeout])
  } finally {
    clearTimeout(timer)
  }
}
