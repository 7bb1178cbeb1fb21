/**
 * The Fetch adapter's conformance app, started on each runtime: Node (in this process, through
 * `@hono/node-server`), Bun and Deno (a child process each, from the registry's `bun` and `deno`
 * packages, which `pnpm install` puts in place).
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import type { AddressInfo } from 'node:net'
import { fileURLToPath } from 'node:url'
import { createAdaptorServer } from '@hono/node-server'
import { createFetchApp } from './fetch-app.ts'
import type { RunningApp } from './node-apps.ts'
import type { AppOptions } from './routes.ts'

const ROOT = fileURLToPath(new URL('../../../', import.meta.url))
const SERVE_FETCH = fileURLToPath(new URL('./serve-fetch.ts', import.meta.url))

export async function startHonoNode(options: AppOptions): Promise<RunningApp> {
  const { app, events } = createFetchApp(options)
  const server = createAdaptorServer({ fetch: app.fetch, hostname: '127.0.0.1' })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    stop: async () => {
      await events.close()
      ;(server as import('node:http').Server).closeAllConnections()
      await new Promise((resolve) => server.close(resolve))
    },
  }
}

/**
 * Where each package's postinstall puts the runtime's binary. The binary itself, not the launcher in
 * node_modules/.bin: a signal sent to a launcher script would leave the runtime running.
 */
const BINARIES = { bun: 'node_modules/bun/bin/bun.exe', deno: 'node_modules/deno/deno' } as const

/** The runtime's binary, or undefined if it is not installed. */
export function runtimeBinary(name: 'bun' | 'deno'): string | undefined {
  const path = `${ROOT}${BINARIES[name]}`
  return existsSync(path) ? path : undefined
}

/** Arguments that run the conformance app's server file. */
const ARGS = {
  bun: ['run', SERVE_FETCH],
  // Only what the app needs: the network, its options, and reading its own modules.
  deno: ['run', '--allow-net=127.0.0.1', '--allow-env=APP_OPTIONS', '--allow-read', SERVE_FETCH],
} as const

export async function startRuntime(name: 'bun' | 'deno', options: AppOptions): Promise<RunningApp> {
  const binary = runtimeBinary(name)
  if (binary === undefined) throw new Error(`${name} is not installed: run pnpm install`)
  const child = spawn(binary, [...ARGS[name]], {
    cwd: ROOT,
    env: { ...process.env, APP_OPTIONS: JSON.stringify(options), NO_COLOR: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const port = await listeningPort(child, name)
  return {
    base: `http://127.0.0.1:${port}`,
    stop: async () => {
      if (child.exitCode !== null) return
      const exited = new Promise((resolve) => child.once('exit', resolve))
      child.kill('SIGKILL')
      await exited
    },
  }
}

function listeningPort(child: ChildProcess, name: string): Promise<number> {
  let output = ''
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`${name} did not start within 20 s: ${output}`))
    }, 20_000)
    const read = (chunk: Buffer) => {
      output += chunk.toString()
      const match = /listening (\d+)/.exec(output)
      if (match !== null) {
        clearTimeout(timer)
        resolve(Number(match[1]))
      }
    }
    child.stdout!.on('data', read)
    child.stderr!.on('data', read)
    child.once('exit', (code) => {
      clearTimeout(timer)
      reject(new Error(`${name} exited with ${code}: ${output}`))
    })
  })
}
