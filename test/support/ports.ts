/** Ports for servers a test spawns (redis-server, PgBouncer, nginx, a Next.js or packed app). */
import { createServer } from 'node:net'

/**
 * A TCP port on 127.0.0.1 that was free a moment ago: the kernel picks it, the listener closes at
 * once. Nothing holds it, so it is also a port where nothing answers (until something takes it).
 */
export async function freePort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', resolve)
  })
  const address = server.address()
  await new Promise((resolve) => server.close(resolve))
  if (address === null || typeof address === 'string') throw new Error('no port')
  return address.port
}

/**
 * `count` ports for Redis Cluster nodes: each free, and its cluster bus port (port + 10000) free as
 * well, probed from a random start so parallel suites rarely collide.
 */
export async function freeClusterPorts(count: number): Promise<number[]> {
  const ports: number[] = []
  let port = 20_000 + Math.floor(Math.random() * 20_000)
  for (let tries = 0; ports.length < count && tries < 500; tries++, port++) {
    if ((await isFree(port)) && (await isFree(port + 10_000))) ports.push(port)
  }
  if (ports.length < count) throw new Error('no free ports for the cluster')
  return ports
}

function isFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer()
    server.once('error', () => resolve(false))
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)))
  })
}
