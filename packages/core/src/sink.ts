/**
 * The minimal writable a connection needs. Node's `http.ServerResponse`, `http2.Http2ServerResponse`
 * and any `stream.Writable` satisfy it, so adapters pass the framework's raw response as is.
 */
export interface EventSink {
  /** Writes bytes; returns false when the transport's buffer is full (as `Writable#write`). */
  write(chunk: Uint8Array): boolean
  /** Ends the body gracefully (a clean end makes an EventSource reconnect after its retry delay). */
  end(): unknown
  /** Aborts the transport at once, dropping what is buffered. */
  destroy(): unknown
  /** Bytes accepted by `write` but not yet handed to the operating system. */
  readonly writableLength: number
  /**
   * True once `end()` was called, by Rewind or by application code (as `Writable#writableEnded`);
   * nothing is written after it.
   */
  readonly writableEnded?: boolean
  /** True once the transport is gone (as `Writable#destroyed`); such a sink is never subscribed. */
  readonly destroyed?: boolean
  /** `close`: the transport is gone; `drain`: the buffer emptied; `error`: the transport failed. */
  on(event: 'close' | 'drain' | 'error', listener: (...args: never[]) => void): unknown
  removeListener(event: 'close' | 'drain' | 'error', listener: (...args: never[]) => void): unknown
}

/**
 * The former name of {@link EventSink}: an async iterable's stream writes to one too, and it is no
 * subscriber.
 *
 * @deprecated Use {@link EventSink}.
 */
export type SubscriberSink = EventSink
