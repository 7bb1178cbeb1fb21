/** Packs each package under packages/ into `destination`; resolves the tarballs' paths, sorted. */
export function packAll(destination: string): string[]
/** Runs the pinned pnpm (through npx) in the repository's root. */
export function pnpm(args: string[], options?: import('node:child_process').ExecFileSyncOptions): string
