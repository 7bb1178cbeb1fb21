/**
 * What every open event stream shares, whether it follows a hub stream or an async iterable:
 * heartbeats, bounded writes, and one way to close with a reason.
 */
import { encodeComment, encodeRetry } from './frame.js'
import type { SubscriberSink } from './sink.js'
import type { StoredEvent } from './store.js'
import type { CloseReason, Subscription } from './types.js'

export type { CloseReason, Subscription } from './types.js'

/**
 * What a connection needs from the hub that owns it. The hub implements it; taking this instead of
 * the `Hub` class keeps the dependency one-way (hub.ts imports connection.ts, never the reverse).
 */
export interface ConnectionOwner {
  /** Counts turns of the event loop in which something was written (see `Connection.backlog`). */
  readonly turn: number
  /** Returns the current turn, making sure the counter moves once this turn's writes are out. */
  markTurn(): number
  /** Called by a connection when it ends. */
  release(connection: Connection, reason: CloseReason): void
}

const HEARTBEAT = Buffer.from(encodeComment())

/**
 * Where a connection's bytes go once its head is sent: the sink itself, or (HTTP/1.x) the socket
 * under it, with the chunked transfer framing applied by Rewind. See `directTransport` in http.ts.
 */
export interface Transport {
  readonly out: Output
  /** Whether each write must be framed as an HTTP/1.1 chunk. */
  readonly chunked: boolean
}

/** The writable side of a transport. */
export type Output = Pick<SubscriberSink, 'write' | 'writableLength' | 'on' | 'removeListener'>

/**
 * Frames of one flush, shared by every subscriber of the stream: the concatenated frames, and the
 * same bytes framed as one HTTP/1.1 chunk, built at most once and only if a direct transport asks.
 */
export class Batch {
  private chunk: Buffer | undefined
  constructor(
    readonly events: readonly StoredEvent[],
    readonly all: Buffer,
  ) {}

  get framed(): Buffer {
    if (this.chunk === undefined) this.chunk = frameChunk(this.all)
    return this.chunk
  }
}

/** `bytes` as one HTTP/1.1 chunk: size in hex, CRLF, the bytes, CRLF. */
export function frameChunk(bytes: Uint8Array): Buffer {
  const head = `${bytes.length.toString(16)}\r\n`
  const framed = Buffer.allocUnsafe(head.length + bytes.length + 2)
  framed.write(head, 0, 'latin1')
  framed.set(bytes, head.length)
  framed.write('\r\n', head.length + bytes.length, 'latin1')
  return framed
}

const HEARTBEAT_CHUNK = frameChunk(HEARTBEAT)

export abstract class Connection<Owner extends ConnectionOwner = ConnectionOwner> implements Subscription {
  closed = false
  readonly done: Promise<CloseReason>
  /** Set by any write; the heartbeat tick only writes to connections that stayed silent. */
  protected wrote = false
  private resolveDone!: (reason: CloseReason) => void
  private drainWaiter: (() => void) | undefined
  /**
   * Writes the response head (flushed at once if `flush`, else sent with the first bytes) and says
   * where later bytes may go; pending until the head is due.
   */
  private begin: ((flush: boolean) => Transport | undefined) | undefined
  /** Written right after the head: the opening `retry:` hint. */
  private preamble: Uint8Array | undefined
  private headPending = true
  private out: Output
  private chunked = false
  /** The hub's turn of the event loop in which this connection last wrote, and what it wrote then. */
  private turn = -1
  private turnBytes = 0

  constructor(
    protected readonly hub: Owner,
    readonly sink: SubscriberSink,
    readonly stream: string | undefined,
    begin?: (flush: boolean) => Transport | undefined,
  ) {
    this.begin = begin
    this.out = sink
    this.done = new Promise((resolve) => {
      this.resolveDone = resolve
    })
    sink.on('close', this.onSinkClose)
    sink.on('error', this.onSinkClose)
  }

  /** Bytes written to this connection and not yet handed to the operating system. */
  get queuedBytes(): number {
    return this.out.writableLength
  }

  /**
   * Bytes still waiting from earlier turns of the event loop. What was written in the current turn
   * does not count: Node hands a response's writes to the socket only at the end of the turn, so
   * right after a burst even a client that reads at full speed has it all waiting.
   */
  protected get backlog(): number {
    return this.turn === this.hub.turn ? this.queuedBytes - this.turnBytes : this.queuedBytes
  }

  /**
   * Called by the hub once registered, with the opening `retry:` hint. The head goes out now, or,
   * with `defer`, with the first frame (a subscriber of an asynchronous store: its `open` event must
   * not fire before its position in the stream is fixed).
   */
  open(preamble: Uint8Array | undefined, defer: boolean): void {
    this.preamble = preamble
    if (!defer) this.sendHead()
  }

  /**
   * Sends a deferred head (and the opening hint) now, if nothing has sent it yet: once a subscriber's
   * position is fixed, a client with nothing to replay must not wait for the next event or heartbeat
   * to see its stream open (proxies with a first-byte timeout would drop it).
   */
  protected sendPendingHead(): void {
    if (this.headPending && !this.closed) this.sendHead()
  }

  /**
   * Whether the response was ended by someone else (application code calling `res.end()`): the
   * connection then ends too, and writes nothing more. Its direct transport is the socket itself,
   * which on a keep-alive connection outlives the response: a byte written after the terminating
   * chunk would be read as the start of the next response.
   */
  private endedElsewhere(): boolean {
    if (this.closed) return true
    if (this.sink.writableEnded !== true) return false
    this.end('end')
    return true
  }

  /** Writes a chunk; returns false when the transport's buffer is full or the connection has ended. */
  protected write(chunk: Uint8Array): boolean {
    if (this.endedElsewhere()) return false
    this.wrote = true
    const ok = this.headPending
      ? this.sendHead(chunk)
      : this.out.write(this.chunked ? frameChunk(chunk) : chunk)
    this.count(chunk.length)
    return ok
  }

  /** Writes a flush's shared frames (framed once for every direct HTTP/1.1 transport). */
  protected writeBatch(batch: Batch): boolean {
    if (this.endedElsewhere()) return false
    this.wrote = true
    const ok = this.headPending
      ? this.sendHead(batch.all)
      : this.out.write(this.chunked ? batch.framed : batch.all)
    this.count(batch.all.length)
    return ok
  }

  private count(bytes: number): void {
    const turn = this.hub.markTurn()
    if (turn !== this.turn) {
      this.turn = turn
      this.turnBytes = 0
    }
    this.turnBytes += bytes
  }

  /**
   * Sends the head, the opening hint and `first` together: through the sink, so that the head and
   * the first bytes leave in one packet (Node sends a pending head with the first write). Only after
   * that may bytes bypass the response and go to the transport the head chose.
   */
  private sendHead(first?: Uint8Array): boolean {
    this.headPending = false
    const begin = this.begin
    this.begin = undefined
    const preamble = this.preamble
    this.preamble = undefined
    const opening =
      preamble === undefined ? first : first === undefined ? preamble : Buffer.concat([preamble, first])
    const transport = begin?.(opening === undefined)
    const ok = opening === undefined ? true : this.sink.write(opening)
    if (transport !== undefined) {
      this.out = transport.out
      this.chunked = transport.chunked
    }
    return ok
  }

  /** Called by the hub's shared timer: a comment for connections that wrote nothing since the last tick. */
  heartbeat(): void {
    if (!this.wrote && !this.endedElsewhere()) {
      if (this.headPending) this.sendHead(HEARTBEAT)
      else this.out.write(this.chunked ? HEARTBEAT_CHUNK : HEARTBEAT)
    }
    this.wrote = false
  }

  /** Resolves when the transport drains or the connection closes, whichever comes first. */
  protected drained(): Promise<void> {
    if (this.closed) return Promise.resolve()
    return new Promise((resolve) => {
      const out = this.out
      const wake = () => {
        out.removeListener('drain', wake)
        this.drainWaiter = undefined
        resolve()
      }
      this.drainWaiter = wake
      out.on('drain', wake)
    })
  }

  close(): void {
    this.end('end')
  }

  /** Ends the connection for `reason`, at most once. `retry` writes a reconnection hint first. */
  end(reason: CloseReason, retry?: number): void {
    if (this.closed) return
    this.closed = true
    this.sink.removeListener('close', this.onSinkClose)
    this.sink.removeListener('error', this.onSinkClose)
    this.drainWaiter?.()
    this.detach()
    this.hub.release(this, reason)
    if (reason === 'slow') {
      // The queue is full: ending gracefully would keep its bytes alive until the client reads them.
      this.sink.destroy()
    } else if (reason !== 'client' && this.sink.writableEnded !== true) {
      // A response ended before its head would go out without the event-stream content type,
      // which makes a browser give up for good.
      const hint = retry === undefined ? undefined : Buffer.from(encodeRetry(retry))
      if (this.headPending) this.sendHead(hint)
      else if (hint !== undefined) this.out.write(this.chunked ? frameChunk(hint) : hint)
      this.sink.end()
    }
    this.resolveDone(reason)
  }

  /** Releases what a subclass holds (iterators, stream membership). Called once, on close. */
  protected abstract detach(): void

  private readonly onSinkClose = (): void => {
    this.end('client')
  }
}
