/**
 * An SSE client on a bare TCP socket: it sends exactly the bytes it is given (so a test can send
 * what no HTTP client library would), reads the response with test/support's Http1Response, and
 * feeds the body to `eventsource-parser` (a spec-following parser, as a browser would use).
 */
import { connect, type Socket } from 'node:net'
import { StringDecoder } from 'node:string_decoder'
import { createParser, type EventSourceMessage } from 'eventsource-parser'
import { Http1Response } from '../../support/raw-http.js'
import { waitUntil } from '../../support/wait.js'
import { pool } from './wait.js'

export interface RawOptions {
  /** Path and query of the request. @defaultValue `/events` */
  path?: string
  /** Extra header lines, written as given (`Name: value`, no CRLF). */
  headers?: string[]
  /** The whole request, sent instead of the one built from `path` and `headers`. */
  request?: string | Buffer
  /** Do not parse events (for thousands of idle clients): only heartbeats and `data:` lines are counted. */
  light?: boolean
  /** Called for every event, with the time it was parsed. */
  onEvent?: (event: EventSourceMessage, at: number) => void
}

/** What a raw client has received so far. */
export class RawClient {
  readonly events: EventSourceMessage[] = []
  readonly retries: number[] = []
  /** Comments (`:` lines); a heartbeat is an empty one. */
  comments = 0
  /** In light mode: `data:` lines seen (each event here has one). */
  dataLines = 0
  /** An `id:` field has been seen (a fresh stream starts with one, with no data). */
  sawId = false
  /** Body bytes received (after de-chunking). */
  bodyBytes = 0
  /** Body text, kept only in light mode (for `includes` checks). */
  tail = ''
  /** The socket has closed (whatever the cause). */
  closed = false
  /** The socket failed (`ECONNRESET`, ...). */
  error: Error | undefined
  readonly socket: Socket
  private readonly response = new Http1Response((data) => this.body(data))
  private readonly decoder = new StringDecoder('utf8')
  private readonly parser
  private readonly light: boolean

  constructor(port: number, options: RawOptions = {}) {
    this.light = options.light === true
    this.parser = createParser({
      onEvent: (event) => {
        this.events.push(event)
        options.onEvent?.(event, performance.timeOrigin + performance.now())
      },
      onRetry: (retry) => this.retries.push(retry),
      onComment: () => {
        this.comments++
      },
    })
    const socket = connect({ port, host: '127.0.0.1' })
    this.socket = socket
    socket.setNoDelay(true)
    socket.on('error', (error) => {
      this.error = error
    })
    socket.on('close', () => {
      this.closed = true
    })
    socket.on('data', (data: Buffer) => this.response.feed(data))
    const request =
      options.request ??
      [
        `GET ${options.path ?? '/events'} HTTP/1.1`,
        'Host: 127.0.0.1',
        'Accept: text/event-stream',
        ...(options.headers ?? []),
        '',
        '',
      ].join('\r\n')
    socket.write(request)
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

  /** Resolves once the socket is connected. */
  connected(): Promise<void> {
    if (!this.socket.connecting) return Promise.resolve()
    return new Promise((resolve, reject) => {
      this.socket.once('connect', resolve)
      this.socket.once('error', reject)
    })
  }

  waitForHead(timeout = 10_000): Promise<void> {
    return waitUntil(
      () => this.status !== undefined || this.closed,
      () => `the response head (${this.describe()})`,
      timeout,
    )
  }

  waitForEvents(count: number, timeout = 10_000): Promise<void> {
    return waitUntil(
      () => this.events.length >= count,
      () => `${count} events (${this.describe()})`,
      timeout,
    )
  }

  waitForEnd(timeout = 10_000): Promise<void> {
    return waitUntil(
      () => this.ended || this.closed,
      () => `the end of the stream (${this.describe()})`,
      timeout,
    )
  }

  describe(): string {
    return `status ${this.status}, ${this.events.length} events, ${this.bodyBytes} body bytes, ended ${this.ended}, closed ${this.closed}`
  }

  destroy(): void {
    this.socket.destroy()
  }

  private body(data: Buffer): void {
    this.bodyBytes += data.length
    const text = this.decoder.write(data)
    if (!this.sawId && text.includes('id: ')) this.sawId = true
    if (this.light) {
      this.tail = (this.tail + text).slice(-256)
      // Only what a test of idle clients needs: heartbeats are `:\n\n`.
      let at = text.indexOf(':\n\n')
      while (at !== -1) {
        if (at === 0 || text[at - 1] === '\n') this.comments++
        at = text.indexOf(':\n\n', at + 3)
      }
      at = text.indexOf('data:')
      while (at !== -1) {
        if (at === 0 || text[at - 1] === '\n') this.dataLines++
        at = text.indexOf('data:', at + 5)
      }
      return
    }
    this.parser.feed(text)
  }
}

/** Sends raw bytes and resolves with the status code of the response (or `undefined` if none came). */
export async function rawStatus(
  port: number,
  request: string | Buffer,
  timeout = 5000,
): Promise<number | undefined> {
  const client = new RawClient(port, { request, light: true })
  try {
    await client.waitForHead(timeout)
    return client.status
  } finally {
    client.destroy()
  }
}

/**
 * Opens `count` light streams to `port`, 200 at a time, each pushed to `clients` as it connects;
 * resolves once every one has its first body bytes (or was closed: the caller checks which).
 */
export async function openLightStreams(port: number, count: number, clients: RawClient[]): Promise<void> {
  await pool(count, 200, async () => {
    const client = new RawClient(port, { light: true })
    clients.push(client)
    await waitUntil(
      () => client.bodyBytes > 0 || client.closed,
      () => `a stream to open: ${client.describe()}`,
      30_000,
    )
  })
}
