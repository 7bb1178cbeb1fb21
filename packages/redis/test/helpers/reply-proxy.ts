/**
 * A TCP proxy in front of Redis that can hold Redis's replies back: to its clients, a Redis that
 * stopped answering with its sockets open (a freeze, a half-open connection), without freezing the
 * server the rest of the test talks to. Commands always reach Redis; only what comes back is held.
 */
import { createServer, type Server, Socket } from 'node:net'

/** A proxy on 127.0.0.1 that forwards to one Redis and can hold its replies. */
export class ReplyProxy {
  /** Connections the proxy accepted so far (a replaced connection counts again). */
  accepted = 0
  private held = false
  private resetting = false
  private readonly upstreams = new Set<Socket>()
  private readonly clients = new Set<Socket>()

  private constructor(
    private readonly server: Server,
    /** The URL a client connects to. */
    readonly url: string,
  ) {}

  /** A proxy in front of the Redis at `target` (a `redis://host:port` URL). */
  static async start(target: string): Promise<ReplyProxy> {
    const { hostname, port } = new URL(target)
    const server = createServer()
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(0, '127.0.0.1', resolve)
    })
    const address = server.address()
    if (address === null || typeof address === 'string') throw new Error('no port')
    const proxy = new ReplyProxy(server, `redis://127.0.0.1:${address.port}`)
    server.on('connection', (client) => proxy.pipe(client, hostname, Number(port || 6379)))
    return proxy
  }

  /** Holds every reply from now on, on every connection, new ones too, until `release()`. */
  hold(): void {
    this.held = true
    for (const upstream of this.upstreams) upstream.pause()
  }

  /** Forwards what was held, and every reply after it. */
  release(): void {
    this.held = false
    for (const upstream of this.upstreams) upstream.resume()
  }

  /**
   * Resets (TCP RST) every connection through the proxy, and each new one at once, until
   * `restore()`: to its clients, a Redis whose connections fail with `ECONNRESET`.
   */
  reset(): void {
    this.resetting = true
    for (const client of this.clients) client.resetAndDestroy()
  }

  /** Accepts and forwards connections again after `reset()`. */
  restore(): void {
    this.resetting = false
  }

  /** Closes the proxy and every connection through it. */
  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()))
    for (const client of this.clients) client.destroy()
    await closed
  }

  private pipe(client: Socket, host: string, port: number): void {
    this.accepted++
    if (this.resetting) {
      client.resetAndDestroy()
      return
    }
    const upstream = new Socket()
    this.upstreams.add(upstream)
    this.clients.add(client)
    // Either side ending ends the other: a client that disconnects leaves no socket behind.
    const end = (): void => {
      this.upstreams.delete(upstream)
      this.clients.delete(client)
      upstream.destroy()
      client.destroy()
    }
    client.on('error', end).on('close', end)
    upstream.on('error', end).on('close', end)
    client.on('data', (chunk) => upstream.write(chunk))
    upstream.on('data', (chunk) => client.write(chunk))
    if (this.held) upstream.pause()
    upstream.connect(port, host)
  }
}
