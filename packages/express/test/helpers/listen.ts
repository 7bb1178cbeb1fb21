import { createServer, type RequestListener, type Server, type ServerOptions } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import { onTestFinished } from 'vitest'

/** An app listening on an ephemeral port of the loopback interface. */
export interface Listening {
  server: Server
  port: number
  /** `http://127.0.0.1:<port><path>` */
  url(path: string): string
  /** Every socket the server accepted, in order (to drop one from the server side). */
  sockets: Socket[]
}

/** What `app.listen` looks like in Express 4 and 5. */
interface Listenable extends RequestListener {
  listen(port: number, host: string, callback: () => void): Server
}

/**
 * Starts `app` on port 0 with `app.listen` (or `http.createServer(serverOptions, app)` when server
 * options are given) and closes it, with every connection it still has, when the test finishes.
 */
export async function listen(app: Listenable, serverOptions?: ServerOptions): Promise<Listening> {
  const server = await new Promise<Server>((resolve, reject) => {
    if (serverOptions === undefined) {
      const listening: Server = app.listen(0, '127.0.0.1', () => resolve(listening))
      listening.once('error', reject)
      return
    }
    const created = createServer(serverOptions, app)
    created.once('error', reject)
    created.listen(0, '127.0.0.1', () => resolve(created))
  })
  const sockets: Socket[] = []
  server.on('connection', (socket: Socket) => sockets.push(socket))
  onTestFinished(() => closeServer(server))
  const { port } = server.address() as AddressInfo
  return { server, port, url: (path) => `http://127.0.0.1:${port}${path}`, sockets }
}

function closeServer(server: Server): Promise<void> {
  if (!server.listening) {
    server.closeAllConnections()
    return Promise.resolve()
  }
  return new Promise((resolve) => {
    // Stop accepting first, so a reconnecting client cannot slip in after the sockets are dropped.
    server.close(() => resolve())
    server.closeAllConnections()
  })
}
