/**
 * What every open event stream shares, whether it follows a hub stream or an async iterable:
 * heartbeats, bounded writes, and one way to close with a reason. The bytes themselves are the
 * {@link WireWriter}'s; a connection decides whether it may still write.
 */
import { encodeRetry } from './frame.js'
import type { CloseReason, EventSink, Subscription } from './types.js'
import {
  closeAfterFinish,
  type SharedFrames,
  type StartStream,
  type TurnClock,
  WireWriter,
} from './wire-writer.js'

/**
 * What a connection needs from the hub that owns it. The hub hands its children an object with
 * these members; taking it instead of the `Hub` class keeps the dependency one-way (hub.ts imports
 * connection.ts, never the reverse) and keeps them off the hub's public type.
 */
export interface ConnectionOwner {
  /** Counts turns of the event loop in which something was written (see `WireWriter.backlog`). */
  readonly clock: TurnClock
  /** Called by a connection when it ends. */
  release(connection: Connection, reason: CloseReason): void
  /** Whether the hub is closed: a connection it ends then closes its HTTP connection too. */
  readonly closed: boolean
}

export abstract class Connection<Owner extends ConnectionOwner = ConnectionOwner> implements Subscription {
  closed = false
  /** Why it ended, once it has; `done` is made from it when first asked for. */
  private reason: CloseReason | undefined
  private donePromise: Promise<CloseReason> | undefined
  private resolveDone: ((reason: CloseReason) => void) | undefined
  private drainWaiter: (() => void) | undefined
  private readonly writer: WireWriter

  constructor(
    protected readonly owner: Owner,
    readonly sink: EventSink,
    readonly stream: string | undefined,
    start?: StartStream,
  ) {
    this.writer = new WireWriter(sink, owner.clock, start)
    sink.on('close', this.onSinkClose)
    sink.on('error', this.onSinkClose)
  }

  /**
   * Resolves with the reason once the connection has ended. Made on first use: most connections are
   * never asked, and a promise with its resolver, held for the life of every connection, is memory
   * for nothing.
   */
  get done(): Promise<CloseReason> {
    if (this.donePromise === undefined) {
      const reason = this.reason
      this.donePromise =
        reason !== undefined
          ? Promise.resolve(reason)
          : new Promise((resolve) => {
              this.resolveDone = resolve
            })
    }
    return this.donePromise
  }

  /** Bytes written to this connection and not yet handed to the operating system. */
  get queuedBytes(): number {
    return this.writer.queuedBytes
  }

  /** Bytes still waiting from earlier turns of the event loop (see `WireWriter.backlog`). */
  protected get backlog(): number {
    return this.writer.backlog
  }

  /**
   * Called by the hub once registered, with the opening `retry:` hint. The head goes out now, or,
   * with `defer`, with the first frame (a subscriber of an asynchronous store: its `open` event must
   * not fire before its position in the stream is fixed).
   */
  open(preamble: Uint8Array | undefined, defer: boolean): void {
    this.writer.open(preamble, defer)
  }

  /**
   * Sends a deferred head (and the opening hint) now, if nothing has sent it yet: once a subscriber's
   * position is fixed, a client with nothing to replay must not wait for the next event or heartbeat
   * to see its stream open (proxies with a first-byte timeout would drop it).
   */
  protected sendPendingHead(): void {
    // Stryker disable next-line ConditionalExpression: its one caller (Subscriber.onRead) has just returned if closed; kept so no later caller can write a head to a closed sink
    if (!this.closed) this.writer.sendPendingHead()
  }

  /**
   * Whether the response was ended by someone else (application code calling `res.end()`): the
   * connection then ends too, and writes nothing more. Its direct transport is the socket itself,
   * which on a keep-alive connection outlives the response: a byte written after the terminating
   * chunk would be read as the start of the next response.
   */
  private endedElsewhere(): boolean {
    if (this.closed) return true
    if (!sinkEnded(this.sink)) return false
    this.end('end')
    return true
  }

  /** Writes a chunk; returns false when the transport's buffer is full or the connection has ended. */
  protected write(chunk: Uint8Array): boolean {
    if (this.endedElsewhere()) return false
    return this.writer.write(chunk)
  }

  /** Writes a flush's shared frames (framed once for every direct HTTP/1.1 transport). */
  protected writeShared(frames: SharedFrames): boolean {
    if (this.endedElsewhere()) return false
    return this.writer.writeShared(frames)
  }

  /** Called by the hub's shared timer: a comment for connections that wrote nothing since the last tick. */
  heartbeat(): void {
    if (!this.writer.takeWrote() && !this.endedElsewhere()) this.writer.heartbeat()
  }

  /** Resolves when the transport drains or the connection closes, whichever comes first. */
  protected drained(): Promise<void> {
    if (this.closed) return Promise.resolve()
    return new Promise((resolve) => {
      const out = this.writer.output
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
    this.owner.release(this, reason)
    if (reason === 'slow') {
      // The queue is full: ending gracefully would keep its bytes alive until the client reads them.
      this.sink.destroy()
    } else if (reason !== 'client' && !sinkEnded(this.sink)) {
      this.writer.writeLast(retry === undefined ? undefined : Buffer.from(encodeRetry(retry)))
      this.sink.end()
      if (this.owner.closed) closeAfterFinish(this.sink)
    }
    this.reason = reason
    this.resolveDone?.(reason)
  }

  /** Releases what a subclass holds (iterators, stream membership). Called once, on close. */
  protected abstract detach(): void

  private readonly onSinkClose = (): void => {
    this.end('client')
  }
}

/**
 * Whether `end()` was called on the sink. Checked before every write, so it must be cheap: a
 * `node:http` response says so in its own `finished` field, which `writableEnded` only forwards
 * through a getter on its prototype; where a framework has swapped that prototype (Express does),
 * the getter costs about a microsecond per write in a fan-out. Other sinks say it with
 * `writableEnded`.
 */
function sinkEnded(sink: EventSink): boolean {
  return ((sink as { finished?: unknown }).finished ?? sink.writableEnded) === true
}
