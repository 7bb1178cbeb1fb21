/**
 * A real Redis Cluster for tests: three masters without replicas or persistence, each a
 * `redis-server --cluster-enabled yes` on a free local port (its cluster bus on port + 10000), in a
 * temp dir, joined with `redis-cli --cluster create`. The same rule as a single server: when
 * redis-server or redis-cli is missing the tests are skipped with a loud notice, except under CI,
 * where they fail. scripts/redis-cluster.sh does the same from a shell.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process'
import { constants } from 'node:fs'
import { access, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { promisify } from 'node:util'
import { Redis } from 'ioredis'
import { freeClusterPorts } from '../../../../test/support/ports.js'
import { eventually } from '../../../../test/support/wait.js'
import { findRedisServer, unavailable } from './redis-server.js'

const run = promisify(execFile)

/** A range of `CLUSTER SLOTS`: first slot, last slot, then the master as [host, port, id]. */
export type SlotRange = [
  from: number,
  to: number,
  master: [host: string, port: number, id: string],
  ...unknown[],
]

/** A running cluster of three masters. */
export interface TestCluster {
  /** Each master's address, as startup nodes for ioredis's `Cluster` or the store's `cluster` option. */
  readonly nodes: readonly { readonly host: string; readonly port: number }[]
  /** A plain connection to one node (not a cluster client), for `CLUSTER` and `CLIENT` commands. */
  node(port: number): Redis
  /** The port of the master that serves `slot` now. */
  masterOf(slot: number): Promise<number>
  /**
   * Moves `slot`, with its keys, to the master on port `to`: the steps of `redis-cli --cluster
   * reshard` for one slot (IMPORTING, MIGRATING, MIGRATE, then SETSLOT NODE on every master).
   */
  moveSlot(slot: number, to: number): Promise<void>
  /** Stops every node and removes the temp dir. */
  close(): Promise<void>
}

const live = new Set<ChildProcess>()
process.once('exit', () => {
  for (const child of live) child.kill('SIGKILL')
})

/** Kills `child` (SIGKILL) if this process exits first: a cluster node must not outlive the tests. */
export function killOnExit(child: ChildProcess): void {
  live.add(child)
  child.once('exit', () => live.delete(child))
}

/** Kills every one of `children` and resolves once each has exited. */
export async function killAll(children: Iterable<ChildProcess>): Promise<void> {
  await Promise.all(
    [...children].map(
      (child) =>
        new Promise<void>((resolve) => {
          if (child.exitCode !== null || child.signalCode !== null) return resolve()
          child.once('exit', () => resolve())
          child.kill('SIGKILL')
        }),
    ),
  )
}

/**
 * `redis-server` and the `redis-cli` beside it, which a cluster needs; `undefined` (after a loud
 * notice, or a failure under CI) without them.
 */
export async function clusterBinaries(suite: string): Promise<{ server: string; cli: string } | undefined> {
  const server = await findRedisServer()
  if (server === undefined) {
    return unavailable(suite, 'no executable redis-server (REDIS_SERVER_BIN, else PATH) to start a cluster')
  }
  const cli = join(dirname(server), 'redis-cli')
  try {
    await access(cli, constants.X_OK)
  } catch {
    return unavailable(suite, `no executable redis-cli beside ${server} to create a cluster`)
  }
  return { server, cli }
}

/** A fresh cluster for a test file, or `undefined` (after a loud notice) outside CI without the binaries. */
export async function clusterForTests(suite: string): Promise<TestCluster | undefined> {
  const binaries = await clusterBinaries(suite)
  if (binaries === undefined) return undefined
  const { server, cli } = binaries
  const dir = await mkdtemp(join(tmpdir(), 'rewind-cluster-'))
  const children: ChildProcess[] = []
  const connections: Redis[] = []
  const close = async (): Promise<void> => {
    for (const connection of connections.splice(0)) connection.disconnect()
    await killAll(children)
    await rm(dir, { recursive: true, force: true })
  }
  try {
    const ports = await freeClusterPorts(3)
    for (const port of ports) children.push(startClusterNode(server, dir, port, 2000))
    const node = (port: number): Redis => {
      const connection = new Redis({ port, host: '127.0.0.1', lazyConnect: false, maxRetriesPerRequest: 1 })
      connection.on('error', () => {})
      connections.push(connection)
      return connection
    }
    const admins = ports.map(node)
    await until(async () =>
      (await Promise.all(admins.map((a) => a.ping().catch(() => '')))).every((p) => p === 'PONG'),
    )
    await createCluster(cli, ports, 0)
    await until(() => clusterOk(admins))
    const ids = new Map<number, string>()
    for (const [i, port] of ports.entries()) ids.set(port, (await admins[i]!.cluster('MYID')) as string)
    const masterOf = async (slot: number): Promise<number> => {
      const master = await masterSeenBy(admins[0]!, slot)
      if (master === undefined) throw new Error(`no master serves slot ${slot}`)
      return master
    }
    return {
      nodes: ports.map((port) => ({ host: '127.0.0.1', port })),
      node,
      masterOf,
      async moveSlot(slot, to) {
        const from = await masterOf(slot)
        if (from === to) return
        const source = admins[ports.indexOf(from)]!
        const target = admins[ports.indexOf(to)]!
        await target.call('CLUSTER', 'SETSLOT', slot, 'IMPORTING', ids.get(from)!)
        await source.call('CLUSTER', 'SETSLOT', slot, 'MIGRATING', ids.get(to)!)
        for (;;) {
          const keys = (await source.call('CLUSTER', 'GETKEYSINSLOT', slot, 100)) as string[]
          if (keys.length === 0) break
          await source.call('MIGRATE', '127.0.0.1', to, '', 0, 5000, 'KEYS', ...keys)
        }
        for (const admin of [target, source, ...admins.filter((a) => a !== source && a !== target)]) {
          await admin.call('CLUSTER', 'SETSLOT', slot, 'NODE', ids.get(to)!)
        }
        await until(async () => {
          const owners = await Promise.all(admins.map((a) => masterSeenBy(a, slot)))
          return owners.every((owner) => owner === to)
        })
      },
      close,
    }
  } catch (error) {
    await close()
    return unavailable(suite, `the cluster did not start: ${(error as Error).message}`)
  }
}

/** Waits for the cluster to reach a state (up to 15,000 ms unless told). */
export function until(check: () => Promise<boolean>, timeout = 15_000): Promise<void> {
  return eventually(check, 'the cluster', timeout)
}

/**
 * Starts one cluster node of `server` on `port` (its bus on port + 10000), without persistence, its
 * files in `dir`; `extra` arguments come last. It is killed if this process exits first.
 */
export function startClusterNode(
  server: string,
  dir: string,
  port: number,
  nodeTimeout: number,
  extra: readonly string[] = [],
): ChildProcess {
  const child = spawn(
    server,
    [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--cluster-enabled',
      'yes',
      '--cluster-config-file',
      join(dir, `nodes-${port}.conf`),
      '--cluster-node-timeout',
      String(nodeTimeout),
      '--save',
      '',
      '--appendonly',
      'no',
      '--dir',
      dir,
      '--daemonize',
      'no',
      ...extra,
    ],
    { stdio: 'ignore' },
  )
  killOnExit(child)
  return child
}

/** Joins the nodes on `ports` into one cluster, `replicas` replicas to a master (`redis-cli --cluster create`). */
export async function createCluster(cli: string, ports: readonly number[], replicas: number): Promise<void> {
  const addresses = ports.map((port) => `127.0.0.1:${port}`)
  await run(
    cli,
    ['--cluster', 'create', ...addresses, '--cluster-replicas', String(replicas), '--cluster-yes'],
    {
      timeout: 30_000,
    },
  )
}

/** Whether every one of `admins` reports the cluster ok with all 16384 slots served. */
export async function clusterOk(admins: readonly Redis[]): Promise<boolean> {
  const infos = await Promise.all(admins.map((admin) => admin.cluster('INFO') as Promise<string>))
  return infos.every((info) => info.includes('cluster_state:ok') && info.includes('cluster_slots_ok:16384'))
}

/** The port of the master serving `slot`, as the node behind `admin` sees it. */
export async function masterSeenBy(admin: Redis, slot: number): Promise<number | undefined> {
  const ranges = (await admin.call('CLUSTER', 'SLOTS')) as SlotRange[]
  return ranges.find(([from, to]) => slot >= from && slot <= to)?.[2][1]
}
