/**
 * Child processes of a bench run: servers (on core 0) and the load client (on core 1), started with
 * a raised fd limit, and all of them killed when the run ends, however it ends.
 */
import { execFileSync, spawn } from 'node:child_process'
import net from 'node:net'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

export const BENCH_DIR = join(dirname(fileURLToPath(import.meta.url)), '..')

/** The cores servers and the client are pinned to, when `taskset` exists and there are two. */
export const SERVER_CORE = 0
export const CLIENT_CORE = 1

const children = new Set()

function hasTaskset() {
  try {
    execFileSync('taskset', ['-p', String(process.pid)], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
}

/** Whether processes are pinned: `taskset` is there and the machine has at least two cores. */
export const pinning = hasTaskset() && (await import('node:os')).availableParallelism() >= 2

/** The cores this process may use, as `taskset` lists them (read before `pinSelf` narrows them). */
const ALL_CORES = (() => {
  try {
    const out = execFileSync('taskset', ['-pc', String(process.pid)], { encoding: 'utf8' })
    return out.slice(out.lastIndexOf(':') + 1).trim()
  } catch {
    return undefined
  }
})()

/** The hard limit on open files, which children get as their soft limit. */
export const fdLimit = (() => {
  try {
    const hard = execFileSync('sh', ['-c', 'ulimit -Hn'], { encoding: 'utf8' }).trim()
    return hard === 'unlimited' ? 1_048_576 : Number(hard)
  } catch {
    return 0
  }
})()

/** Pins this process (the runner, idle while measuring) to the client's core. */
export function pinSelf() {
  if (!pinning) return
  try {
    execFileSync('taskset', ['-a', '-p', '-c', String(CLIENT_CORE), String(process.pid)], { stdio: 'ignore' })
  } catch {
    // Pinning is an improvement, not a requirement.
  }
}

/**
 * Spawns `node <args>` through `sh` (to raise the fd limit; Node cannot raise its own) and
 * `taskset` (to pin it to `core`; `null` leaves it to the scheduler); both `exec`, so the child's pid
 * is Node's.
 */
function spawnNode(nodeArgs, { core, stdio, env }) {
  const command = []
  // Unpinned means every core, said explicitly: a child inherits the affinity of a pinned runner.
  if (pinning && (core !== null || ALL_CORES !== undefined))
    command.push('taskset', '-c', core === null ? ALL_CORES : String(core))
  command.push(process.execPath, ...nodeArgs)
  const script = fdLimit > 0 ? `ulimit -n ${fdLimit} 2>/dev/null; exec "$@"` : 'exec "$@"'
  const child = spawn('sh', ['-c', script, 'sh', ...command], {
    cwd: BENCH_DIR,
    stdio,
    env: { ...process.env, ...env },
  })
  children.add(child)
  child.once('exit', () => children.delete(child))
  return child
}

/** A free TCP port on 127.0.0.1. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address()
      server.close(() => resolve(port))
    })
  })
}

/**
 * Starts `servers/<name>.js` on a free port and resolves once it prints `ready`.
 * `nodeFlags` go before the script (e.g. `--cpu-prof`); `core: null` runs it unpinned (a server of
 * several processes, which need both cores). `stdout()` is what it printed up to `ready`.
 */
export async function startServer(
  name,
  { nodeFlags = [], env = {}, timeoutMs = 20_000, core = SERVER_CORE } = {},
) {
  const port = await freePort()
  const child = spawnNode(['--expose-gc', ...nodeFlags, `servers/${name}.js`, String(port)], {
    core,
    stdio: ['ignore', 'pipe', 'pipe'],
    env,
  })
  let stderr = ''
  child.stderr.setEncoding('utf8')
  child.stderr.on('data', (chunk) => {
    stderr += chunk
    // Keep the last 4000 characters, starting at a line: a cut line would be quoted half.
    if (stderr.length > 4000) stderr = stderr.slice(stderr.indexOf('\n', stderr.length - 4000) + 1)
  })
  let out = ''
  await new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => fail(new Error(`${name} did not print ready in ${timeoutMs} ms`)),
      timeoutMs,
    )
    const fail = (error) => {
      clearTimeout(timer)
      child.kill('SIGKILL')
      reject(new Error(`${error.message}\n${stderr}`))
    }
    child.stdout.setEncoding('utf8')
    child.stdout.on('data', (chunk) => {
      out += chunk
      if (out.includes('ready\n')) {
        clearTimeout(timer)
        resolve()
      }
    })
    child.once('exit', (code, signal) => fail(new Error(`${name} exited (${code ?? signal}) before ready`)))
  })
  child.removeAllListeners('exit')
  return {
    name,
    port,
    pid: child.pid,
    stdout: () => out,
    stderr: () => stderr,
    stop: () => stopChild(child),
  }
}

/**
 * Starts the load client (`script`, on `core`; `null`: unpinned); `call(command, args)` runs one of
 * its commands and resolves with the result.
 */
export async function startClient(ctx, { script = 'client.js', core = CLIENT_CORE } = {}) {
  const child = spawnNode([script], {
    core,
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  })
  const pending = new Map()
  let nextId = 0
  await new Promise((resolve, reject) => {
    const onExit = (code) => reject(new Error(`the load client exited (${code}) before ready`))
    child.once('exit', onExit)
    child.once('message', (message) => {
      child.off('exit', onExit)
      if (message.ready) resolve()
      else reject(new Error('unexpected first message from the load client'))
    })
  })
  child.on('message', ({ id, result, error }) => {
    const waiter = pending.get(id)
    if (waiter === undefined) return
    pending.delete(id)
    if (error !== undefined) waiter.reject(new Error(error))
    else waiter.resolve(result)
  })
  child.on('exit', (code, signal) => {
    for (const waiter of pending.values())
      waiter.reject(new Error(`the load client exited (${code ?? signal})`))
    pending.clear()
  })
  return {
    pid: child.pid,
    call(command, args, serverPid) {
      const id = nextId++
      return new Promise((resolve, reject) => {
        pending.set(id, { resolve, reject })
        child.send({ id, command, args, ctx: { ...ctx, pid: serverPid } })
      })
    },
    stop: () => stopChild(child),
  }
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves once the child has exited. */
function stopChild(child, graceMs = 3000) {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve()
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs)
    child.once('exit', () => {
      clearTimeout(timer)
      resolve()
    })
    child.kill('SIGTERM')
  })
}

/** Kills every child still running (synchronously: also safe in an 'exit' handler). */
export function killAll() {
  for (const child of children) {
    try {
      child.kill('SIGKILL')
    } catch {
      // Already gone.
    }
  }
  children.clear()
}

process.on('exit', killAll)
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(signal, () => {
    killAll()
    process.exit(130)
  })
}
