/**
 * The names an entry point exports, by the TypeScript checker, so a test can pin the types as well
 * as the values (`Object.keys` of the module sees only what exists at run time).
 */
import ts from 'typescript'

const OPTIONS: ts.CompilerOptions = {
  module: ts.ModuleKind.NodeNext,
  moduleResolution: ts.ModuleResolutionKind.NodeNext,
  target: ts.ScriptTarget.ES2022,
  strict: true,
  skipLibCheck: true,
  noEmit: true,
  types: ['node'],
}

/**
 * Reads `entries` (`.ts` files) with one program, and returns a function that lists every name one
 * of them exports, split into `values` (the names of `runtime`, the module as loaded) and `types`
 * (the rest: interfaces, type aliases, and what is exported with `export type`). It throws if the
 * module has a value the checker does not list.
 */
export function exportedNames(
  entries: readonly string[],
): (entry: string, runtime: object) => { values: string[]; types: string[] } {
  const program = ts.createProgram(entries, OPTIONS)
  const checker = program.getTypeChecker()
  return (entry, runtime) => {
    const source = program.getSourceFile(entry)
    const module = source === undefined ? undefined : checker.getSymbolAtLocation(source)
    if (module === undefined) throw new Error(`${entry} is not a module the checker can read`)
    const all = checker.getExportsOfModule(module).map((symbol) => symbol.getName())
    const values = Object.keys(runtime)
    const unlisted = values.filter((name) => !all.includes(name))
    if (unlisted.length > 0)
      throw new Error(`${entry}: values the checker does not list: ${unlisted.join(', ')}`)
    return { values: [...values].sort(), types: all.filter((name) => !values.includes(name)).sort() }
  }
}
