/**
 * Everything about the bytes on their way out to a client: the response head and the opening
 * `retry:` hint, HTTP/1.1 chunk framing, the direct socket transport, and the accounting of turns of
 * the event loop that tells a burst from a slow client.
 * @see https://html.spec.whatwg.org/multipage/server-sent-events.html#server-sent-events-intro
 */
import { ServerResponse } from 'node:http'
import type { Http2ServerResponse } from 'node:http2'
import { encodeComment } from './frame.js'
import type { StoredEvent } from './store.js'
import type { EventSink } from './types.js'

/** Content type of an event stream; UTF-8 is the only encoding the spec allows. */
export const EVENT_STREAM_CONTENT_TYPE = 'text/event-stream; charset=utf-8'

// No `Connection` header: on HTTP/1.x Node sends `keep-alive` itself exactly when it will keep the
// connection open, and `close` when the request asked to close (RFC 9112 section 9.6), when an
// HTTP/1.0 response is delimited by closing, or when `maxRequestsPerSocket` is used up. Forcing
// `keep-alive` would contradict all three. On HTTP/2 connection-specific headers are forbidden
// (Safari drops streams that carry them).
const HEADERS: Readonly<Record<string, string>> = Object.freeze({
  'content-type': EVENT_STREAM_CONTENT_TYPE,
  // No cache may keep or replay the stream, and no proxy or compression middleware may transform
  // (and so buffer) it: `no-transform` is what `compression` and most proxies honour.
  'cache-control': 'no-cache, no-store, no-transform',
  // nginx buffers proxied responses unless told otherwise.
  'x-accel-buffering': 'no',
})

/**
 * The headers of an event stream, the same on every HTTP version; `Connection` is left to Node,
 * which sends `keep-alive` on HTTP/1.x whenever it keeps the connection open.
 */
export function eventStreamHeaders(): Readonly<Record<string, string>> {
  return HEADERS
}

/**
 * Where a connection's bytes go once its head is sent: the sink itself, or (HTTP/1.x) the socket
 * under it, with the chunked transfer framing applied by Rewind. See {@link directTransport}.
 */
export interface Transport {
  readonly out: Output
  /** Whether each write must be framed as an HTTP/1.1 chunk. */
  readonly chunked: boolean
}

/** The writable side of a transport. */
export type Output = Pick<EventSink, 'write' | 'writableLength' | 'on' | 'removeListener'>

/**
 * Writes the response head (flushed at once if `flush`, else in the same packet as the first bytes,
 * which the caller writes in the same tick) and says where later bytes may go. Given by HTTP
 * serving; a plain sink has none.
 */
export type StartStream = (flush: boolean) => Transport | undefined

/**
 * Frames shared by several writers (one fan-out flush, one write of a replayed page): the bytes, and
 * the same bytes framed as one HTTP/1.1 chunk, built at most once and only if a direct transport asks.
 */
export class SharedFrames {
  private chunk: Buffer | undefined

  constructor(readonly all: Buffer) {}

  get framed(): Buffer {
    if (this.chunk === undefined) this.chunk = frameChunk(this.all)
    return this.chunk
  }
}

/**
 * The frames of `events[start..end)` as one buffer (`bytes` their total length), for one write to
 * every reader; a single event's frame is used as it is.
 */
export function concatFrames(
  events: readonly StoredEvent[],
  bytes: number,
  start = 0,
  end = events.length,
): Buffer {
  if (end - start === 1) return events[start]!.frame
  // Stryker disable next-line ConditionalExpression,EqualityOperator: slicing the whole array gives the same frames; not copying it is for speed
  const run = start === 0 && end === events.length ? events : events.slice(start, end)
  return Buffer.concat(run.map(frameOf), bytes)
}

function frameOf(event: StoredEvent): Buffer {
  return event.frame
}

/** `bytes` as one HTTP/1.1 chunk: size in hex, CRLF, the bytes, CRLF. */
export function frameChunk(bytes: Uint8Array): Buffer {
  const head = `${bytes.length.toString(16)}\r\n`
  const framed = Buffer.allocUnsafe(head.length + bytes.length + 2)
  // ASCII only: the default encoding writes it as it is.
  framed.write(head, 0)
  framed.set(bytes, head.length)
  framed.write('\r\n', head.length + bytes.length)
  return framed
}

const HEARTBEAT = Buffer.from(encodeComment())
const HEARTBEAT_CHUNK = frameChunk(HEARTBEAT)

/**
 * Where an HTTP/1.x event stream's bytes may go directly: its socket, with Rewind applying the
 * chunked framing. A fan-out then costs one socket write per client, of a buffer framed once for
 * all of them, instead of a pass through `res.write` per client; and it does not slow down when a
 * framework has swapped the response's prototype (Express does). Only taken when nothing stands
 * between Rewind and the socket: no middleware wrapping `res.write`, nothing buffered in the response
 * object itself, and a framing Node has settled. Otherwise (and on HTTP/2) writes go through `res`.
 */
export function directTransport(res: ServerResponse | Http2ServerResponse): Transport | undefined {
  // HTTP/2's response is not a ServerResponse (an HTTP/1.x request to an HTTP/2 server with
  // `allowHTTP1` gets a ServerResponse). Its `write` is its own too, which the next check refuses: this
  // one is what lets TypeScript see `res.socket` as a socket.
  // Stryker disable next-line ConditionalExpression: the `false` form is refused by the `write` check below
  if (!(res instanceof ServerResponse)) return undefined
  // No socket yet: a pipelined request whose turn has not come (its head waits in `res`).
  const socket = res.socket
  if (socket === null || socket.destroyed || res.write !== ServerResponse.prototype.write) return undefined
  // Settled by writeHead; the head itself is sent by `res` before anything goes to the socket.
  const chunked = (res as ServerResponse & { chunkedEncoding?: unknown }).chunkedEncoding
  // Stryker disable next-line ConditionalExpression: Node 20 to 24 always hold a boolean here; the check keeps a Node without the private field on the safe path
  if (typeof chunked !== 'boolean') return undefined
  // Bytes held by `res` itself (its socket not writable when they were written) would be overtaken.
  if (res.writableLength !== socket.writableLength) return undefined
  return { out: socket, chunked }
}

/**
 * Once an HTTP response ended by hub shutdown has finished, closes its connection too (HTTP/1.x) or
 * asks the HTTP/2 session to close gracefully. Otherwise the idle keep-alive connection would hold a
 * closing server open until its keep-alive timeout. Other sinks are left as they are. Called when
 * the response is ended, rather than registered when it starts: a listener per stream would be held
 * for the life of every connection, to be used only at shutdown.
 */
export function closeAfterFinish(sink: EventSink): void {
  if (sink instanceof ServerResponse) {
    const socket = sink.socket
    if (socket !== null) sink.once('finish', () => socket.end())
    return
  }
  const session = (sink as Partial<Http2ServerResponse>).stream?.session
  if (session !== undefined) {
    // Closing a closed session does nothing.
    ;(sink as Http2ServerResponse).once('finish', () => session.close())
  }
}

/**
 * Counts turns of the event loop in which something was written, for every writer of a hub: a
 * writer's bytes of the current turn are not a backlog yet (see {@link WireWriter.backlog}).
 */
export class TurnClock {
  private current = 0
  private ending = false
  private readonly endTurn = (): void => {
    this.current++
    this.ending = false
  }

  /** The current turn. */
  get turn(): number {
    return this.current
  }

  /** Returns the current turn, making sure the counter moves once this turn's writes are out. */
  mark(): number {
    if (!this.ending) {
      this.ending = true
      // A response's writes reach its socket in a nextTick scheduled by the first of them, which is
      // queued before this one (writers count their bytes after writing).
      process.nextTick(this.endTurn)
    }
    return this.current
  }
}

/**
 * The bytes of one connection: the head and opening hint (sent at once or deferred to the first
 * frame), then frames through the transport the head chose, chunk-framed when that is the socket.
 * Knows nothing of why a connection ends; its owner checks that before each write.
 */
export class WireWriter {
  /** Set by any write; the heartbeat tick only writes to connections that stayed silent. */
  private wrote = false
  /** Pending until the head is due; see {@link StartStream}. */
  private start: StartStream | undefined
  /** Written right after the head: the opening `retry:` hint. */
  private preamble: Uint8Array | undefined
  private headPending = true
  private out: Output
  private chunked = false
  /** The turn of the event loop in which this writer last wrote, and what it wrote then. */
  // Stryker disable next-line UnaryOperator: any turn the clock has not reached yet; with none counted, `turnBytes` is 0 either way
  private turn = -1
  private turnBytes = 0

  constructor(
    sink: EventSink,
    private readonly clock: TurnClock,
    start: StartStream | undefined,
  ) {
    this.start = start
    this.out = sink
  }

  /** Where bytes go now (the sink, or the socket once the head chose it): wait on its `drain`. */
  get output(): Output {
    return this.out
  }

  /** Bytes written and not yet handed to the operating system. */
  get queuedBytes(): number {
    return this.out.writableLength
  }

  /**
   * Bytes still waiting from earlier turns of the event loop. What was written in the current turn
   * does not count: Node hands a response's writes to the socket only at the end of the turn, so
   * right after a burst even a client that reads at full speed has it all waiting.
   */
  get backlog(): number {
    return this.turn === this.clock.turn ? this.queuedBytes - this.turnBytes : this.queuedBytes
  }

  /**
   * Takes the opening `retry:` hint. The head goes out now, or, with `defer`, with the first frame
   * (a subscriber of an asynchronous store: its `open` event must not fire before its position in
   * the stream is fixed).
   */
  open(preamble: Uint8Array | undefined, defer: boolean): void {
    this.preamble = preamble
    if (!defer) this.sendHead()
  }

  /** Sends a deferred head (and the opening hint) now, if nothing has sent it yet. */
  sendPendingHead(): void {
    // Stryker disable next-line ConditionalExpression: a second sendHead finds nothing left to send
    if (this.headPending) this.sendHead()
  }

  /** Writes a chunk; returns false when the transport's buffer is full. */
  write(chunk: Uint8Array): boolean {
    this.wrote = true
    const ok = this.headPending
      ? this.sendHead(chunk)
      : this.out.write(this.chunked ? frameChunk(chunk) : chunk)
    this.count(chunk.length)
    return ok
  }

  /** Writes frames shared with other writers (framed once for every direct HTTP/1.1 transport). */
  writeShared(frames: SharedFrames): boolean {
    this.wrote = true
    const ok = this.headPending
      ? this.sendHead(frames.all, frames)
      : this.out.write(this.chunked ? frames.framed : frames.all)
    this.count(frames.all.length)
    return ok
  }

  /** Whether anything was written since the last call (the previous heartbeat tick). */
  takeWrote(): boolean {
    const wrote = this.wrote
    this.wrote = false
    return wrote
  }

  /** Writes a heartbeat comment (with the head, if that is still pending). */
  heartbeat(): void {
    // Stryker disable next-line ConditionalExpression: the `true` form writes the same bytes through sendHead
    if (this.headPending) this.sendHead(HEARTBEAT)
    else this.out.write(this.chunked ? HEARTBEAT_CHUNK : HEARTBEAT)
  }

  /**
   * The last bytes before the body ends: the head if still pending (a response ended before its head
   * would go out without the event-stream content type, which makes a browser give up for good),
   * and `hint` if given.
   */
  writeLast(hint: Uint8Array | undefined): void {
    // Stryker disable next-line ConditionalExpression: the `true` form writes the same bytes through sendHead
    if (this.headPending) this.sendHead(hint)
    else if (hint !== undefined) this.out.write(this.chunked ? frameChunk(hint) : hint)
  }

  private count(bytes: number): void {
    const turn = this.clock.mark()
    if (turn !== this.turn) {
      this.turn = turn
      this.turnBytes = 0
    }
    this.turnBytes += bytes
  }

  /**
   * Sends the head, then the opening hint and `first` together through the transport the head chose
   * (the socket, which `start` keeps corked so that the head and these bytes leave in one packet), or
   * through the sink when it chose none (Node then sends the pending head with them).
   */
  private sendHead(first?: Uint8Array, shared?: SharedFrames): boolean {
    // Stryker disable next-line BooleanLiteral: sendHead consumes `start` and the hint, so sending through it again writes the same bytes; the flag is the fast path
    this.headPending = false
    const start = this.start
    this.start = undefined
    const preamble = this.preamble
    this.preamble = undefined
    const opening =
      preamble === undefined ? first : first === undefined ? preamble : Buffer.concat([preamble, first])
    const transport = start?.(opening === undefined)
    if (transport !== undefined) {
      this.out = transport.out
      this.chunked = transport.chunked
    }
    // Stryker disable next-line BooleanLiteral: only write() and writeShared() use the result, and they always pass bytes
    if (opening === undefined) return true
    if (!this.chunked) return this.out.write(opening)
    // Frames shared with other writers (a replayed page) are framed once for all of them.
    return this.out.write(opening === first && shared !== undefined ? shared.framed : frameChunk(opening))
  }
}
