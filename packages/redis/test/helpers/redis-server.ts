/**
 * The Redis server the tests talk to. The rule: `REDIS_URL` when set; otherwise a `redis-server`
 * spawned on a free port, without persistence; otherwise the tests are skipped with a loud notice,
 * except under CI (`CI` set), where they fail instead. Tests that stop and start Redis always spawn
 * their own server, with the same rule for a missing binary.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { constants } from 'node:fs'
import { access, mkdtemp, rm } from 'node:fs/promises'
import { Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { delimiter, join } from 'node:path'
import { Redis } from 'ioredis'
import { afterAll, afterEach, beforeAll, describe, expect } from 'vitest'
import { freePort } from '../../../../test/support/ports.js'
import { createRedisStore, type RedisStore, type RedisStoreOptions } from '../../src/index.js'

/** A Redis server for tests. */
export interface RedisServer {
  readonly url: string
  /** True when this process spawned it: only then may tests stop, restart or flush it. */
  readonly spawned: boolean
  /** Stops it for good (a spawned server), or does nothing (a server from `REDIS_URL`). */
  close(): Promise<void>
}

/** A redis-server this process spawned, which tests may stop and start again on the same port. */
export interface SpawnedRedis extends RedisServer {
  readonly spawned: true
  readonly port: number
  /** Whether it is running. */
  readonly running: boolean
  /** Stops it (SIGKILL by default: as abrupt as a crash). Without persistence its data is gone. */
  stop(signal?: NodeJS.Signals): Promise<void>
  /** Starts it again on the same port and resolves once it answers PING. */
  start(): Promise<void>
  /** Sends a signal without waiting for anything (SIGSTOP freezes it with its sockets open). */
  signal(signal: NodeJS.Signals): void
}

const live = new Set<ChildProcess>()
process.once('exit', () => {
  for (const child of live) child.kill('SIGKILL')
})

/** Finds the redis-server binary: `REDIS_SERVER_BIN`, else the first one on `PATH`. */
export async function findRedisServer(): Promise<string | undefined> {
  const { REDIS_SERVER_BIN, PATH } = process.env
  const candidates = REDIS_SERVER_BIN
    ? [REDIS_SERVER_BIN]
    : (PATH ?? '')
        .split(delimiter)
        .filter(Boolean)
        .map((dir) => join(dir, 'redis-server'))
  for (const candidate of candidates) {
    try {
      await access(candidate, constants.X_OK)
      return candidate
    } catch {}
  }
  return undefined
}

/** The server for a test file, or `undefined` (after a loud notice) when there is none outside CI. */
export async function redisForTests(suite: string): Promise<RedisServer | undefined> {
  const { REDIS_URL: url } = process.env
  if (url) return { url, spawned: false, close: async () => {} }
  return spawnForTests(suite)
}

/** How a spawned server keeps its data. */
export interface SpawnOptions {
  /**
   * Keep the data across a stop (even a SIGKILL): an append-only file synced on every write, in the
   * server's own temp dir, read back on `start()`. Without it a restarted server is empty.
   * @defaultValue false
   */
  persistent?: boolean
}

/**
 * The suite of tests on a Redis the file started (`undefined` when it could not): skipped without
 * it, and the Redis closed after the suite. `define` only defines tests, which use `redis` when they run.
 */
export function describeOnRedis<R extends { close(): Promise<void> }>(
  title: string,
  redis: R | undefined,
  define: (redis: R) => void,
): void {
  describe.skipIf(redis === undefined)(title, () => {
    afterAll(() => redis?.close())
    define(redis!)
  })
}

/** Timings for tests that break Redis: reconnects within 20 to 200 ms, a command given up after 1 s. */
export const FAST_RECOVERY = {
  minReconnectDelay: 20,
  maxReconnectDelay: 200,
  commandTimeout: 1000,
} as const satisfies RedisStoreOptions

/**
 * A store on `url` under a fresh prefix (named after `label`), with `FAST_RECOVERY` timings and then
 * `options`, and the errors it reports. The test closes it.
 */
export function recoveringStore(url: string, label: string, options: RedisStoreOptions = {}) {
  const prefix = uniquePrefix(label)
  const errors: unknown[] = []
  const store = createRedisStore({
    redis: url,
    prefix,
    ...FAST_RECOVERY,
    onError: (error) => errors.push(error),
    ...options,
  })
  return { store, prefix, errors }
}

/** A server of this process's own, for tests that stop and start it; `undefined` as above. */
export async function spawnForTests(
  suite: string,
  { persistent = false }: SpawnOptions = {},
): Promise<SpawnedRedis | undefined> {
  const binary = await findRedisServer()
  if (binary === undefined) {
    return unavailable(
      suite,
      'no executable redis-server (REDIS_SERVER_BIN, else PATH); set REDIS_URL to use a running server',
    )
  }
  const server = new Spawned(
    binary,
    await freePort(),
    await mkdtemp(join(tmpdir(), 'rewind-redis-')),
    persistent,
  )
  try {
    await server.start()
  } catch (error) {
    await server.close()
    return unavailable(suite, `redis-server did not start: ${(error as Error).message}`)
  }
  return server
}

/** Skips loudly (returns `undefined`) outside CI; under CI (`CI` set) throws instead. */
export function unavailable(suite: string, why: string): undefined {
  const message = `Redis tests "${suite}" cannot run: ${why}`
  const { CI } = process.env
  if (CI) throw new Error(`${message}. CI is set, so this is a failure, not a skip.`)
  console.warn(`\n${'!'.repeat(78)}\n!! SKIPPED: ${message}\n${'!'.repeat(78)}\n`)
  return undefined
}

class Spawned implements SpawnedRedis {
  readonly spawned = true
  readonly url: string
  private child: ChildProcess | undefined
  private exited: Promise<void> = Promise.resolve()

  constructor(
    private readonly binary: string,
    readonly port: number,
    private readonly dir: string,
    private readonly persistent: boolean,
  ) {
    this.url = `redis://127.0.0.1:${port}`
  }

  get running(): boolean {
    return this.child !== undefined
  }

  async start(): Promise<void> {
    if (this.child !== undefined) return
    const child = spawn(
      this.binary,
      [
        '--port',
        String(this.port),
        '--bind',
        '127.0.0.1',
        '--save',
        '',
        ...(this.persistent ? ['--appendonly', 'yes', '--appendfsync', 'always'] : ['--appendonly', 'no']),
        '--dir',
        this.dir,
        '--daemonize',
        'no',
      ],
      { stdio: 'ignore' },
    )
    this.child = child
    live.add(child)
    let exitedEarly = false
    this.exited = new Promise((resolve) => {
      child.once('exit', () => {
        exitedEarly = true
        live.delete(child)
        if (this.child === child) this.child = undefined
        resolve()
      })
      child.once('error', () => resolve())
    })
    const deadline = Date.now() + 10_000
    while (!(await ping(this.port))) {
      if (exitedEarly || Date.now() > deadline) throw new Error(`no PING answer on port ${this.port}`)
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
  }

  async stop(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const child = this.child
    if (child === undefined) return
    child.kill(signal)
    await this.exited
  }

  signal(signal: NodeJS.Signals): void {
    this.child?.kill(signal)
  }

  async close(): Promise<void> {
    this.signal('SIGCONT')
    await this.stop()
    await rm(this.dir, { recursive: true, force: true })
  }
}

function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = new Socket()
    let reply = ''
    const done = (ok: boolean) => {
      socket.destroy()
      resolve(ok)
    }
    socket.setTimeout(500, () => done(false))
    socket.once('error', () => done(false))
    socket.on('data', (chunk) => {
      reply += chunk.toString('latin1')
      if (reply.includes('\r\n')) done(reply.startsWith('+PONG'))
    })
    socket.connect(port, '127.0.0.1', () => socket.write('PING\r\n'))
  })
}

let prefixes = 0

/** A key prefix no other test (or test process) uses; free of glob characters, for SCAN MATCH. */
export function uniquePrefix(label: string): string {
  prefixes++
  return `rewind-test:${label}:${process.pid}:${Date.now().toString(36)}:${prefixes}:`
}

/** Deletes every key under `prefix` (never FLUSHALL: the server may not be ours). */
export async function deleteKeys(client: Redis, prefix: string): Promise<void> {
  let cursor = '0'
  do {
    const [next, keys] = await client.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000)
    cursor = next
    if (keys.length > 0) await client.del(...keys)
  } while (cursor !== '0')
}

/** The stores of a suite on one server, and a plain connection to it. */
export interface SuiteStores {
  /** A store on the server under `prefix` (by default a fresh one), its errors recorded. */
  store(options?: RedisStoreOptions, prefix?: string): RedisStore
  /** What the stores reported and no test took yet: nothing, when Redis is healthy. */
  readonly reported: unknown[]
  /** A plain connection to the server (from `beforeAll`), to look at keys. */
  readonly admin: Redis
  /** Stores closed after each test: those `store` made, and any a test makes itself. */
  readonly stores: RedisStore[]
  /** Prefixes whose keys are deleted after each test. */
  readonly prefixes: string[]
}

/**
 * The stores of the suite in the enclosing `describe`, on `server`: after each test they are closed,
 * their keys deleted, and nothing may have been reported; after the suite the server is closed. Call
 * it first in the `describe`, so that the suite's own `afterEach` (closing what runs on the stores)
 * runs before this one.
 */
export function suiteStores(server: RedisServer | undefined, label: string): SuiteStores {
  let admin: Redis | undefined
  const stores: RedisStore[] = []
  const prefixes: string[] = []
  const reported: unknown[] = []
  beforeAll(() => {
    admin = new Redis(server!.url)
  })
  afterEach(async () => {
    await Promise.all(stores.splice(0).map((store) => store.close()))
    for (const prefix of prefixes.splice(0)) await deleteKeys(admin!, prefix)
    expect(reported.splice(0)).toEqual([])
  })
  afterAll(async () => {
    await admin?.quit()
    await server!.close()
  })
  return {
    store(options = {}, prefix = uniquePrefix(label)) {
      prefixes.push(prefix)
      const store = createRedisStore({
        redis: server!.url,
        prefix,
        onError: (error) => reported.push(error),
        ...options,
      })
      stores.push(store)
      return store
    },
    reported,
    stores,
    prefixes,
    get admin() {
      return admin!
    },
  }
}
