/**
 * The raw HTTP/1.1 client every suite shares: a bare TCP socket that sends exactly the bytes it is
 * given (so a test can send what no HTTP client library would), reads the answer with
 * `Http1Response`, and feeds the body to `eventsource-parser` (a spec-following parser, as a
 * browser would use). Also the `http.get` stream reader, for a stream whose end a test observes.
 */
import { type ClientRequest, get, type IncomingHttpHeaders, type IncomingMessage } from 'node:http'
import { connect, type Socket } from 'node:net'
import { StringDecoder } from 'node:string_decoder'
import { createParser, type EventSourceMessage, type EventSourceParser } from 'eventsource-parser'
import { onTestFinished } from 'vitest'
import { Http1Response } from './raw-http.js'
import { WAIT_MS, waitUntil, within } from './wait.js'

/** What a spec-following parser makes of an event stream fed to it, chunk by chunk. */
export class SseReader {
  /** The body text so far (not kept by a raw client without `transcript`). */
  text = ''
  /** Whether `feed` keeps the text: a raw client reading megabytes in a memory test does not. */
  protected keepText = true
  readonly events: EventSourceMessage[] = []
  readonly retries: number[] = []
  /** Comments (`:` lines); a heartbeat is an empty one. */
  readonly comments: string[] = []
  private readonly parser: EventSourceParser

  constructor(onEvent?: (event: EventSourceMessage) => void) {
    this.parser = createParser({
      onEvent: (event) => {
        this.events.push(event)
        onEvent?.(event)
      },
      onRetry: (retry) => this.retries.push(retry),
      onComment: (comment) => this.comments.push(comment),
    })
  }

  feed(chunk: string): void {
    if (this.keepText) this.text += chunk
    this.parser.feed(chunk)
  }

  /** Waits until `count` events were parsed; resolves with the first `count`. */
  async waitForEvents(count: number, timeout = WAIT_MS): Promise<EventSourceMessage[]> {
    await waitUntil(
      () => this.events.length >= count,
      () => `${count} events; ${this.describe()}`,
      timeout,
    )
    return this.events.slice(0, count)
  }

  /** Data of the events of the default (`message`) type. */
  messages(): string[] {
    return this.events.filter((event) => event.event === undefined).map((event) => event.data)
  }

  /** What was received so far, for a failure message. */
  describe(): string {
    return `${this.events.length} events, body so far: ${JSON.stringify(this.text)}`
  }
}

export interface RawOptions {
  /** Path and query of the request. @defaultValue `/events` */
  path?: string
  /** Extra header lines, written as given (`Name: value`, no CRLF). */
  headers?: string[]
  /** The whole request, sent instead of the one built from `path` and `headers`. */
  request?: string | Buffer
  /**
   * Do not parse events nor keep the body (for thousands of idle clients): heartbeats are counted
   * in `comments`, `data:` lines in `dataLines`, and the end of the body is kept in `tail`.
   */
  light?: boolean
  /** Called for every event, with the time it was parsed. */
  onEvent?: (event: EventSourceMessage, at: number) => void
  /**
   * Keep what arrives: `transcript()` and the body `text` (not kept by default, so that a client
   * reading megabytes does not weigh on a memory measurement).
   */
  transcript?: boolean
}

/**
 * An HTTP/1.1 exchange on a bare TCP socket: what it has received so far. Reading can be paused
 * with `socket.pause()` (the server then meets a full socket) and resumed with `socket.resume()`.
 */
export class RawHttpClient extends SseReader {
  /** In light mode: `data:` lines seen (each event there has one). */
  dataLines = 0
  /** An `id:` field has been seen (a fresh stream starts with one, with no data). */
  sawId = false
  /** Body bytes received (after de-chunking). */
  bodyBytes = 0
  /** The last 256 characters of the body, kept only in light mode (for `includes` checks). */
  tail = ''
  /** The socket has closed (whatever the cause). */
  closed = false
  /** Resolves when the socket has closed. */
  readonly whenClosed: Promise<void>
  /** The socket failed (`ECONNRESET`, ...). */
  error: Error | undefined
  readonly socket: Socket
  private readonly response = new Http1Response((data) => this.body(data))
  private readonly decoder = new StringDecoder('utf8')
  private readonly light: boolean
  private readonly keepTranscript: boolean
  /** Everything received, head and chunked framing included (with `transcript` only). */
  private raw = ''

  constructor(port: number, options: RawOptions = {}) {
    const onEvent = options.onEvent
    super(onEvent && ((event) => onEvent(event, performance.timeOrigin + performance.now())))
    this.light = options.light === true
    this.keepTranscript = options.transcript === true
    this.keepText = this.keepTranscript
    const socket = connect({ port, host: '127.0.0.1' })
    this.socket = socket
    socket.setNoDelay(true)
    socket.on('error', (error) => {
      this.error = error
    })
    this.whenClosed = new Promise((resolve) =>
      socket.once('close', () => {
        this.closed = true
        resolve()
      }),
    )
    socket.on('data', (data: Buffer) => {
      if (this.keepTranscript) this.raw += data.toString('latin1')
      this.response.feed(data)
    })
    // Not `end()`: a half-closed request makes Node's server abort the response it is streaming.
    socket.write(
      options.request ??
        [
          `GET ${options.path ?? '/events'} HTTP/1.1`,
          'Host: 127.0.0.1',
          'Accept: text/event-stream',
          ...(options.headers ?? []),
          '',
          '',
        ].join('\r\n'),
    )
  }

  /** The status code, once the head has arrived. */
  get status(): number | undefined {
    return this.response.status
  }

  /** The response headers, names lowercased. */
  get headers(): Record<string, string> {
    return this.response.headers
  }

  /** The server ended the chunked body (`0\r\n\r\n`): a clean end of the stream. */
  get ended(): boolean {
    return this.response.ended
  }

  /** The raw response text (head and body, chunked framing included), read as latin1. */
  transcript(): string {
    if (!this.keepTranscript) throw new Error('no transcript kept: open the client with { transcript: true }')
    return this.raw
  }

  /** Resolves once the socket is connected. */
  connected(): Promise<void> {
    if (!this.socket.connecting) return Promise.resolve()
    return new Promise((resolve, reject) => {
      this.socket.once('connect', resolve)
      this.socket.once('error', reject)
    })
  }

  /** Resolves once `predicate` holds, or rejects after `timeout` ms with what was received. */
  until(predicate: () => boolean, timeout = 5000): Promise<void> {
    return waitUntil(predicate, () => `received: ${JSON.stringify(this.events)}`, timeout)
  }

  waitForHead(timeout = WAIT_MS): Promise<void> {
    return waitUntil(
      () => this.status !== undefined || this.closed,
      () => `the response head (${this.describe()})`,
      timeout,
    )
  }

  /** Waits for the end of the chunked body or of the connection. */
  waitForEnd(timeout = WAIT_MS): Promise<void> {
    return waitUntil(
      () => this.ended || this.closed,
      () => `the end of the stream (${this.describe()})`,
      timeout,
    )
  }

  waitForClose(timeout = WAIT_MS): Promise<void> {
    return waitUntil(
      () => this.closed,
      () => `the raw socket to close (${this.describe()})`,
      timeout,
    )
  }

  override describe(): string {
    return `status ${this.status}, ${this.events.length} events, ${this.bodyBytes} body bytes, ended ${this.ended}, closed ${this.closed}`
  }

  destroy(): void {
    this.socket.destroy()
  }

  private body(data: Buffer): void {
    this.bodyBytes += data.length
    const text = this.decoder.write(data)
    if (!this.sawId && text.includes('id: ')) this.sawId = true
    if (!this.light) {
      this.feed(text)
      return
    }
    this.tail = (this.tail + text).slice(-256)
    // Only what a test of idle clients needs: heartbeats are `:\n\n`.
    let at = text.indexOf(':\n\n')
    while (at !== -1) {
      if (at === 0 || text[at - 1] === '\n') this.comments.push('')
      at = text.indexOf(':\n\n', at + 3)
    }
    at = text.indexOf('data:')
    while (at !== -1) {
      if (at === 0 || text[at - 1] === '\n') this.dataLines++
      at = text.indexOf('data:', at + 5)
    }
  }
}

/** Sends `request` as is on a new connection to `port`; the socket is destroyed when the test finishes. */
export function rawRequest(port: number, request: string | Buffer): RawHttpClient {
  const client = new RawHttpClient(port, { request, transcript: true })
  onTestFinished(() => client.destroy())
  return client
}

/** A response read whole from a raw socket. */
export interface RawResponse {
  status: number
  headers: Record<string, string>
  /** The body with HTTP/1.1 chunked framing removed. */
  body: string
}

/**
 * Sends `request` as is and reads the response until `done(body)` holds or the connection ends;
 * then destroys the socket. Rejects when the connection closes before a response head.
 */
export async function rawResponse(
  port: number,
  request: string | Buffer,
  done: (body: string) => boolean = () => false,
): Promise<RawResponse> {
  const client = rawRequest(port, request)
  await within(
    new Promise<void>((resolve) => {
      const check = (): void => {
        if (client.closed || (client.status !== undefined && done(client.text))) resolve()
      }
      client.socket.on('data', check)
      void client.whenClosed.then(check)
    }),
    'a raw HTTP response',
  )
  client.destroy()
  if (client.status === undefined)
    throw client.error ?? new Error(`connection closed without a response: ${client.describe()}`)
  return { status: client.status, headers: client.headers, body: client.text }
}

/** Sends raw bytes and resolves with the status code of the response (or `undefined` if none came). */
export async function rawStatus(
  port: number,
  request: string | Buffer,
  timeout = 5000,
): Promise<number | undefined> {
  const client = new RawHttpClient(port, { request, light: true })
  try {
    await client.waitForHead(timeout)
    return client.status
  } finally {
    client.destroy()
  }
}

/** An HTTP/1.1 GET of `path` with `lastEventId` written byte for byte as the `Last-Event-ID` value. */
export function getWithLastEventId(path: string, lastEventId: Buffer | string): Buffer {
  return Buffer.concat([
    Buffer.from(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\nLast-Event-ID: `),
    typeof lastEventId === 'string' ? Buffer.from(lastEventId, 'latin1') : lastEventId,
    Buffer.from('\r\n\r\n'),
  ])
}

/** An event stream read with `http.get`: no reconnection, so the end of the body is observable. */
export class HttpGetStream extends SseReader {
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
export async function openStream(url: string, headers: Record<string, string> = {}): Promise<HttpGetStream> {
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
  return new HttpGetStream(url, request, response)
}
