/**
 * The body of a Fetch `Response` as the sink a core connection writes to: a pull-driven
 * `ReadableStream`. Bytes wait here until the runtime reads them (it reads only while it can send:
 * the stream's `desiredSize` is the backpressure), so what waits for one client is counted here, and
 * the core judges a slow client on it exactly as on a Node socket's buffer.
 */
import type { EventSink } from '@rewind/core/adapter'

type Listener = (...args: never[]) => void
type SinkEvent = 'close' | 'drain' | 'error'

/** Why a body was cut off (the client reads an aborted body, and reconnects from its position). */
const CUT_OFF = new Error('the event stream was cut off (a slow client, or the hub closed it)')

/**
 * A {@link EventSink} whose bytes are read through {@link BodySink.readable}. `write` returns
 * false once `highWaterMark` bytes wait (as `Writable#write`) and `drain` follows when the runtime has
 * taken them; `close` fires when the runtime cancels the body (the client left), when the body is
 * destroyed, or once an ended body has been read to its end.
 */
export class BodySink implements EventSink {
  /** The response body. */
  readonly readable: ReadableStream<Uint8Array>
  writableLength = 0
  writableEnded = false
  destroyed = false
  private chunks: Uint8Array[] = []
  private controller!: ReadableStreamDefaultController<Uint8Array>
  /** The runtime asked for bytes and none were waiting: the next write goes straight to it. */
  private reading = false
  private needDrain = false
  private finished = false
  private readonly listeners: Record<SinkEvent, Listener[]> = { close: [], drain: [], error: [] }

  constructor(private readonly highWaterMark: number) {
    this.readable = new ReadableStream<Uint8Array>(
      {
        start: (controller) => {
          this.controller = controller
        },
        pull: () => this.pull(),
        cancel: () => this.gone(),
      },
      // Nothing waits inside the stream itself: `pull` runs only when the runtime reads, so every
      // byte not yet taken is in `writableLength`.
      { highWaterMark: 0 },
    )
  }

  write(chunk: Uint8Array): boolean {
    if (this.destroyed || this.writableEnded) return false
    if (this.reading) {
      this.reading = false
      this.controller.enqueue(chunk)
      return true
    }
    this.chunks.push(chunk)
    this.writableLength += chunk.length
    if (this.writableLength < this.highWaterMark) return true
    this.needDrain = true
    return false
  }

  end(): void {
    if (this.writableEnded || this.destroyed) return
    this.writableEnded = true
    // With bytes waiting, the body closes once the runtime has taken them (see `pull`).
    if (this.chunks.length === 0) this.finish()
  }

  destroy(): void {
    if (this.destroyed) return
    const wasFinished = this.finished
    this.drop()
    if (!wasFinished) {
      try {
        this.controller.error(CUT_OFF)
      } catch {
        // Already closed or errored by the runtime.
      }
      this.emit('close')
    }
  }

  on(event: SinkEvent, listener: Listener): this {
    this.listeners[event].push(listener)
    return this
  }

  removeListener(event: SinkEvent, listener: Listener): this {
    const list = this.listeners[event]
    const index = list.indexOf(listener)
    if (index !== -1) list.splice(index, 1)
    return this
  }

  /** The runtime reads: hand it everything waiting, in one chunk. */
  private pull(): void {
    if (this.destroyed) return
    if (this.chunks.length === 0) {
      this.reading = true
      return
    }
    const chunks = this.chunks
    this.chunks = []
    this.writableLength = 0
    this.controller.enqueue(chunks.length === 1 ? chunks[0]! : concat(chunks))
    if (this.writableEnded) {
      this.finish()
      return
    }
    if (this.needDrain) {
      this.needDrain = false
      this.emit('drain')
    }
  }

  /** The client is gone (the runtime cancelled the body, or the request was aborted). */
  gone(): void {
    if (this.destroyed || this.finished) return
    this.drop()
    this.emit('close')
  }

  private finish(): void {
    if (this.finished) return
    this.finished = true
    this.reading = false
    try {
      this.controller.close()
    } catch {
      // Cancelled by the runtime meanwhile.
    }
    this.emit('close')
  }

  private drop(): void {
    this.destroyed = true
    this.reading = false
    this.chunks = []
    this.writableLength = 0
  }

  private emit(event: SinkEvent): void {
    for (const listener of [...this.listeners[event]]) (listener as () => void)()
  }
}

function concat(chunks: readonly Uint8Array[]): Uint8Array {
  let length = 0
  for (const chunk of chunks) length += chunk.length
  const out = new Uint8Array(length)
  let offset = 0
  for (const chunk of chunks) {
    out.set(chunk, offset)
    offset += chunk.length
  }
  return out
}
