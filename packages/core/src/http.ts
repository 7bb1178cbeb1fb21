/**
 * The HTTP side of an event stream, for `node:http` and `node:http2` alike.
 * @see https://html.spec.whatwg.org/multipage/server-sent-events.html#server-sent-events-intro
 */
import { type IncomingMessage, ServerResponse } from 'node:http'
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2'
import type { Transport } from './connection.js'

/** Content type of an event stream; UTF-8 is the only encoding the spec allows. */
export const EVENT_STREAM_CONTENT_TYPE = 'text/event-stream; charset=utf-8'

const COMMON_HEADERS = {
  'content-type': EVENT_STREAM_CONTENT_TYPE,
  // No cache may keep or replay the stream, and no proxy or compression middleware may transform
  // (and so buffer) it: `no-transform` is what `compression` and most proxies honour.
  'cache-control': 'no-cache, no-store, no-transform',
  // nginx buffers proxied responses unless told otherwise.
  'x-accel-buffering': 'no',
} as const

// No `Connection` header: on HTTP/1.x Node sends `keep-alive` itself exactly when it will keep the
// connection open, and `close` when the request asked to close (RFC 9112 section 9.6), when an
// HTTP/1.0 response is delimited by closing, or when `maxRequestsPerSocket` is used up. Forcing
// `keep-alive` would contradict all three. On HTTP/2 connection-specific headers are forbidden
// (Safari drops streams that carry them).
const HEADERS = Object.freeze({ ...COMMON_HEADERS })

/**
 * The headers of an event-stream response, the same on every HTTP version; `Connection` is left to
 * Node, which sends `keep-alive` on HTTP/1.x whenever it keeps the connection open.
 */
export function responseHeaders(_http2: boolean): Readonly<Record<string, string>> {
  return HEADERS
}

/**
 * Once a response ended by hub shutdown has finished, closes its connection too (HTTP/1.x) or asks
 * the HTTP/2 session to close gracefully. Otherwise the idle keep-alive connection would hold a
 * closing server open until its keep-alive timeout.
 */
export function closeConnectionAfterShutdown(
  hub: { readonly closed: boolean },
  req: IncomingMessage | Http2ServerRequest,
  res: ServerResponse | Http2ServerResponse,
): void {
  if (req.httpVersionMajor >= 2) {
    const session = (req as Http2ServerRequest).stream.session
    res.once('finish', () => {
      if (hub.closed && session !== undefined && !session.closed) session.close()
    })
    return
  }
  const socket = req.socket
  res.once('finish', () => {
    if (hub.closed) socket.end()
  })
}

/**
 * Where an HTTP/1.x event stream's bytes may go directly: its socket, with Rewind applying the
 * chunked framing. A fan-out then costs one socket write per client, of a buffer framed once for
 * all of them, instead of a pass through `res.write` per client; and it does not slow down when a
 * framework has swapped the response's prototype (Express does). Only taken when nothing stands
 * between Rewind and the socket: no middleware wrapping `res.write`, nothing buffered in the response
 * object itself, and a framing Node has settled. Otherwise (and on HTTP/2) writes go through `res`.
 */
export function directTransport(
  req: IncomingMessage | Http2ServerRequest,
  res: ServerResponse | Http2ServerResponse,
): Transport | undefined {
  if (req.httpVersionMajor >= 2 || !(res instanceof ServerResponse)) return undefined
  const socket = res.socket
  if (socket === null || socket.destroyed || res.write !== ServerResponse.prototype.write) return undefined
  // Settled by writeHead; the head itself goes out with the first write, through `res`.
  const chunked = (res as ServerResponse & { chunkedEncoding?: unknown }).chunkedEncoding
  if (typeof chunked !== 'boolean' || res.writableLength !== socket.writableLength) return undefined
  return { out: socket, chunked }
}
