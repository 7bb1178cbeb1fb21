/** The HTTP/2 cleartext (h2c) client every suite shares: a session and the event streams read over it. */
import {
  type ClientHttp2Session,
  type ClientHttp2Stream,
  connect,
  type IncomingHttpHeaders,
  type IncomingHttpStatusHeader,
} from 'node:http2'
import { onTestFinished } from 'vitest'
import { SseReader } from './raw-client.js'
import { within } from './wait.js'

/** An HTTP/2 cleartext (h2c) session, destroyed when the test finishes. */
export function connectH2(url: string): ClientHttp2Session {
  const session = connect(url)
  // Failures surface through the requests a test makes; an unhandled session error would crash the worker.
  session.on('error', () => {})
  onTestFinished(() => {
    session.destroy()
  })
  return session
}

/** An event stream read over HTTP/2, closed when the test finishes. */
export class Http2Stream extends SseReader {
  readonly request: ClientHttp2Stream
  readonly response: Promise<IncomingHttpHeaders & IncomingHttpStatusHeader>
  readonly ended: Promise<void>

  constructor(session: ClientHttp2Session, path: string, headers: Record<string, string> = {}) {
    super()
    this.request = session.request({ ':path': path, ...headers })
    this.request.setEncoding('utf8')
    this.request.on('data', (chunk: string) => this.feed(chunk))
    this.request.on('error', () => {})
    this.response = within(
      new Promise((resolve) => this.request.once('response', resolve)),
      `the HTTP/2 response of ${path}`,
    )
    this.ended = new Promise<void>((resolve) => this.request.once('close', resolve))
    onTestFinished(() => this.close())
  }

  close(): void {
    if (!this.request.closed) this.request.close()
  }
}
