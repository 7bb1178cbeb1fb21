/** Real sockets for core tests: a hub served on port 0 and clients that read raw SSE. */
import net from 'node:net'
import { createParser, type EventSourceMessage } from 'eventsource-parser'
import { afterEach } from 'vitest'
import { type Listening, listen } from '../../../../test/support/listen.js'
import { Http1Response } from '../../../../test/support/raw-http.js'
import { waitUntil } from '../../../../test/support/wait.js'
import type { Hub } from '../../src/hub.js'
import type { HubOptions } from '../../src/hub-options.js'
import { createHub } from '../../src/index.js'

/** Serves `stream` of `hub` at every URL. */
export function serveHub(hub: Hub<string | Promise<string>>, stream = 'test'): Promise<Listening> {
  return listen((req, res) => hub.serve(req, res, stream))
}

/** An SSE client over a raw socket that records parsed events, comments and retry values. */
export interface RawClient {
  socket: net.Socket
  events: EventSourceMessage[]
  comments: string[]
  retries: number[]
  /** Raw response text (headers and body, chunked framing included). */
  text(): string
  ended: Promise<void>
  /** Resolves once `predicate` holds, or rejects after `ms` with what was received. */
  until(predicate: () => boolean, ms?: number): Promise<void>
  close(): void
}

export function rawClient(port: number, path = '/', headers: Record<string, string> = {}): RawClient {
  const socket = net.connect(port, '127.0.0.1')
  const lines = Object.entries({ host: `127.0.0.1:${port}`, accept: 'text/event-stream', ...headers })
    .map(([k, v]) => `${k}: ${v}`)
    .join('\r\n')
  socket.write(`GET ${path} HTTP/1.1\r\n${lines}\r\n\r\n`)
  const client: RawClient = {
    socket,
    events: [],
    comments: [],
    retries: [],
    text: () => raw,
    ended: new Promise((resolve) => socket.once('close', () => resolve())),
    until: (predicate, ms = 5000) =>
      waitUntil(predicate, () => `received: ${JSON.stringify(client.events)}`, ms),
    close: () => socket.destroy(),
  }
  let raw = ''
  const decoder = new TextDecoder()
  const parser = createParser({
    onEvent: (event) => client.events.push(event),
    onComment: (comment) => client.comments.push(comment),
    onRetry: (retry) => client.retries.push(retry),
  })
  const response = new Http1Response((data) => parser.feed(decoder.decode(data, { stream: true })))
  socket.on('data', (chunk: Buffer) => {
    raw += chunk.toString('latin1')
    response.feed(chunk)
  })
  socket.on('error', () => {})
  return client
}

/**
 * For a file of socket tests: what a test opens is closed after it, newest first. `hubFor` makes a
 * hub (a short `retry:`), `started` waits for a server, and anything else goes in `cleanups`.
 */
export function closesAfterEach(): {
  cleanups: (() => unknown)[]
  hubFor(options?: HubOptions): Hub<string>
  started(server: Promise<Listening>): Promise<Listening>
} {
  const cleanups: (() => unknown)[] = []
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
  })
  return {
    cleanups,
    hubFor(options = {}) {
      const hub = createHub({ retry: 20, ...options }) as Hub<string>
      cleanups.push(() => hub.close())
      return hub
    },
    async started(server) {
      const s = await server
      cleanups.push(() => s.close())
      return s
    },
  }
}
