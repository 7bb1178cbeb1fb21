/**
 * A Redis Cluster that can fail over: three masters with one replica each (`--cluster-replicas 1`),
 * a short `cluster-node-timeout`, every node a `redis-server` of this process on a free local port
 * (its bus on port + 10000), without persistence. `failover(slot)` kills the master of a slot and
 * resolves once its replica serves it and every node left reports the cluster ok; `restore()` starts
 * the killed node again, which comes back as a replica. The rule for a missing binary is the one of
 * packages/redis/test/helpers/redis-server.ts: a loud skip, a failure under CI.
 */
import type { ChildProcess } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Redis } from 'ioredis'
import {
  clusterBinaries,
  clusterOk,
  createCluster,
  killAll,
  masterSeenBy,
  type SlotRange,
  startClusterNode,
  until as untilCluster,
} from '../../../packages/redis/test/helpers/cluster.js'
import { unavailable } from '../../../packages/redis/test/helpers/redis-server.js'
import { freeClusterPorts } from '../../support/ports.js'

/** `cluster-node-timeout`: a master unreachable this long is failed over. */
export const NODE_TIMEOUT = 1000

export interface FailoverCluster {
  /** Every node's address (startup nodes for the store's `cluster` option). */
  readonly nodes: readonly { readonly host: string; readonly port: number }[]
  /** The hash slot of a key. */
  slotOf(key: string): Promise<number>
  /** The port of the master serving `slot`, as a node that is up sees it. */
  masterOf(slot: number): Promise<number>
  /** The replicas of the master of `key`'s slot, and how many of them hold `key` now (READONLY). */
  replicasHolding(key: string): Promise<{ replicas: number; holding: number; views: string }>
  /** Kills the master of `slot`; resolves once its replica was promoted and the cluster is ok. */
  failover(slot: number): Promise<{ killed: number; promoted: number }>
  /** Starts every killed node again; resolves once each is a replica in sync and the cluster ok. */
  restore(): Promise<void>
  close(): Promise<void>
}

export async function failoverClusterForTests(suite: string): Promise<FailoverCluster | undefined> {
  const binaries = await clusterBinaries(suite)
  if (binaries === undefined) return undefined
  const { server, cli } = binaries
  const dir = await mkdtemp(join(tmpdir(), 'rewind-failover-'))
  const children = new Map<number, ChildProcess>()
  const admins = new Map<number, Redis>()
  const killed: number[] = []

  const startNode = (port: number): void => {
    const child = startClusterNode(server, dir, port, NODE_TIMEOUT, [
      // A replica may always be promoted, however long its link was down.
      '--cluster-replica-validity-factor',
      '0',
      '--repl-diskless-sync',
      'yes',
      '--repl-diskless-sync-delay',
      '0',
      '--dbfilename',
      `dump-${port}.rdb`,
    ])
    children.set(port, child)
    child.once('exit', () => {
      if (children.get(port) === child) children.delete(port)
    })
  }
  const admin = (port: number): Redis => {
    let connection = admins.get(port)
    if (connection === undefined) {
      connection = new Redis({
        port,
        host: '127.0.0.1',
        maxRetriesPerRequest: 1,
        retryStrategy: () => 100,
        connectTimeout: 500,
      })
      connection.on('error', () => {})
      admins.set(port, connection)
    }
    return connection
  }
  const up = () => [...children.keys()]
  const close = async (): Promise<void> => {
    for (const connection of admins.values()) connection.disconnect()
    admins.clear()
    await killAll(children.values())
    await rm(dir, { recursive: true, force: true })
  }
  const allOk = () => clusterOk(up().map(admin))

  try {
    const ports = await freeClusterPorts(6)
    for (const port of ports) startNode(port)
    await until(async () => (await Promise.all(ports.map((p) => admin(p).ping()))).every((p) => p === 'PONG'))
    await createCluster(cli, ports, 1)
    await until(allOk)
    // Every replica in sync before the first fault.
    await until(async () => {
      const roles = await Promise.all(ports.map((p) => admin(p).info('replication')))
      return roles.filter((r) => r.includes('role:slave') && r.includes('master_link_status:up')).length === 3
    })
    const cluster: FailoverCluster = {
      nodes: ports.map((port) => ({ host: '127.0.0.1', port })),
      slotOf: async (key) => (await admin(up()[0]!).cluster('KEYSLOT', key)) as number,
      async masterOf(slot) {
        const master = await masterSeenBy(admin(up()[0]!), slot)
        if (master === undefined) throw new Error(`no master serves slot ${slot}`)
        return master
      },
      async replicasHolding(key) {
        const slot = await cluster.slotOf(key)
        const ranges = (await admin(up()[0]!).call('CLUSTER', 'SLOTS')) as SlotRange[]
        const range = ranges.find(([from, to]) => slot >= from && slot <= to)
        const replicas = (range?.slice(3) ?? []) as [string, number, string][]
        let holding = 0
        const views: string[] = []
        const pick = (info: string) =>
          info
            .split('\r\n')
            .filter((line) =>
              /^(role|master_port|master_link_status|master_repl_offset|slave_repl_offset|slave0)[:]/.test(
                line,
              ),
            )
            .join(' ')
        if (range !== undefined)
          views.push(`master ${range[2][1]}: ${pick(await admin(range[2][1]).info('replication'))}`)
        for (const [, port] of replicas) {
          const connection = admin(port)
          await connection.call('READONLY')
          if ((await connection.exists(key)) === 1) holding++
          views.push(`replica ${port}: ${pick(await connection.info('replication'))}`)
        }
        return { replicas: replicas.length, holding, views: views.join('; ') }
      },
      async failover(slot) {
        const master = await cluster.masterOf(slot)
        const child = children.get(master)!
        await new Promise<void>((resolve) => {
          child.once('exit', () => resolve())
          child.kill('SIGKILL')
        })
        killed.push(master)
        admins.get(master)?.disconnect()
        admins.delete(master)
        let promoted = master
        await until(async () => {
          const seen = await Promise.all(up().map((port) => masterSeenBy(admin(port), slot)))
          if (seen.some((p) => p === undefined || p === master || p !== seen[0])) return false
          promoted = seen[0]!
          return allOk()
        }, 30_000)
        return { killed: master, promoted }
      },
      async restore() {
        for (const port of killed.splice(0)) {
          startNode(port)
          await until(async () => {
            const info = await admin(port).info('replication')
            return info.includes('role:slave') && info.includes('master_link_status:up')
          }, 30_000)
        }
        await until(allOk)
        // Every master has its replica again, as every node sees it, before the next fault.
        await until(async () => {
          const views = await Promise.all(
            up().map((port) => admin(port).call('CLUSTER', 'SLOTS') as Promise<SlotRange[]>),
          )
          return views.every((ranges) => ranges.every((range) => range.length >= 4))
        }, 30_000)
      },
      close,
    }
    return cluster
  } catch (error) {
    await close()
    return unavailable(suite, `the cluster did not start: ${(error as Error).message}`)
  }
}

/** Waits for the cluster to reach a state (up to 20,000 ms unless told). */
function until(check: () => Promise<boolean>, timeout = 20_000): Promise<void> {
  return untilCluster(check, timeout)
}
