/**
 * A TCP proxy on 127.0.0.1 that forwards to a server and cuts every connection it carries at a
 * random moment (`minMs`..`maxMs` after it opened), wherever the bytes happen to be: mid-head,
 * mid-frame, mid-replay. Cuts alternate between a close (FIN) and a reset (RST).
 */
import { connect, createServer, type Server, type Socket } from 'node:net'

export interface ChaosProxy {
  port: number
  /** Connections cut by the proxy so far. */
  readonly cuts: number
  /** Connections accepted so far. */
  readonly accepted: number
  /** Stops cutting (connections already open live on); new connections are forwarded as is. */
  calm(): void
  close(): Promise<void>
}

export async function startChaosProxy(
  targetPort: number,
  { minMs, maxMs }: { minMs: number; maxMs: number },
): Promise<ChaosProxy> {
  let cuts = 0
  let accepted = 0
  let chaos = true
  const open = new Set<Socket>()
  const timers = new Set<NodeJS.Timeout>()

  const calm = () => {
    chaos = false
    for (const timer of timers) clearTimeout(timer)
    timers.clear()
  }

  const server: Server = createServer((client) => {
    accepted++
    const upstream = connect({ port: targetPort, host: '127.0.0.1' })
    client.setNoDelay(true)
    upstream.setNoDelay(true)
    open.add(client)
    open.add(upstream)
    const drop = () => {
      client.destroy()
      upstream.destroy()
    }
    client.on('error', drop)
    upstream.on('error', drop)
    client.on('close', () => {
      open.delete(client)
      upstream.destroy()
    })
    upstream.on('close', () => {
      open.delete(upstream)
      client.destroy()
    })
    client.pipe(upstream)
    upstream.pipe(client)
    if (!chaos) return
    const timer = setTimeout(
      () => {
        timers.delete(timer)
        if (!chaos || client.destroyed) return
        cuts++
        if (cuts % 2 === 0 && !upstream.connecting) {
          client.resetAndDestroy()
          upstream.resetAndDestroy()
        } else drop()
      },
      minMs + Math.random() * (maxMs - minMs),
    )
    timers.add(timer)
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', resolve)
  })
  const address = server.address()
  if (address === null || typeof address === 'string') throw new Error('the proxy has no port')
  return {
    port: address.port,
    get cuts() {
      return cuts
    },
    get accepted() {
      return accepted
    },
    calm,
    close() {
      calm()
      for (const socket of open) socket.destroy()
      return new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}
