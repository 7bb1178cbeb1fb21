/**
 * Starts `server.mjs` in a child process (with `--expose-gc` and an IPC channel) and talks to it:
 * commands over IPC, memory read from `/proc/<pid>/status` (what the operating system charges the
 * process, not what V8 believes).
 *
 * The child is plain `node`, which cannot load the TypeScript source: it runs the BUILT adapters and
 * core (what users get; `pnpm test` builds first). So that a `src` edit without a rebuild fails
 * loudly instead of measuring the old code, a child is not started while any source file is newer
 * than its package's build.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import type { HubOptions, HubStats } from '@rewind/core'
import type { Adapter } from './app.mjs'

const SERVER = fileURLToPath(new URL('./server.mjs', import.meta.url))
/** Bound of any single command; the slowest (a paced publish) takes a few seconds. */
const COMMAND_MS = 60_000

export interface ChildStats {
  hub: HubStats
  connections: number
  memory: NodeJS.MemoryUsage
  resources: string[]
  serverListeners: Record<string, number>
}

export interface ServerProcess {
  adapter: Adapter
  pid: number
  port: number
  url(path?: string): string
  child: ChildProcess
  call<T = unknown>(cmd: string, args?: Record<string, unknown>): Promise<T>
  stats(): Promise<ChildStats>
  /** Runs the garbage collector a few times; resolves with `process.memoryUsage()` afterwards. */
  gc(): Promise<NodeJS.MemoryUsage>
  /** Resident set size now, in bytes (VmRSS). */
  rss(): number
  /** Peak resident set size since the start or the last {@link ServerProcess.resetPeak}, in bytes (VmHWM). */
  peakRss(): number
  /** Resets the peak (VmHWM) to the current RSS. */
  resetPeak(): void
  /** Resolves with the exit code once the process has exited. */
  exited: Promise<number | null>
  /** Everything the process wrote to stderr. */
  stderr(): string
  kill(): void
}

export interface ServerConfig {
  hub?: HubOptions & { closeRetry?: number }
  fastify?: Record<string, unknown>
  /** Open files the server needs; above the soft limit it is started through `ulimit -n`. */
  files?: number
}

function statusField(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)
  if (match === null) throw new Error(`no ${field} in /proc/${pid}/status`)
  return Number(match[1]) * 1024
}

/** The soft limit of open files of this process (children inherit it). */
export function openFilesLimit(): number {
  const limits = readFileSync('/proc/self/limits', 'utf8')
  const match = /^Max open files\s+(\d+|unlimited)\s+(\d+|unlimited)/m.exec(limits)
  if (match === null) return Number.POSITIVE_INFINITY
  return match[1] === 'unlimited' ? Number.POSITIVE_INFINITY : Number(match[1])
}

export async function startServerProcess(
  adapter: Adapter,
  config: ServerConfig = {},
): Promise<ServerProcess> {
  assertBuilt()
  const args = ['--expose-gc', SERVER, JSON.stringify({ adapter, hub: config.hub, fastify: config.fastify })]
  const needed = config.files ?? 0
  // Raise only the soft limit, and only when needed: `exec` keeps the pid and the IPC descriptor.
  const child =
    needed > openFilesLimit()
      ? spawn('bash', ['-c', `ulimit -n ${needed} && exec "$0" "$@"`, process.execPath, ...args], {
          stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
        })
      : spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe', 'ipc'] })
  let stderr = ''
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk
  })
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  const pending = new Map<number, { resolve(value: unknown): void; reject(error: Error): void }>()
  let nextId = 1
  const ready = new Promise<{ port: number; pid: number }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start in 15 s:\n${stderr}`)), 15_000)
    child.once('exit', (code) => {
      clearTimeout(timer)
      reject(new Error(`server exited (${code}) before it was ready:\n${stderr}`))
    })
    child.on(
      'message',
      (message: {
        type?: string
        id?: number
        ok?: boolean
        result?: unknown
        error?: string
        port?: number
        pid?: number
      }) => {
        if (message.type === 'ready') {
          clearTimeout(timer)
          resolve({ port: message.port!, pid: message.pid! })
          return
        }
        const waiter = pending.get(message.id!)
        if (waiter === undefined) return
        pending.delete(message.id!)
        if (message.ok) waiter.resolve(message.result)
        else waiter.reject(new Error(`server command failed: ${message.error}`))
      },
    )
  })
  child.once('exit', (code, signal) => {
    for (const waiter of pending.values())
      waiter.reject(new Error(`server exited (${code ?? signal}):\n${stderr}`))
    pending.clear()
  })
  const { port, pid } = await ready.catch((error: unknown) => {
    child.kill('SIGKILL')
    throw error
  })

  const call = <T>(cmd: string, callArgs: Record<string, unknown> = {}): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      const id = nextId++
      const timer = setTimeout(() => {
        pending.delete(id)
        reject(new Error(`server command ${cmd} took more than ${COMMAND_MS} ms`))
      }, COMMAND_MS)
      pending.set(id, {
        resolve: (value) => {
          clearTimeout(timer)
          resolve(value as T)
        },
        reject: (error) => {
          clearTimeout(timer)
          reject(error)
        },
      })
      child.send({ id, cmd, args: callArgs })
    })

  return {
    adapter,
    pid,
    port,
    url: (path = '/events') => `http://127.0.0.1:${port}${path}`,
    child,
    call,
    stats: () => call<ChildStats>('stats'),
    gc: () => call<NodeJS.MemoryUsage>('gc'),
    rss: () => statusField(pid, 'VmRSS'),
    peakRss: () => statusField(pid, 'VmHWM'),
    resetPeak: () => writeFileSync(`/proc/${pid}/clear_refs`, '5'),
    exited,
    stderr: () => stderr,
    kill: () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
    },
  }
}

/** The packages the child loads from `dist`. */
const BUILT = ['core', 'express', 'fastify']

/** Throws if a source file of a package the child runs is newer than that package's build. */
function assertBuilt(): void {
  for (const name of BUILT) {
    const root = new URL(`../../../packages/${name}/`, import.meta.url)
    const built = statSync(new URL('dist/index.js', root)).mtimeMs
    const src = fileURLToPath(new URL('src/', root))
    for (const file of readdirSync(src, { recursive: true, encoding: 'utf8' })) {
      if (statSync(`${src}${file}`).mtimeMs > built) {
        throw new Error(`packages/${name}/src/${file} is newer than its build: run \`pnpm build\` first`)
      }
    }
  }
}
