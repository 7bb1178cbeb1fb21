/** A hand-written SSE server on node:http: no Rewind code, so the client is tested against plain SSE. */
import {
  createServer,
  type IncomingMessage,
  type RequestListener,
  type Server,
  type ServerResponse,
} from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import { onTestFinished } from 'vitest'

/** A request as the server received it. */
export interface SeenRequest {
  method: string
  url: string
  headers: IncomingMessage['headers']
  lastEventId: string | undefined
  body: string
  /** When it arrived, from `performance.now()`. */
  at: number
}

export interface Listening {
  server: Server
  /** `http://127.0.0.1:<port><path>` */
  url(path?: string): string
  /** Every request, in order of arrival, with its body read. */
  requests: SeenRequest[]
  /** Every socket accepted, to drop one from the server side. */
  sockets: Set<Socket>
}

/**
 * Listens on 127.0.0.1:0 and records each request (its body read first) before `handler` answers it
 * with the request's number (0 for the first). Closed, with every connection, when the test finishes.
 */
export async function listen(
  handler: (req: SeenRequest, res: ServerResponse, index: number) => void,
): Promise<Listening> {
  const requests: SeenRequest[] = []
  const sockets = new Set<Socket>()
  const listener: RequestListener = (req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (chunk: Buffer) => chunks.push(chunk))
    req.on('end', () => {
      const header = req.headers['last-event-id']
      const seen: SeenRequest = {
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        lastEventId: typeof header === 'string' ? header : undefined,
        body: Buffer.concat(chunks).toString('utf8'),
        at: performance.now(),
      }
      requests.push(seen)
      handler(seen, res, requests.length - 1)
    })
  }
  return listenWith(listener, requests, sockets)
}

/** Listens with any request listener (an Express app, say); `requests` stays empty. */
export function listenApp(listener: RequestListener): Promise<Listening> {
  return listenWith(listener, [], new Set())
}

async function listenWith(
  listener: RequestListener,
  requests: SeenRequest[],
  sockets: Set<Socket>,
): Promise<Listening> {
  const server = createServer(listener)
  server.on('connection', (socket: Socket) => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  onTestFinished(
    () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      }),
  )
  const { port } = server.address() as AddressInfo
  return { server, url: (path = '/') => `http://127.0.0.1:${port}${path}`, requests, sockets }
}

/** Starts an event stream response. */
export function openStream(res: ServerResponse, headers: Record<string, string> = {}): void {
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', ...headers })
  res.flushHeaders()
}
