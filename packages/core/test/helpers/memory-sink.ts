import { EventEmitter } from 'node:events'
import { createParser, type EventSourceMessage } from 'eventsource-parser'
import type { EventSink } from '../../src/types.js'

/** What a spec-following client makes of a byte stream. */
export interface ParsedStream {
  /** Dispatched events, as eventsource-parser reports them. */
  events: EventSourceMessage[]
  /** Every `retry:` value, in order. */
  retries: number[]
  /** Every comment line, in order. */
  comments: string[]
  /**
   * The client's last event ID string after the stream (WHATWG HTML 9.2: the id buffer persists
   * across events and is committed at every blank line, so an id-only frame moves it too).
   * `undefined` when no blank line committed an id.
   */
  lastEventId: string | undefined
}

/**
 * Parses a stream with eventsource-parser for events, retries and comments, and follows the spec's
 * last-event-ID bookkeeping, which the parser does not expose (it resets the id after each event and
 * ignores id-only frames).
 */
export function parseStream(text: string): ParsedStream {
  const events: EventSourceMessage[] = []
  const retries: number[] = []
  const comments: string[] = []
  const parser = createParser({
    onEvent: (event) => events.push(event),
    onRetry: (retry) => retries.push(retry),
    onComment: (comment) => comments.push(comment),
  })
  parser.feed(text)
  return { events, retries, comments, lastEventId: lastEventIdOf(text) }
}

/** The spec's last event ID string after `text` (only complete lines count). */
export function lastEventIdOf(text: string, initial?: string): string | undefined {
  let buffer = initial
  let committed = initial
  const lines = text.split(/\r\n|\r|\n/)
  // The last element is an unterminated line (or '' after a final line break): not processed yet.
  lines.pop()
  for (const line of lines) {
    if (line === '') {
      committed = buffer
      continue
    }
    const colon = line.indexOf(':')
    if (colon === 0) continue
    const field = colon === -1 ? line : line.slice(0, colon)
    let value = colon === -1 ? '' : line.slice(colon + 1)
    if (value.startsWith(' ')) value = value.slice(1)
    if (field === 'id' && !value.includes('\0')) buffer = value
  }
  return committed
}

/**
 * An in-memory {@link EventSink}. It tells apart the bytes the client has received from the
 * bytes still buffered on the server: while `full`, writes return false and stay buffered
 * (`writableLength` grows) until {@link MemorySink.drain}; a client disconnect or `destroy()` loses
 * them, a graceful `end()` delivers them.
 */
export class MemorySink implements EventSink {
  // Composed rather than inherited: EventEmitter's generic `on` does not match EventSink's.
  private readonly emitter = new EventEmitter()
  /** Every chunk written, buffered or not, in order. */
  readonly written: Buffer[] = []
  /** Chunks the client has received. */
  readonly received: Buffer[] = []
  private buffered: Buffer[] = []
  private bufferedBytes = 0
  full = false
  ended = false
  destroyed = false
  closed = false
  /** Writes attempted after end/destroy/close (a Writable would error on them). */
  writesAfterEnd = 0
  endCalls = 0

  constructor(options: { full?: boolean } = {}) {
    this.full = options.full ?? false
  }

  on(event: 'close' | 'drain' | 'error', listener: (...args: never[]) => void): this {
    this.emitter.on(event, listener as (...args: unknown[]) => void)
    return this
  }

  removeListener(event: 'close' | 'drain' | 'error', listener: (...args: never[]) => void): this {
    this.emitter.removeListener(event, listener as (...args: unknown[]) => void)
    return this
  }

  emit(event: 'close' | 'drain' | 'error', ...args: unknown[]): boolean {
    return this.emitter.emit(event, ...args)
  }

  listenerCount(event: 'close' | 'drain' | 'error'): number {
    return this.emitter.listenerCount(event)
  }

  get writableLength(): number {
    return this.bufferedBytes
  }

  write(chunk: Uint8Array): boolean {
    if (this.ended || this.destroyed || this.closed) {
      this.writesAfterEnd++
      return false
    }
    const copy = Buffer.from(chunk)
    this.written.push(copy)
    if (this.full) {
      this.buffered.push(copy)
      this.bufferedBytes += copy.length
      return false
    }
    this.received.push(copy)
    return true
  }

  end(): this {
    this.endCalls++
    if (this.ended || this.destroyed) return this
    this.ended = true
    this.flushBuffered()
    this.closeSoon()
    return this
  }

  destroy(): this {
    if (this.destroyed) return this
    this.destroyed = true
    this.dropBuffered()
    this.closeSoon()
    return this
  }

  /** Stops accepting bytes: writes return false and are buffered. */
  stall(): void {
    this.full = true
  }

  /** Hands the buffered bytes to the client and emits `drain`, as a socket does once it empties. */
  drain(): void {
    this.full = false
    if (this.closed) return
    const hadBuffered = this.buffered.length > 0
    this.flushBuffered()
    if (hadBuffered) this.emit('drain')
  }

  /** The client goes away: what is still buffered is lost, and `close` is emitted at once. */
  disconnect(): void {
    if (this.closed) return
    this.dropBuffered()
    this.closed = true
    this.emit('close')
  }

  /** All bytes written, as text (what the client gets if it reads everything). */
  text(): string {
    return Buffer.concat(this.written).toString('utf8')
  }

  /** The bytes the client has received, as text. */
  receivedText(): string {
    return Buffer.concat(this.received).toString('utf8')
  }

  /** `text()` parsed as a client would. */
  parse(): ParsedStream {
    return parseStream(this.text())
  }

  private flushBuffered(): void {
    for (const chunk of this.buffered) this.received.push(chunk)
    this.buffered = []
    this.bufferedBytes = 0
  }

  private dropBuffered(): void {
    this.buffered = []
    this.bufferedBytes = 0
  }

  private closeSoon(): void {
    // Node emits `close` on a later tick, never inside end() or destroy().
    process.nextTick(() => {
      if (this.closed) return
      this.closed = true
      this.emit('close')
    })
  }
}

/** Lets the hub's end-of-turn flush (a setImmediate) run. */
export function flushTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve))
}
