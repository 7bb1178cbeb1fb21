/**
 * The modules of each package form a one-way graph: no import cycle in packages/*\/src, counting
 * type-only imports and re-exports too. A type-only cycle costs nothing at run time, but it means a
 * child module knows its owner (and can't be understood or tested without it).
 */
import { readdirSync, readFileSync } from 'node:fs'
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

  it.each(PACKAGES)('has no cycle in packages/%s/src', (pkg) => {
    const graph = importGraph(pkg)
    expect(graph.size).toBeGreaterThan(0)
    expect(cycles(graph).map((cycle) => cycle.join(' → '))).toEqual([])
  })
})
