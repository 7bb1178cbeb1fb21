/**
 * The modules of each package form a one-way graph: no import cycle in packages/*\/src, counting
 * type-only imports and re-exports too. A type-only cycle costs nothing at run time, but it means a
 * child module knows its owner (and can't be understood or tested without it).
 *
 * And each name has one home: only a package's entry points (the src files behind its `exports`)
 * re-export. An inner module that re-exports lets the same type be imported from two places, and
 * the entry points stop being the one list of what is public.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import ts from 'typescript'
import { describe, expect, it } from 'vitest'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const PACKAGES = readdirSync(join(ROOT, 'packages'))

/** Each module of a package's src (by file name) and the modules of that src it imports. */
function importGraph(pkg: string): Map<string, string[]> {
  const src = join(ROOT, 'packages', pkg, 'src')
  const graph = new Map<string, string[]>()
  for (const name of readdirSync(src).filter((file) => file.endsWith('.ts'))) {
    // preProcessFile lists every import and export-from, `import type` included.
    const { importedFiles } = ts.preProcessFile(readFileSync(join(src, name), 'utf8'), true, true)
    const local = importedFiles
      .map((file) => file.fileName)
      .filter((specifier) => specifier.startsWith('.'))
      .map((specifier) =>
        resolve(src, specifier)
          .slice(src.length + 1)
          .replace(/\.js$/, '.ts'),
      )
    graph.set(name, [...new Set(local)])
  }
  return graph
}

/** The src modules behind a package's `exports` (`./dist/name.js` is built from `src/name.ts`). */
function entryPoints(pkg: string): string[] {
  const dir = join(ROOT, 'packages', pkg)
  const { exports } = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { exports: unknown }
  const targets = JSON.stringify(exports).match(/\.\/dist\/[\w-]+\.js/g) ?? []
  const names = [...new Set(targets.map((target) => target.slice('./dist/'.length, -'.js'.length)))]
  return names.map((name) => `${name}.ts`).filter((file) => existsSync(join(dir, 'src', file)))
}

/** The `export … from` statements of a module, `export type` and `export *` included. */
function reExports(source: string): string[] {
  const file = ts.createSourceFile('module.ts', source, ts.ScriptTarget.Latest)
  return file.statements
    .filter((statement) => ts.isExportDeclaration(statement) && statement.moduleSpecifier !== undefined)
    .map((statement) => statement.getText(file).replace(/\s+/g, ' '))
}

/** Every cycle found by a depth-first walk, each as the path that closes it. */
function cycles(graph: Map<string, string[]>): string[][] {
  const found: string[][] = []
  const done = new Set<string>()
  const path: string[] = []
  const visit = (module: string): void => {
    const at = path.indexOf(module)
    if (at !== -1) {
      found.push([...path.slice(at), module])
      return
    }
    if (done.has(module)) return
    path.push(module)
    for (const next of graph.get(module) ?? []) visit(next)
    path.pop()
    done.add(module)
  }
  for (const module of graph.keys()) visit(module)
  return found
}

describe('import graph', () => {
  it('finds a cycle, type-only or not', () => {
    const graph = new Map([
      ['a.ts', ['b.ts']],
      ['b.ts', ['c.ts']],
      ['c.ts', ['a.ts']],
      ['d.ts', ['a.ts']],
    ])
    expect(cycles(graph)).toEqual([['a.ts', 'b.ts', 'c.ts', 'a.ts']])
    const { importedFiles } = ts.preProcessFile(
      "import type { A } from './a.js'\nexport * from './b.js'\n",
      true,
      true,
    )
    expect(importedFiles.map((file) => file.fileName)).toEqual(['./a.js', './b.js'])
  })

  it('finds a re-export, whatever its form, and no other export', () => {
    const source = [
      "export { a } from './a.js'",
      "export type { B } from './b.js'",
      "export * from './c.js'",
      "export * as d from './d.js'",
      "import { e } from './e.js'",
      'export { e }',
      'export const f = 1',
    ].join('\n')
    expect(reExports(source)).toEqual([
      "export { a } from './a.js'",
      "export type { B } from './b.js'",
      "export * from './c.js'",
      "export * as d from './d.js'",
    ])
    expect(entryPoints('core')).toEqual(['index.ts', 'frame.ts', 'adapter.ts'])
  })

  it.each(PACKAGES)('has re-exports only in the entry points of packages/%s/src', (pkg) => {
    const src = join(ROOT, 'packages', pkg, 'src')
    const entries = entryPoints(pkg)
    expect(entries).toContain('index.ts')
    const found = readdirSync(src)
      .filter((file) => file.endsWith('.ts') && !entries.includes(file))
      .flatMap((file) => reExports(readFileSync(join(src, file), 'utf8')).map((line) => `${file}: ${line}`))
    expect(found).toEqual([])
  })

  it.each(PACKAGES)('has no cycle in packages/%s/src', (pkg) => {
    const graph = importGraph(pkg)
    expect(graph.size).toBeGreaterThan(0)
    expect(cycles(graph).map((cycle) => cycle.join(' → '))).toEqual([])
  })
})
