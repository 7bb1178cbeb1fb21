/**
 * What every open event stream shares, whether it follows a hub stream or an async iterable:
 * heartbeats, bounded writes, and one way to close with a reason.
 */
import { encodeComment, encodeRetry } from './frame.js'
import type { Hub } from './hub.js'
import type { SubscriberSink } from './sink.js'

/**
 * Why a connection ended:
 * - `client`: the client went away (or its transport failed);
 * - `slow`: the bytes waiting for it passed `maxQueueBytes`, so it was cut off (it resumes from history);
 * - `shutdown`: the hub was closed;
 * - `rejected`: a connection limit was reached, or the hub was already closed, when it arrived;
 * - `error`: application code (a filter, an iterable) or the store failed; reported through `onError`;
 * - `end`: the application closed it, or its iterable finished;
 * - `reset`: the store lost live events of its stream; the client resumes from history (and is told
 *   of the gap if history no longer holds its position).
 */
export type CloseReason = 'client' | 'slow' | 'shutdown' | 'rejected' | 'error' | 'end' | 'reset'

const HEARTBEAT = Buffer.from(encodeComment())

/** An open event stream to one client, as seen by the application. */
export interface Subscription {
  /** The hub stream it follows, or `undefined` for an iterable. */
  readonly stream: string | undefined
  /** Whether it has ended. */
  readonly closed: boolean
  /** Resolves with the reason once it has ended. */
  readonly done: Promise<CloseReason>
  /** Ends the stream gracefully (the client will reconnect after its retry delay unless told otherwise). */
  close(): void
}

export abstract class Connection implements Subscription {
  closed = false
  readonly done: Promise<CloseReason>
  /** Set by any write; the heartbeat tick only writes to connections that stayed silent. */
  protected wrote = false
  private resolveDone!: (reason: CloseReason) => void
  private drainWaiter: (() => void) | undefined
  /** Sends the response head; pending until the first write (see `serve` with asynchronous stores). */
  private begin: (() => void) | undefined
  /** Written right before the first chunk when the head is deferred: the `retry:` hint. */
  private preamble: Uint8Array | undefined

  constructor(
    protected readonly hub: Hub<string | Promise<string>>,
    readonly sink: SubscriberSink,
    readonly stream: string | undefined,
    begin?: () => void,
  ) {
    this.begin = begin
    this.done = new Promise((resolve) => {
      this.resolveDone = resolve
    })
    sink.on('close', this.onSinkClose)
    sink.on('error', this.onSinkClose)
  }

  /** Called by the hub once registered: the opening `retry:` hint, sent now or with the deferred head. */
  open(preamble: Uint8Array | undefined): void {
    if (preamble === undefined) return
    if (this.begin === undefined) this.sink.write(preamble)
    else this.preamble = preamble
  }

  /** Writes a chunk; returns false when the sink's buffer is full. */
  protected write(chunk: Uint8Array): boolean {
    if (this.begin !== undefined) this.sendHead()
    this.wrote = true
    return this.sink.write(chunk)
  }

  private sendHead(): void {
    const begin = this.begin!
    this.begin = undefined
    begin()
    if (this.preamble !== undefined) this.sink.write(this.preamble)
    this.preamble = undefined
  }

  /** Called by the hub's shared timer: a comment for connections that wrote nothing since the last tick. */
  heartbeat(): void {
    if (!this.wrote && !this.closed) this.write(HEARTBEAT)
    this.wrote = false
  }

  /** Resolves when the sink drains or the connection closes, whichever comes first. */
  protected drained(): Promise<void> {
    return new Promise((resolve) => {
      const wake = () => {
        this.sink.removeListener('drain', wake)
        this.drainWaiter = undefined
        resolve()
      }
      this.drainWaiter = wake
      this.sink.on('drain', wake)
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
    } else if (reason !== 'client') {
      // A response ended before its head would go out without the event-stream content type,
      // which makes a browser give up for good.
      if (this.begin !== undefined) this.sendHead()
      if (retry !== undefined) this.sink.write(Buffer.from(encodeRetry(retry)))
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
