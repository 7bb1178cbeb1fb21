/** Servers for every suite, on an ephemeral port of the loopback interface. */
import { createServer, type RequestListener, type Server } from 'node:http'
import type { AddressInfo, Server as NetServer, Socket } from 'node:net'
import { onTestFinished } from 'vitest'

/** A server listening on 127.0.0.1. */
export interface Listening<S extends NetServer = Server> {
  readonly server: S
  readonly port: number
  /** `http://127.0.0.1:<port>`, without a trailing slash. */
  readonly url: string
  /** Every socket the server accepted, in order (to drop one from the server side). */
  readonly sockets: Socket[]
  /** Stops accepting, ends every connection and resolves once the server is closed. */
  close(): Promise<void>
}

/**
 * Starts `target` on port 0 of 127.0.0.1: a server as it is (node:http, http2, an Express app's
 * `http.createServer(options, app)`), or a request handler (an Express app too) in a new
 * `http.createServer`. The caller closes it; {@link listenForTest} closes it after the test.
 */
export function listen(target: RequestListener): Promise<Listening<Server>>
export function listen<S extends NetServer>(target: S): Promise<Listening<S>>
export async function listen<S extends NetServer>(target: S | RequestListener): Promise<Listening<S>> {
  const server = (typeof target === 'function' ? createServer(target) : target) as S
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject)
      resolve()
    })
  })
  const sockets: Socket[] = []
  server.on('connection', (socket: Socket) => sockets.push(socket))
  const { port } = server.address() as AddressInfo
  return { server, port, url: `http://127.0.0.1:${port}`, sockets, close: () => closeServer(server, sockets) }
}

/** {@link listen}, closed (with every connection it still has) when the current test finishes. */
export function listenForTest(target: RequestListener): Promise<Listening<Server>>
export function listenForTest<S extends NetServer>(target: S): Promise<Listening<S>>
export async function listenForTest<S extends NetServer>(target: S | RequestListener): Promise<Listening<S>> {
  const listening = await listen(target as S)
  onTestFinished(() => listening.close())
  return listening
}

function closeServer(server: NetServer, sockets: readonly Socket[]): Promise<void> {
  const dropAll = () => {
    const http = server as Partial<Server>
    if (typeof http.closeAllConnections === 'function') http.closeAllConnections()
    else for (const socket of sockets) socket.destroy()
  }
  if (!server.listening) {
    dropAll()
    return Promise.resolve()
  }
  return new Promise((resolve) => {
    // Stop accepting first, so a reconnecting client cannot slip in after the sockets are dropped.
    server.close(() => resolve())
    dropAll()
  })
}
