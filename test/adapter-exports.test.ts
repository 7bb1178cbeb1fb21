/**
 * The public surface of the three framework adapters, values and types, pinned as core's is in
 * packages/core/test/exports.test.ts, and each name documented in the adapter's README ("Exports").
 *
 * The core names they re-export are one list, kept here: the core types their own signatures use
 * (options, handlers, `publish`) and `RewindError`, what they throw. Everything else, `createHub`
 * included, is imported from `@rewind/core`, the peer dependency every app installs, so an adapter
 * never becomes a second home for a core name, and the three cannot drift apart.
 */
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import ts from 'typescript'
import { describe, expect, it } from 'vitest'
import * as express from '../packages/express/src/index.js'
import * as fastify from '../packages/fastify/src/index.js'
import * as fetch from '../packages/fetch/src/index.js'
import { exportedNames } from './support/exported-names.js'

const ROOT = fileURLToPath(new URL('..', import.meta.url))

const CORE_REEXPORTS = [
  'Hub',
  'HubOptions',
  'PublishInput',
  'RewindError',
  'ServeOptions',
  'StreamSource',
  'Subscription',
]

/** The core types among the shared re-exports (`RewindError` is the one value). */
const CORE_TYPES = CORE_REEXPORTS.filter((name) => name !== 'RewindError')

/** Each adapter's own names; its types also include `CORE_TYPES`. */
const ADAPTERS = {
  express: {
    runtime: express,
    values: ['RewindError', 'sse'],
    types: [
      'ServeOptionsResolver',
      'SourceResolver',
      'SseCloseOptions',
      'SseMiddleware',
      'SseOptions',
      'SseResponder',
    ],
  },
  fastify: {
    runtime: fastify,
    values: ['RewindError', 'default', 'ssePlugin'],
    types: ['SsePluginOptions'],
  },
  fetch: {
    runtime: fetch,
    values: ['DEFAULT_FETCH_HEARTBEAT_INTERVAL', 'DEFAULT_MAX_DURATION_MARGIN', 'RewindError', 'sse'],
    types: ['FetchHandler', 'FetchSse', 'FetchSseOptions', 'ServeOptionsResolver', 'SourceResolver'],
  },
} as const

const names = Object.keys(ADAPTERS) as (keyof typeof ADAPTERS)[]
const entry = (name: string): string => `${ROOT}packages/${name}/src/index.ts`
const namesOf = exportedNames(names.map(entry))

/** The names a module re-exports from `@rewind/core`, as written in its source. */
function coreReExports(source: string): string[] {
  const file = ts.createSourceFile('index.ts', source, ts.ScriptTarget.Latest)
  return file.statements.flatMap((statement) =>
    ts.isExportDeclaration(statement) &&
    statement.moduleSpecifier !== undefined &&
    ts.isStringLiteral(statement.moduleSpecifier) &&
    statement.moduleSpecifier.text === '@rewind/core' &&
    statement.exportClause !== undefined &&
    ts.isNamedExports(statement.exportClause)
      ? statement.exportClause.elements.map((element) => element.name.text)
      : [],
  )
}

describe.each(names)('@rewind/%s exports', (name) => {
  const adapter = ADAPTERS[name]

  it('its own names, and the shared core ones', () => {
    expect(namesOf(entry(name), adapter.runtime)).toEqual({
      values: [...adapter.values].sort(),
      types: [...adapter.types, ...CORE_TYPES].sort(),
    })
  })

  it('re-exports exactly the shared list of core names', () => {
    const reExported = coreReExports(readFileSync(entry(name), 'utf8'))
    expect(reExported.sort()).toEqual([...CORE_REEXPORTS].sort())
  })

  it('documents every exported name in its README', () => {
    const readme = readFileSync(`${ROOT}packages/${name}/README.md`, 'utf8')
    const documented = [...adapter.values, ...adapter.types, ...CORE_TYPES].filter((n) => n !== 'default')
    expect(documented.filter((n) => !readme.includes(`\`${n}`))).toEqual([])
  })
})

it('finds the core re-exports, type-only or not, and nothing else', () => {
  const source = [
    "export { type Hub, RewindError } from '@rewind/core'",
    "export type { ServeOptions } from '@rewind/core'",
    "export { sse } from './sse.js'",
    "import { createHub } from '@rewind/core'",
  ].join('\n')
  expect(coreReExports(source)).toEqual(['Hub', 'RewindError', 'ServeOptions'])
})
