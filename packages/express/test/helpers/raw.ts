/**
 * Clients below EventSource: an `http.get` stream reader that never reconnects, and a raw TCP
 * request for bytes that no HTTP client library would send.
 */
import { type ClientRequest, get, type IncomingHttpHeaders, type IncomingMessage } from 'node:http'
import { connect as connectTcp, type Socket } from 'node:net'
import { StringDecoder } from 'node:string_decoder'
import { createParser, type EventSourceMessage, type EventSourceParser } from 'eventsource-parser'
import { onTestFinished } from 'vitest'
import { Http1Response } from '../../../../test/support/raw-http.js'
import { WAIT_MS, waitUntil, within } from '../../../../test/support/wait.js'

/** What a spec-following parser makes of a response body so far. */
export class SseReader {
  text = ''
  readonly events: EventSourceMessage[] = []
  readonly retries: number[] = []
  readonly comments: string[] = []
  private readonly parser: EventSourceParser = createParser({
    onEvent: (event) => this.events.push(event),
    onRetry: (retry) => this.retries.push(retry),
    onComment: (comment) => this.comments.push(comment),
  })

  feed(chunk: string): void {
    this.text += chunk
    this.parser.feed(chunk)
  }

  /** Waits until `count` events were parsed; resolves with the first `count`. */
  async waitForEvents(count: number, timeout = WAIT_MS): Promise<EventSourceMessage[]> {
    await waitUntil(
      () => this.events.length >= count,
      () => `${count} events; body so far: ${JSON.stringify(this.text)}`,
      timeout,
    )
    return this.events.slice(0, count)
  }
}

/** An event stream read with `http.get`: no reconnection, so the end of the body is observable. */
export class RawStream extends SseReader {
  readonly status: number
  readonly headers: IncomingHttpHeaders
  /** The body ended cleanly (the server finished the response). */
  ended = false

  constructor(
    private readonly url: string,
    private readonly request: ClientRequest,
    readonly response: IncomingMessage,
  ) {
    super()
    this.status = response.statusCode ?? 0
    this.headers = response.headers
    // The server may drop the connection on purpose; that is an outcome to assert, not a crash.
    request.on('error', () => {})
    response.on('error', () => {})
    response.setEncoding('utf8')
    response.on('data', (chunk: string) => this.feed(chunk))
    response.on('end', () => {
      this.ended = true
    })
  }

  waitForEnd(timeout = WAIT_MS): Promise<void> {
    return waitUntil(
      () => this.ended,
      () => `the end of ${this.url}; body so far: ${JSON.stringify(this.text)}`,
      timeout,
    )
  }

  close(): void {
    this.request.destroy()
  }
}

/** GETs `url` and resolves once the status and headers have arrived; destroyed when the test finishes. */
export async function openStream(url: string, headers: Record<string, string> = {}): Promise<RawStream> {
  // A fresh connection per stream (no agent pooling), so closing it is what the server sees.
  const request = get(url, { headers: { accept: 'text/event-stream', ...headers }, agent: false })
  onTestFinished(() => {
    request.destroy()
  })
  const response = await within(
    new Promise<IncomingMessage>((resolve, reject) => {
      request.once('response', resolve)
      request.once('error', reject)
    }),
    `the status and headers of ${url}`,
  )
  return new RawStream(url, request, response)
}

/** A response read off a raw TCP socket, with its chunked body decoded and parsed as an event stream. */
export class RawExchange extends SseReader {
  /** The socket has closed. */
  closed = false
  private readonly decoder = new StringDecoder('utf8')
  private readonly response = new Http1Response((data) => this.feed(this.decoder.write(data)))

  constructor(private readonly socket: Socket) {
    super()
    socket.on('error', () => {})
    socket.on('close', () => {
      this.closed = true
    })
    socket.on('data', (data: Buffer) => this.response.feed(data))
  }

  /** The status code, once the head has arrived. */
  get status(): number | undefined {
    return this.response.status
  }

  /** The response headers, names lowercased. */
  get headers(): Record<string, string> {
    return this.response.headers
  }

  waitForHead(timeout = WAIT_MS): Promise<void> {
    return waitUntil(() => this.status !== undefined || this.closed, 'the head of a raw response', timeout)
  }

  waitForClose(timeout = WAIT_MS): Promise<void> {
    return waitUntil(() => this.closed, 'the raw socket to close', timeout)
  }

  close(): void {
    this.socket.destroy()
  }
}

/** Writes `request` as is to a TCP connection on `port` and reads the response. */
export function rawRequest(port: number, request: Buffer): RawExchange {
  const socket = connectTcp(port, '127.0.0.1')
  onTestFinished(() => {
    socket.destroy()
  })
  // Not `end()`: a half-closed request makes Node's server abort the response it is streaming.
  socket.write(request)
  return new RawExchange(socket)
}

/** An HTTP/1.1 GET of `path` with `lastEventId` written byte for byte as the `Last-Event-ID` value. */
export function getWithLastEventId(path: string, lastEventId: Buffer | string): Buffer {
  return Buffer.concat([
    Buffer.from(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\nLast-Event-ID: `),
    typeof lastEventId === 'string' ? Buffer.from(lastEventId, 'latin1') : lastEventId,
    Buffer.from('\r\n\r\n'),
  ])
}
